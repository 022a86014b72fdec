"""The benchmark workload (steps W1-W7 of ``shared/bench/WORKLOAD.md``), shared by provstore and the reference.

Standard library only: the reference driver imports this module with aiida-core's interpreter. Everything a step
stores is generated here from :data:`SEED`, in the same order for both systems, so both store the same bytes.

A *driver* (``provstore_steps.py``, ``reference/aiida_steps.py``) runs the steps of one system on one backend: for
each variant it creates a fresh profile (or reuses the one a variant before it filled, for the read-back), runs the
variant in a worker subprocess of its own (so that its peak RSS is its own) and prints the worker's JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    'NODE_TYPES',
    'SEED',
    'StepPlan',
    'Timer',
    'W2Plan',
    'W4Chunk',
    'archive_counts',
    'build_parser',
    'counts',
    'dict_attributes',
    'emit',
    'repeat_ms',
    'repository_metadata',
    'run_driver',
    'untimed_chunks',
    'w3_calculations',
    'w4_dict_attributes',
    'w4_expected',
    'w4_graph',
    'w5_folder_nodes',
    'w5_graph',
    'w7_expected',
]

T = TypeVar('T')

SEED = 20_261_121
"""Every random choice of the workload derives from this seed."""

W1_NODES = 20_000
W2_NODES = 2_000
W2_FILES_PER_NODE = 5
W2_MIN_SIZE = 100
W2_MAX_SIZE = 256 * 1024
W2_DUPLICATE_FRACTION = 0.2
W2_READ_BACK_NODES = 400
W3_CALCULATIONS = 5_000
W3_CALCULATIONS_PER_WORKFLOW = 10

W2_PATHS = ('file_0.dat', 'file_1.dat', 'file_2.dat', 'sub/file_3.dat', 'sub/deeper/file_4.dat')
"""Where the five files of a W2 node go: a small tree, so that reading back walks directories."""

W4_DICT_NODES = 20_000
W4A_THRESHOLD = 500_000
"""W4a counts the Dict nodes whose attribute ``a`` (spread uniformly over [0, 1,000,000)) is above this: about half."""
W4B_KEYS = ('a', 'x', 's')
"""The attributes W4b projects: a number (int or float), a float and a string."""
W4B_BATCH = 1000
"""``iterall(batch_size=...)`` of W4b."""
W4C_X = 7
"""W4c selects the calculations whose attribute ``x`` (index % 100) equals this: 1 in 100 (one at scale 0.01 too)."""
W4D_LABEL = 'w4d-target'
"""The label of the output node W4d starts from: the output of the last calculation, the last node stored."""
W4_GRAPH_CHUNK = 50
"""Workflows per chunk of W4's graph when a driver populates the profile (2,050 nodes, 2,000 links)."""
W5_FOLDER_CHUNK = 100
"""FolderData nodes (500 files) per chunk when a driver populates W5's profile."""
W5_GROUP_LABEL = 'w5-workflows'
"""The group of W5's profile: it holds every workflow of the graph."""
W5_ARCHIVE = '{system}-{backend}-scale{scale:g}.aiida'
"""The name of the archive W5 writes (in ``--archive-dir``) and W6 imports."""
W7_DELETE_EVERY = 10
"""W7 deletes one FolderData node in this many (the last of every ten) after populating: unreferenced objects."""
W7_DELETE_LABEL = 'w7-delete'
"""The label of the FolderData nodes W7 deletes (set when populating, so that both systems find them by query)."""
W4_REPEATS = 5
W4_WARMUP = 1
"""Each W4 query runs once untimed, then :data:`W4_REPEATS` times; the median is reported."""

NODE_TYPES = {
    'dict': 'data.core.dict.Dict.',
    'int': 'data.core.int.Int.',
    'calculation': 'process.calculation.CalculationNode.',
    'workflow': 'process.workflow.WorkflowNode.',
    'folder': 'data.core.folder.FolderData.',
}
"""aiida-core's ``node_type`` of the nodes W4 stores as raw rows (provstore uses the same strings)."""

STEPS = ('W1', 'W2', 'W3', 'W4a', 'W4b', 'W4c', 'W4d', 'W4e', 'W5', 'W6', 'W7')
GROUPS = {'W4': ('W4a', 'W4b', 'W4c', 'W4d', 'W4e')}
"""Names that stand for several steps: ``W4`` runs W4a-W4e (in one profile, populated once)."""

MB = 1024 * 1024


def scaled(count: int, scale: float) -> int:
    """Return ``count`` times ``scale``, rounded, at least 1."""
    return max(1, round(count * scale))


def counts(step: str, scale: float, one_by_one_count: int | None = None) -> dict[str, int]:
    """Return the sizes of ``step`` at ``scale``: nodes, files, calculations... as the step needs them."""
    if step == 'W1':
        nodes = scaled(W1_NODES, scale)
        return {'nodes': nodes, 'one_by_one': nodes if one_by_one_count is None else one_by_one_count}
    if step == 'W2':
        nodes = scaled(W2_NODES, scale)
        return {'nodes': nodes, 'files': nodes * W2_FILES_PER_NODE, 'read_back': min(nodes, W2_READ_BACK_NODES)}
    if step == 'W3':
        workflows = max(1, round(W3_CALCULATIONS * scale / W3_CALCULATIONS_PER_WORKFLOW))
        calculations = workflows * W3_CALCULATIONS_PER_WORKFLOW
        return {'workflows': workflows, 'calculations': calculations, 'nodes': workflows + 4 * calculations}
    if step.startswith('W4'):
        graph = counts('W3', scale)
        dicts = scaled(W4_DICT_NODES, scale)
        return {
            'dicts': dicts,
            'workflows': graph['workflows'],
            'calculations': graph['calculations'],
            'graph_nodes': graph['nodes'],
            'nodes': dicts + graph['nodes'],
            'links': 4 * graph['calculations'],
        }
    if step == 'W7':
        sizes = counts('W5', scale)
        return {**sizes, 'deleted_folders': sum(1 for index in range(sizes['folders']) if w7_deleted(index))}
    if step in ('W5', 'W6'):
        sizes = counts('W4', scale)
        folders = counts('W2', scale)
        return {
            **sizes,
            'folders': folders['nodes'],
            'files': folders['files'],
            'nodes': sizes['nodes'] + folders['nodes'],
            'group_nodes': sizes['workflows'],
        }
    raise ValueError(f'unknown step {step!r}; the steps are {", ".join(STEPS)}')


# -- W1: Dict nodes ------------------------------------------------------------------------------------------------


def dict_attributes(count: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Yield ``count`` dictionaries of 10 keys: ints, floats, strings and a nested list."""
    rng = random.Random(seed)
    letters = 'abcdefghijklmnopqrstuvwxyz'
    kinds = ('alpha', 'beta', 'gamma', 'delta')
    for index in range(count):
        yield {
            'a': rng.randrange(1_000_000),
            'b': rng.randrange(-1000, 1000),
            'c': index,
            'x': rng.random(),
            'y': rng.uniform(-1e3, 1e3),
            'z': rng.gauss(0.0, 1.0),
            's': ''.join(rng.choice(letters) for _ in range(12)),
            't': f'node-{index}',
            'u': rng.choice(kinds),
            'l': [[rng.randrange(100) for _ in range(3)], [rng.random(), rng.choice(kinds)], []],
        }


# -- W2: nodes with files ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class W2Plan:
    """The files of W2: for file ``i``, its size and the file whose content it repeats (itself if original)."""

    sizes: list[int]
    sources: list[int]

    @classmethod
    def make(cls, files: int, seed: int = SEED) -> W2Plan:
        """Plan ``files`` files: sizes log-uniform from 100 B to 256 KiB, about 20 % repeating an earlier content."""
        rng = random.Random(seed + 2)
        low, high = math.log(W2_MIN_SIZE), math.log(W2_MAX_SIZE)
        sizes: list[int] = []
        sources: list[int] = []
        originals: list[int] = []
        for index in range(files):
            if originals and rng.random() < W2_DUPLICATE_FRACTION:
                source = rng.choice(originals)
                sizes.append(sizes[source])
                sources.append(source)
            else:
                sizes.append(min(W2_MAX_SIZE, int(math.exp(rng.uniform(low, high)))))
                sources.append(index)
                originals.append(index)
        return cls(sizes, sources)

    def content(self, index: int) -> bytes:
        """Return the content of file ``index`` (random bytes, the same for every file that repeats it)."""
        source = self.sources[index]
        return random.Random(SEED * 1_000_003 + source).randbytes(self.sizes[source])

    def node_files(self, node: int) -> list[tuple[str, bytes]]:
        """Return the ``(path, content)`` of the five files of node ``node``."""
        start = node * W2_FILES_PER_NODE
        return [(path, self.content(start + offset)) for offset, path in enumerate(W2_PATHS)]

    def total_bytes(self, nodes: int) -> int:
        """Return the bytes of the files of the first ``nodes`` nodes (repeated contents counted each time)."""
        return sum(self.sizes[self.sources[index]] for index in range(nodes * W2_FILES_PER_NODE))


# -- W3: a provenance graph ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class W3Calculation:
    """One calculation of W3: the values of its two inputs and its output, and its attribute ``x``."""

    index: int
    inputs: tuple[int, int]
    output: int
    x: int


def w3_calculations(workflows: int, seed: int = SEED) -> Iterator[list[W3Calculation]]:
    """Yield, per workflow, the calculations it calls (:data:`W3_CALCULATIONS_PER_WORKFLOW` each)."""
    rng = random.Random(seed + 3)
    index = 0
    for _ in range(workflows):
        calculations = []
        for _ in range(W3_CALCULATIONS_PER_WORKFLOW):
            first, second = rng.randrange(1000), rng.randrange(1000)
            calculations.append(W3Calculation(index, (first, second), first + second, index % 100))
            index += 1
        yield calculations


# -- W4: queries over a populated profile ---------------------------------------------------------------------------


def w4_dict_attributes(count: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Yield the attributes of W4's ``count`` Dict nodes: W1's 10 keys, from another seed.

    ``a`` is a number spread uniformly over [0, 1,000,000): an int for three nodes in four, a float (``n + 0.5``) for
    the fourth, so that :data:`W4A_THRESHOLD` selects about half and both kinds of JSON number are compared.
    """
    for index, values in enumerate(dict_attributes(count, seed + 4)):
        if index % 4 == 3:
            values['a'] += 0.5
        yield values


@dataclass(frozen=True)
class W4Chunk:
    """Some workflows of W4's graph as rows to insert: nodes, then the links between them.

    ``nodes`` holds ``(kind, attributes, label)`` (``kind`` a key of :data:`NODE_TYPES`); ``links`` holds
    ``(input, output, link type, label)`` with ``input`` and ``output`` indexes into ``nodes``.
    """

    nodes: list[tuple[str, dict[str, Any], str]]
    links: list[tuple[int, int, str, str]]


def w4_graph(workflows: int, chunk: int = W4_GRAPH_CHUNK, seed: int = SEED) -> Iterator[W4Chunk]:
    """Yield W3's graph (the same calculations, inputs and outputs), ``chunk`` workflows at a time, as rows.

    Per calculation: two ``Int`` inputs (``input_calc``, labels ``left`` and ``right``), the ``CalculationNode``
    with attribute ``x``, called by its workflow (``call_calc``, ``CALL``), and one ``Int`` output (``create``,
    ``result``). The output of the very last calculation is labelled :data:`W4D_LABEL`.
    """
    last = workflows * W3_CALCULATIONS_PER_WORKFLOW - 1
    graph = w3_calculations(workflows, seed)
    while batch := list(itertools.islice(graph, chunk)):
        nodes: list[tuple[str, dict[str, Any], str]] = []
        links: list[tuple[int, int, str, str]] = []
        for calculations in batch:
            workflow = len(nodes)
            nodes.append(('workflow', {}, ''))
            for item in calculations:
                first = len(nodes)
                nodes += [
                    ('int', {'value': item.inputs[0]}, ''),
                    ('int', {'value': item.inputs[1]}, ''),
                    ('calculation', {'x': item.x}, ''),
                    ('int', {'value': item.output}, W4D_LABEL if item.index == last else ''),
                ]
                links += [
                    (first, first + 2, 'input_calc', 'left'),
                    (first + 1, first + 2, 'input_calc', 'right'),
                    (workflow, first + 2, 'call_calc', 'CALL'),
                    (first + 2, first + 3, 'create', 'result'),
                ]
        yield W4Chunk(nodes, links)


def w4_expected(scale: float) -> dict[str, int]:
    """Return the number of rows each W4 query must return at ``scale`` (both systems are checked against it)."""
    sizes = counts('W4', scale)
    above = sum(1 for values in w4_dict_attributes(sizes['dicts']) if values['a'] > W4A_THRESHOLD)
    selected = sum(1 for index in range(sizes['calculations']) if index % 100 == W4C_X)
    return {
        'W4a': above,
        'W4b': sizes['dicts'],
        'W4c': 2 * selected,
        'W4d': 3,  # the calculation that created it and its two inputs: traversals follow create and input_calc
        'W4e_from_workflows': sizes['graph_nodes'],
        'W4e_from_all': sizes['nodes'],
    }


# -- W5 and W6: an archive of a whole profile, and its import -----------------------------------------------------


def w5_graph(workflows: int, chunk: int = W4_GRAPH_CHUNK, seed: int = SEED) -> Iterator[W4Chunk]:
    """Yield W4's graph with its process nodes sealed (``sealed: True``), as both systems export only sealed ones."""
    for part in w4_graph(workflows, chunk, seed):
        nodes = [
            (kind, {**attributes, 'sealed': True} if kind in ('workflow', 'calculation') else attributes, label)
            for kind, attributes, label in part.nodes
        ]
        yield W4Chunk(nodes, part.links)


def w5_folder_nodes(nodes: int, chunk: int = W5_FOLDER_CHUNK) -> Iterator[list[list[tuple[str, bytes]]]]:
    """Yield W2's FolderData nodes, ``chunk`` at a time: per node the ``(path, content)`` of its five files."""
    plan = W2Plan.make(nodes * W2_FILES_PER_NODE)
    for start in range(0, nodes, chunk):
        yield [plan.node_files(index) for index in range(start, min(nodes, start + chunk))]


def repository_metadata(files: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Return a node's ``repository_metadata`` (aiida-core's layout: ``{'o': {name: {'k': key} | {'o': ...}}}``)
    for the ``(path, key)`` of its files."""
    root: dict[str, Any] = {}
    for path, key in files:
        *folders, name = path.split('/')
        level = root
        for folder in folders:
            level = level.setdefault(folder, {'o': {}})['o']
        level[name] = {'k': key}
    return {'o': root}


def archive_path(folder: str, system: str, backend: str, scale: float) -> str:
    """Return where W5 of ``system`` writes its archive in ``folder`` (and where W6 finds it)."""
    return os.path.join(folder, W5_ARCHIVE.format(system=system, backend=backend, scale=scale))


ARCHIVE_TABLES = {'node': 'db_dbnode', 'link': 'db_dblink', 'group': 'db_dbgroup', 'group_node': 'db_dbgroup_dbnodes'}
"""The tables of an ``.aiida`` archive's database W5 reports the rows of."""


def archive_counts(path: str) -> dict[str, int]:
    """Return the rows an ``.aiida`` archive holds per kind (from its database) and its ``repo/`` files.

    Counted from the archive itself, the same way for both systems (aiida-core 2.9.4 does not write the counts in its
    metadata). Not timed: the database member is extracted to a temporary file.
    """
    import sqlite3  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as folder:
        files = sum(1 for name in archive.namelist() if name.startswith('repo/') and not name.endswith('/'))
        database = archive.extract('db.sqlite3', folder)
        connection = sqlite3.connect(database)
        try:
            found = {
                kind: connection.execute(f'SELECT count(*) FROM {table}').fetchone()[0]
                for kind, table in ARCHIVE_TABLES.items()
            }
        finally:
            connection.close()
    return {**found, 'files': files}


def w5_result(system: str, args: argparse.Namespace, seconds: float, path: str, **figures: Any) -> dict[str, Any]:
    """Return W5's record: the seconds, the archive's size (MB written) and the entity counts it declares."""
    size = os.path.getsize(path)
    peak = peak_rss_mb()  # NOTE: before archive_counts, whose zipfile (untimed) is not the create's memory
    declared = archive_counts(path)
    return result(
        system,
        args,
        'W5',
        'create',
        seconds,
        mb_written=round(size / MB, 1),
        bytes_written=size,
        mb_per_s=rate(size / MB, seconds),
        nodes=declared.get('node'),
        nodes_per_s=rate(declared.get('node') or 0, seconds),
        entity_counts=declared,
        **figures,
        peak_rss_mb=peak,
    )


def w6_result(
    system: str, args: argparse.Namespace, variant: str, seconds: float, path: str, **figures: Any
) -> dict[str, Any]:
    """Return W6's record: the seconds, and what the fresh profile holds afterwards (``figures``: ``nodes``,
    ``links``, ``objects``, and ``rss_before_mb``)."""
    sizes = counts('W6', args.scale)
    nodes = figures['nodes']
    return result(
        system,
        args,
        'W6',
        variant,
        seconds,
        archive_mb=round(os.path.getsize(path) / MB, 1),
        expected_nodes=sizes['nodes'],
        expected_links=sizes['links'],
        nodes_per_s=rate(nodes, seconds),
        archive_of='aiida-core' if os.path.basename(path).startswith('aiida-core-') else 'provstore',
        **figures,
    )


# -- W7: maintenance, storage info and integrity of a profile with loose and unreferenced objects -------------------


def w7_deleted(folder: int) -> bool:
    """Return whether W7 deletes FolderData node number ``folder`` (the last of every :data:`W7_DELETE_EVERY`)."""
    return folder % W7_DELETE_EVERY == W7_DELETE_EVERY - 1


def w7_expected(scale: float) -> dict[str, int]:
    """Return the repository objects of W7's profile at ``scale``: distinct contents stored, those still referenced
    after the deletion, and those no node refers to any more (what maintenance removes)."""
    sizes = counts('W7', scale)
    plan = W2Plan.make(sizes['files'])
    stored: set[int] = set()
    kept: set[int] = set()
    for folder in range(sizes['folders']):
        sources = {plan.sources[folder * W2_FILES_PER_NODE + offset] for offset in range(W2_FILES_PER_NODE)}
        stored |= sources
        if not w7_deleted(folder):
            kept |= sources
    return {'objects': len(stored), 'referenced_objects': len(kept), 'unreferenced_objects': len(stored - kept)}


def w7_result(system: str, args: argparse.Namespace, variant: str, seconds: float, **figures: Any) -> dict[str, Any]:
    """Return a W7 record: the seconds, what the profile holds (``figures``: ``nodes``, the objects ``before`` and
    ``after``...) and what the workload expects (``expected``: objects stored, referenced and unreferenced)."""
    sizes = counts('W7', args.scale)
    expected = {**w7_expected(args.scale), 'deleted_folders': sizes['deleted_folders']}
    return result(
        system,
        args,
        'W7',
        variant,
        seconds,
        expected_nodes=sizes['nodes'] - sizes['deleted_folders'],
        expected=expected,
        **figures,
    )


# -- measuring -----------------------------------------------------------------------------------------------------


class Timer:
    """Wall-clock time, added up over the blocks it runs: ``with timer: ...`` (or ``start()``/``stop()``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def start(self) -> None:
        """Start counting (again)."""
        self._started = time.perf_counter()

    def stop(self) -> None:
        """Stop counting; nothing happens if it is stopped."""
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def repeat_ms(
    function: Callable[[], T], repeats: int = W4_REPEATS, warmup: int = W4_WARMUP
) -> tuple[float, list[float], T]:
    """Call ``function`` ``warmup`` times untimed, then ``repeats`` times timed.

    :return: the median time in ms, every timed run in ms, and the result of the last call.
    """
    for _ in range(warmup):
        function()
    runs: list[float] = []
    value: T
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 3), [round(run, 3) for run in runs], value


def untimed_chunks(items: Iterator[T], size: int, timer: Timer) -> Iterator[list[T]]:
    """Yield lists of up to ``size`` items of ``items``, with ``timer`` stopped while they are generated.

    What a step stores is made outside the measured time, a chunk at a time, so that memory stays flat at any scale.
    """
    while True:
        timer.stop()
        chunk = list(itertools.islice(items, size))
        timer.start()
        if not chunk:
            return
        yield chunk


def peak_rss_mb() -> float:
    """Return the peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (MB if sys.platform == 'darwin' else 1024), 1)


def rss_now_mb() -> float | None:
    """Return the resident memory of this process now, in MiB (``None`` where ``/proc`` is missing)."""
    try:
        with open('/proc/self/statm') as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return None
    return round(pages * os.sysconf('SC_PAGE_SIZE') / MB, 1)


def emit(record: dict[str, Any]) -> None:
    """Print ``record`` (plus ``peak_rss_mb``, unless it holds one measured earlier) as one JSON line, flushed."""
    print(json.dumps({**record, 'peak_rss_mb': record.get('peak_rss_mb', peak_rss_mb())}), flush=True)


def result(
    system: str, args: argparse.Namespace, workload: str, variant: str, seconds: float, **figures: Any
) -> dict[str, Any]:
    """Return a result record: the identifying keys (backend and scale from ``args``), the seconds and the figures."""
    return {
        'system': system,
        'backend': args.backend,
        'workload': workload,
        'variant': variant,
        'scale': args.scale,
        'seconds': round(seconds, 4),
        **figures,
    }


def rate(count: float, seconds: float) -> float:
    """Return ``count`` per second, rounded to 3 significant digits (``0`` for no time)."""
    if seconds <= 0:
        return 0.0
    value = count / seconds
    return float(f'{value:.3g}')


# -- drivers -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """One variant of a step as a system runs it: its name and the key of the profile it runs in.

    Variants sharing a profile key run in the same profile, in order (W2's read-back reads what W2 stored). A
    ``setup`` plan (W4's population) prints no line and runs whenever a selected plan shares its profile, whatever
    ``--variants`` says.
    """

    step: str
    variant: str
    profile: str
    setup: bool = False


W7_PLANS = (
    StepPlan('W7', 'populate', 'w7-full', setup=True),
    StepPlan('W7', 'maintain_full', 'w7-full'),
    StepPlan('W7', 'populate', 'w7-live', setup=True),
    StepPlan('W7', 'maintain_live', 'w7-live'),
    StepPlan('W7', 'populate', 'w7-read', setup=True),
    StepPlan('W7', 'info', 'w7-read'),
    StepPlan('W7', 'info_detailed', 'w7-read'),
    StepPlan('W7', 'integrity_no_hash', 'w7-read'),
    StepPlan('W7', 'integrity', 'w7-read'),
)
"""W7's variants, the same on both systems: each maintenance in a profile of its own, populated for it, so that
both start from the same state; the read-only variants (info, integrity) share a third, which they do not change."""


def build_parser(description: str) -> argparse.ArgumentParser:
    """Return the command line parser shared by the drivers (their worker mode adds hidden options)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--backend', choices=('sqlite_dos', 'psql_dos'), required=True)
    parser.add_argument('--steps', default='W1,W2,W3,W4', help='comma-separated steps (default: W1,W2,W3,W4)')
    parser.add_argument('--scale', type=float, default=1.0)
    parser.add_argument('--one-by-one-count', type=int, default=None, help='nodes W1 stores one by one')
    parser.add_argument('--variants', default='', help='comma-separated variants to run (default: all)')
    parser.add_argument('--repeats', type=int, default=W4_REPEATS, help='timed runs of each W4 query (default: 5)')
    parser.add_argument(
        '--archive-dir', default='', help='where W5 writes its archives and W6 finds them (default: a temporary folder)'
    )
    parser.add_argument('--worker', default='', help=argparse.SUPPRESS)
    parser.add_argument('--profile', default='', help=argparse.SUPPRESS)
    return parser


def parse_steps(text: str) -> list[str]:
    """Return the steps named in ``text`` (``W1,W3``, ``W4`` for W4a-W4e), checked, in the order of :data:`STEPS`.

    :raises SystemExit: for an unknown step.
    """
    names = {step.lower(): step for step in (*STEPS, *GROUPS)}
    wanted: set[str] = set()
    unknown: list[str] = []
    for name in (part.strip() for part in text.split(',') if part.strip()):
        step = names.get(name.lower())
        if step is None:
            unknown.append(name)
        else:
            wanted.update(GROUPS.get(step, (step,)))
    if unknown:
        raise SystemExit(f'unknown step(s) {", ".join(unknown)}; the steps are {", ".join((*STEPS, *GROUPS))}')
    return [step for step in STEPS if step in wanted]


def run_driver(
    args: argparse.Namespace,
    plans: Sequence[StepPlan],
    make_profile: Callable[[str], dict[str, str]],
    drop_profile: Callable[[str], None],
    python: str = sys.executable,
) -> int:
    """Run each planned variant in a worker subprocess, in a fresh profile per profile key; print their lines.

    :param make_profile: creates the profile of a key and returns the environment the workers need to open it.
    :param drop_profile: deletes the profile of a key (its database and files).
    :return: the exit status: 0 if every worker succeeded.
    """
    steps = parse_steps(args.steps)
    wanted = {variant.strip() for variant in args.variants.split(',') if variant.strip()}
    chosen = [
        plan for plan in plans if plan.step in steps and not plan.setup and (not wanted or plan.variant in wanted)
    ]
    needed = {plan.profile for plan in chosen}
    selected = [plan for plan in plans if plan in chosen or (plan.setup and plan.profile in needed)]
    status = 0
    made: dict[str, dict[str, str]] = {}
    try:
        for plan in selected:
            if plan.profile not in made:
                made[plan.profile] = make_profile(plan.profile)
            command = [
                python,
                sys.argv[0],
                '--backend',
                args.backend,
                '--steps',
                plan.step,
                '--scale',
                str(args.scale),
                '--worker',
                plan.variant,
                '--profile',
                plan.profile,
                '--repeats',
                str(args.repeats),
            ]
            if args.one_by_one_count is not None:
                command += ['--one-by-one-count', str(args.one_by_one_count)]
            if args.archive_dir:
                command += ['--archive-dir', args.archive_dir]
            completed = subprocess.run(
                command, env={**os.environ, **made[plan.profile]}, stdout=subprocess.PIPE, text=True, check=False
            )
            sys.stdout.write(completed.stdout)
            sys.stdout.flush()
            if completed.returncode != 0:
                print(f'{plan.step} {plan.variant} on {args.backend} failed ({completed.returncode})', file=sys.stderr)
                status = 1
            if not any(later.profile == plan.profile for later in selected[selected.index(plan) + 1 :]):
                drop_profile(plan.profile)
                del made[plan.profile]
    finally:
        for key in list(made):
            drop_profile(key)
    return status
