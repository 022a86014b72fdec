"""The benchmark workload (steps W1-W3 of ``shared/bench/WORKLOAD.md``), shared by provstore and the reference.

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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    'SEED',
    'StepPlan',
    'Timer',
    'W2Plan',
    'build_parser',
    'counts',
    'dict_attributes',
    'emit',
    'run_driver',
    'untimed_chunks',
    'w3_calculations',
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

STEPS = ('W1', 'W2', 'W3')

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


def emit(record: dict[str, Any]) -> None:
    """Print ``record`` (plus ``peak_rss_mb``) as one JSON line, flushed."""
    print(json.dumps({**record, 'peak_rss_mb': peak_rss_mb()}), flush=True)


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

    Variants sharing a profile key run in the same profile, in order (W2's read-back reads what W2 stored).
    """

    step: str
    variant: str
    profile: str


def build_parser(description: str) -> argparse.ArgumentParser:
    """Return the command line parser shared by the drivers (their worker mode adds hidden options)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--backend', choices=('sqlite_dos', 'psql_dos'), required=True)
    parser.add_argument('--steps', default=','.join(STEPS), help='comma-separated steps (default: W1,W2,W3)')
    parser.add_argument('--scale', type=float, default=1.0)
    parser.add_argument('--one-by-one-count', type=int, default=None, help='nodes W1 stores one by one')
    parser.add_argument('--variants', default='', help='comma-separated variants to run (default: all)')
    parser.add_argument('--worker', default='', help=argparse.SUPPRESS)
    parser.add_argument('--profile', default='', help=argparse.SUPPRESS)
    return parser


def parse_steps(text: str) -> list[str]:
    """Return the steps named in ``text`` (``W1,W3``), checked.

    :raises SystemExit: for an unknown step.
    """
    steps = [step.strip().upper() for step in text.split(',') if step.strip()]
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise SystemExit(f'unknown step(s) {", ".join(unknown)}; the steps are {", ".join(STEPS)}')
    return steps


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
    selected = [plan for plan in plans if plan.step in steps and (not wanted or plan.variant in wanted)]
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
            ]
            if args.one_by_one_count is not None:
                command += ['--one-by-one-count', str(args.one_by_one_count)]
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
