"""Run steps W1-W7 of the benchmark workload on provstore (and, with ``--reference``, on aiida-core in the same run).

    python benchmarks/run.py --backend sqlite_dos|psql_dos|both --steps W1,W2,W3,W4 --scale 1.0 [--reference]

Standard output gets one JSON line per step variant (``system``, ``backend``, ``workload``, ``variant``, ``scale``,
``seconds``, the rate or, for W4a-W4e, ``ms``, ``peak_rss_mb``); standard error gets the progress and, at the end,
the table of ratios (reference time / provstore time for the same work). ``--save`` also writes both to
``benchmarks/results/``.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workload import GROUPS, STEPS, parse_steps  # noqa: E402 - after the path is set

BACKENDS = ('sqlite_dos', 'psql_dos')
AIIDA_PYTHON_VARIABLE = 'PROVSTORE_BENCH_AIIDA_PYTHON'
"""The environment variable naming the interpreter of aiida-core's virtualenv, when ``--aiida-python`` is not given."""

RATE_KEYS = {'W1': 'nodes_per_s', 'W2': 'files_per_s', 'W3': 'nodes_per_s'}
"""The rate each step's ratio is computed from (per unit of work, so differing counts compare fairly)."""

TIME_KEYS = {'W5': 'seconds', 'W6': 'seconds', 'W7': 'seconds'}
"""The time a step's ratio is computed from where it is not a rate: W4a-W4e run the same queries over the same data on
both systems (the median ``ms``); W5 and W6 archive and import the same profile, W7 maintains and describes the
same profile (``seconds``)."""

COMPARISONS: tuple[tuple[str, str, str, str], ...] = (
    ('W1', 'one_by_one', 'one_by_one', '>= 5x'),
    ('W1', 'transaction', 'transaction', ''),
    ('W1', 'batch', 'transaction', '>= 20,000/s sqlite, 10,000/s psql'),
    ('W1', 'rows', 'rows', ''),
    ('W2', 'one_by_one', 'one_by_one', ''),
    ('W2', 'batch', 'one_by_one', '>= 10x'),
    ('W2', 'read_back', 'read_back', ''),
    ('W3', 'one_by_one', 'one_by_one', ''),
    ('W3', 'batch', 'one_by_one', '>= 10x'),
    ('W4a', 'plain', 'plain', ''),
    ('W4a', 'indexed', 'plain', ''),
    ('W4b', 'iterall', 'iterall', ''),
    ('W4c', 'join', 'join', ''),
    ('W4d', 'ancestors', 'ancestors', ''),
    ('W4e', 'from_workflows', 'from_workflows', ''),
    ('W4e', 'from_all', 'from_all', ''),
    ('W5', 'create', 'create', '>= 10x'),
    ('W6', 'import', 'import', '>= 10x'),
    ('W6', 'import', 'import_provstore_archive', "both import provstore's archive"),
    ('W6', 'import_aiida_archive', 'import', "both import aiida-core's archive"),
    ('W7', 'maintain_full', 'maintain_full', '>= 1x (no slower)'),
    ('W7', 'maintain_live', 'maintain_live', '>= 1x'),
    ('W7', 'info', 'info', '>= 5x'),
    ('W7', 'info_detailed', 'info_detailed', '>= 5x'),
    ('W7', 'integrity', 'integrity', 'under 60 s at scale 10 (sqlite_dos)'),
    ('W7', 'integrity_no_hash', 'integrity_no_hash', ''),
)
"""(step, provstore variant, reference variant, target of issue 4). aiida-core has no batch store of ORM nodes: the
batch variants are compared with its fastest ORM path (``store()`` in one transaction for W1, ``store()`` per node
for W2 and W3). It has no indexes on JSON paths either: W4a ``indexed`` is compared with its ``plain`` count.
W6 ``import`` (each system imports the archive its own W5 wrote) is also compared on the same archive: provstore's
(aiida-core's ``import_provstore_archive``) and aiida-core's (provstore's ``import_aiida_archive``). W7's integrity
variants have no counterpart in aiida-core: their rows say so (the targets of W7 are those of its issue)."""

PUBLISHED: dict[tuple[str, str, str], float] = {
    ('sqlite_dos', 'W1', 'one_by_one'): 146,
    ('sqlite_dos', 'W1', 'transaction'): 681,
    ('sqlite_dos', 'W1', 'rows'): 9855,
    ('sqlite_dos', 'W2', 'one_by_one'): 185,
    ('sqlite_dos', 'W2', 'read_back'): 178,
    ('sqlite_dos', 'W3', 'one_by_one'): 51,
    ('psql_dos', 'W1', 'one_by_one'): 151,
    ('psql_dos', 'W1', 'transaction'): 435,
    ('psql_dos', 'W1', 'rows'): 4450,
    ('psql_dos', 'W2', 'one_by_one'): 138,
    ('psql_dos', 'W2', 'read_back'): 179,
    ('psql_dos', 'W3', 'one_by_one'): 39,
}
"""aiida-core 2.9.4's rates from ``shared/bench/REFERENCE.md`` (another run, another day): used for the ratios only
when the reference was not run in this run, and marked so."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backend', choices=(*BACKENDS, 'both'), default='both')
    parser.add_argument(
        '--steps', default='W1,W2,W3,W4', help='comma-separated steps; W4 stands for W4a-W4e (default: W1,W2,W3,W4)'
    )
    parser.add_argument('--scale', type=float, default=1.0, help='1.0 = the sizes of WORKLOAD.md (default)')
    parser.add_argument(
        '--one-by-one-count', type=int, default=None, help='nodes W1 stores one by one (default: 20,000 x scale)'
    )
    parser.add_argument('--variants', default='', help='comma-separated variants to run (default: all)')
    parser.add_argument(
        '--repeats', type=int, default=5, help='timed runs of each W4 query, after one warm-up (default: 5)'
    )
    parser.add_argument('--reference', action='store_true', help='also run aiida-core 2.9.4 (separate virtualenv)')
    parser.add_argument(
        '--aiida-python',
        default=os.environ.get(AIIDA_PYTHON_VARIABLE) or None,
        help=f'the interpreter of the virtualenv with aiida-core, for --reference (default: ${AIIDA_PYTHON_VARIABLE})',
    )
    parser.add_argument(
        '--archive-dir',
        default='',
        help='where W5 writes its archives and W6 reads them (default: a temporary folder, removed at the end)',
    )
    parser.add_argument('--save', action='store_true', help='write the lines and the table to benchmarks/results/')
    args = parser.parse_args(argv)
    try:
        steps = parse_steps(args.steps)
    except SystemExit as error:
        parser.error(str(error))
    if args.repeats < 1:
        parser.error('--repeats must be at least 1')
    if not steps:
        parser.error(f'no steps given; the steps are {", ".join((*STEPS, *GROUPS))}')
    args.step_list = driver_runs(steps)
    args.backend_list = list(BACKENDS) if args.backend == 'both' else [args.backend]
    make_one = 'python3.11 -m venv aiida-venv && aiida-venv/bin/pip install aiida-core==2.9.4'
    if args.reference and args.aiida_python is None:
        parser.error(
            f'--reference needs the interpreter of a virtualenv with aiida-core 2.9.4: give --aiida-python PATH or set '
            f'${AIIDA_PYTHON_VARIABLE} (make one with: {make_one})'
        )
    if args.reference and not Path(args.aiida_python).exists():
        parser.error(f'--aiida-python: no interpreter at {args.aiida_python} (make one with: {make_one})')
    return args


def driver_runs(steps: list[str]) -> list[str]:
    """Return the ``--steps`` of each driver run: W1, W2 and W3 one each; the W4 steps all in one (one profile)."""
    runs = [step for step in steps if not step.startswith('W4')]
    w4 = [step for step in steps if step.startswith('W4')]
    return runs + ([','.join(w4)] if w4 else [])


def run_driver(
    python: str, script: Path, backend: str, step: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], bool]:
    """Run one driver for one step on one backend; echo and return its JSON lines, and whether it succeeded."""
    command = [python, str(script), '--backend', backend, '--steps', step, '--scale', str(args.scale)]
    if args.one_by_one_count is not None:
        command += ['--one-by-one-count', str(args.one_by_one_count)]
    if args.archive_dir:
        command += ['--archive-dir', args.archive_dir]
    if args.variants:
        command += ['--variants', args.variants]
    command += ['--repeats', str(args.repeats)]
    print(f'# {script.name} {backend} {step}', file=sys.stderr, flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    records = []
    for line in process.stdout:
        if line.startswith('{'):
            records.append(json.loads(line))
            sys.stdout.write(line)
            sys.stdout.flush()
    if process.wait() != 0:
        print(f'# {script.name} {backend} {step} failed with status {process.returncode}', file=sys.stderr)
    return records, process.returncode == 0


def ratio_table(records: list[dict[str, Any]], backends: list[str], reference_run: bool) -> str:
    """Return the Markdown table of ratios (reference time / provstore time for the same work) per step variant."""
    found = {(record['system'], record['backend'], record['workload'], record['variant']): record for record in records}
    lines = [
        '| backend | step | provstore variant | provstore | reference variant | reference | ratio | target / notes |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for backend in backends:
        for comparison in COMPARISONS:
            step, ours, theirs, _ = comparison
            mine = found.get(('provstore', backend, step, ours))
            if mine is None:
                continue
            reference = found.get(('aiida-core', backend, step, theirs))
            if step in RATE_KEYS:
                lines.append(_rate_line(backend, comparison, mine, reference, reference_run))
            else:
                lines.append(_time_line(backend, comparison, mine, reference))
    return '\n'.join(lines)


def _rate_line(
    backend: str,
    comparison: tuple[str, str, str, str],
    mine: dict[str, Any],
    reference: dict[str, Any] | None,
    reference_run: bool,
) -> str:
    """A row of the table for a step measured by its rate: ratio = provstore rate / reference rate."""
    step, ours, theirs, target = comparison
    key = RATE_KEYS[step]
    unit = key.replace('_per_s', '/s')
    if reference is not None:
        theirs_rate: float | None = reference[key]
        source = theirs
    elif not reference_run and (backend, step, theirs) in PUBLISHED:
        theirs_rate = PUBLISHED[(backend, step, theirs)]
        source = f'{theirs} (REFERENCE.md)'
    else:
        theirs_rate, source = None, f'{theirs} (not run)'
    ratio = f'{mine[key] / theirs_rate:.1f}x' if theirs_rate else '-'
    shown = f'{theirs_rate:,.0f} {unit}' if theirs_rate else '-'
    return f'| {backend} | {step} | {ours} | {mine[key]:,.0f} {unit} | {source} | {shown} | {ratio} | {target} |'


def _time_line(
    backend: str, comparison: tuple[str, str, str, str], mine: dict[str, Any], reference: dict[str, Any] | None
) -> str:
    """A row of the table for a W4 query, measured by its median time: ratio = reference ms / provstore ms.

    A variant provstore could not run (``ms`` null) shows why; rows that differ from the expected count are flagged.
    """
    step, ours, theirs, target = comparison
    key = TIME_KEYS.get(step, 'ms')
    mine_ms = mine.get(key)
    theirs_ms = reference.get(key) if reference is not None else None
    source = theirs if reference is not None else f'{theirs} (not run)'
    notes = [target] if target else []
    for system, record in (('provstore', mine), ('aiida-core', reference)):
        if record is not None and record.get('rows') != record.get('expected_rows') and record.get(key):
            notes.append(f'{system} returned {record.get("rows")} rows, expected {record.get("expected_rows")}')
        if (
            record is not None
            and 'nodes' in record
            and record['nodes'] != record.get('expected_nodes', record['nodes'])
        ):
            notes.append(f'{system} holds {record.get("nodes")} nodes, expected {record.get("expected_nodes")}')
    systems = (('provstore', mine), ('aiida-core', reference))
    if step in ('W5', 'W6'):
        notes += [note for note in (_archive_note(system, record) for system, record in systems) if note]
    if step == 'W7':
        notes += [note for note in (_maintenance_note(system, record) for system, record in systems) if note]
    if not mine_ms:
        notes.append(f'provstore: {mine.get("unavailable", "not run")}')
    if reference is not None and reference.get('unavailable'):
        notes.append(f'aiida-core: {reference["unavailable"]}')
    ratio = f'{theirs_ms / mine_ms:.1f}x' if mine_ms and theirs_ms else '-'
    show = _seconds if step in TIME_KEYS else _ms
    mine_shown = show(mine_ms, mine)
    theirs_shown = show(theirs_ms, reference)
    return f'| {backend} | {step} | {ours} | {mine_shown} | {source} | {theirs_shown} | {ratio} | {"; ".join(notes)} |'


def _ms(value: float | None, record: dict[str, Any] | None) -> str:
    if not value or record is None:
        return '-'
    shown = f'{value:,.1f} ms'
    if 'rows_per_s' in record:
        shown += f' ({record["rows_per_s"]:,.0f} rows/s)'
    return shown


def _seconds(value: float | None, record: dict[str, Any] | None) -> str:
    if not value or record is None:
        return '-'
    return f'{value:,.1f} s' if value >= 1 else f'{value * 1000:,.1f} ms'


def _archive_note(system: str, record: dict[str, Any] | None) -> str:
    """The size written (W5) and the peak RSS of a W5 or W6 record, for the notes of its row."""
    if record is None or not record.get('seconds'):
        return ''
    written = f'{record["mb_written"]:,.0f} MB, ' if 'mb_written' in record else ''
    return f'{system} {written}peak RSS {record.get("peak_rss_mb", 0):,.0f} MB'


def _maintenance_note(system: str, record: dict[str, Any] | None) -> str:
    """What a W7 record shows that the workload did not expect: loose or unreferenced objects left by maintenance,
    another number of unreferenced objects found by the integrity check, a check that failed."""
    if record is None or record.get('unavailable') or 'after' not in record:
        return ''
    expected, after, variant = record['expected'], record['after'], record['variant']
    problems = []
    if variant.startswith('maintain') and (after['loose'] or after['objects'] != expected['referenced_objects']):
        problems.append(
            f'left {after["objects"]} objects ({after["loose"]} loose), expected {expected["referenced_objects"]}'
        )
    found = record.get('unreferenced_found')
    if found is not None and found != expected['unreferenced_objects']:
        problems.append(f'found {found} unreferenced objects, expected {expected["unreferenced_objects"]}')
    if record.get('failed'):
        problems.append(f'failed checks: {", ".join(record["failed"])}')
    return f'{system} {"; ".join(problems)}' if problems else ''


def _commit() -> str:
    """Return the short commit of the checkout the benchmarks run from (``unknown`` outside a git checkout)."""
    try:
        completed = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    dirty = subprocess.run(['git', 'status', '--porcelain'], cwd=HERE, capture_output=True, text=True, check=False)
    return completed.stdout.strip() + (' (with uncommitted changes)' if dirty.stdout.strip() else '')


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 if every driver produced its lines."""
    args = parse_args(argv)
    records: list[dict[str, Any]] = []
    succeeded = True
    with tempfile.TemporaryDirectory(prefix='provstore-bench-archives-') as folder:
        args.archive_dir = args.archive_dir or folder
        for backend in args.backend_list:
            for step in args.step_list:
                drivers = [(sys.executable, HERE / 'provstore_steps.py')]
                if args.reference:
                    drivers.append((args.aiida_python, HERE / 'reference' / 'aiida_steps.py'))
                for python, script in drivers:
                    lines, ok = run_driver(python, script, backend, step, args)
                    records += lines
                    succeeded = succeeded and ok
    table = ratio_table(records, args.backend_list, args.reference)
    print(table, file=sys.stderr)
    if args.save:
        stamp = datetime.date.today().isoformat()
        scale = f'{args.scale:g}'
        folder = HERE / 'results'
        folder.mkdir(exist_ok=True)
        base = folder / f'{stamp}-scale{scale}'
        Path(f'{base}.jsonl').write_text(''.join(json.dumps(record) + '\n' for record in records))
        Path(f'{base}.md').write_text(
            f'# Benchmark {", ".join(args.step_list)}, scale {scale}, {stamp}\n\n'
            f'`python benchmarks/run.py {" ".join(sys.argv[1:] if argv is None else argv)}` at provstore commit '
            f'{_commit()}.\n\n'
            'Ratio = reference time / provstore time for the same work (W1-W3 from the rates, W4 from the median '
            f'times, W5-W7 from the seconds).\n\n{table}\n'
        )
        print(f'# saved {base}.jsonl and .md', file=sys.stderr)
    return 0 if succeeded else 1


if __name__ == '__main__':
    sys.exit(main())
