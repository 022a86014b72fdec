"""Steps W1-W3 of the benchmark workload on provstore: one backend, each variant in a fresh profile.

Run through ``run.py``; on its own::

    PROVSTORE_PATH is set by the driver: python benchmarks/provstore_steps.py --backend sqlite_dos --steps W1

Prints one JSON line per variant (see ``workload.py``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from workload import StepPlan, Timer, emit, rate, result, untimed_chunks

SYSTEM = 'provstore'

PLANS = (
    StepPlan('W1', 'one_by_one', 'w1-one'),
    StepPlan('W1', 'transaction', 'w1-transaction'),
    StepPlan('W1', 'batch', 'w1-batch'),
    StepPlan('W1', 'rows', 'w1-rows'),
    StepPlan('W2', 'one_by_one', 'w2-one'),
    StepPlan('W2', 'read_back', 'w2-one'),
    StepPlan('W2', 'batch', 'w2-batch'),
    StepPlan('W3', 'one_by_one', 'w3-one'),
    StepPlan('W3', 'batch', 'w3-batch'),
)
"""The variants provstore runs, in order, with the profile each runs in."""

W1_BATCH = 10_000
"""Dict nodes per ``store_nodes`` call (and rows per ``insert_rows`` call) in W1's batch variants."""

W2_BATCH = 100
"""FolderData nodes per ``store_nodes`` call in W2's batch variant (500 files)."""

W3_BATCH = 50
"""Workflows (with their 40 calculation, input and output nodes each) per ``store_nodes`` call in W3's batch."""

POSTGRES = {'database_hostname': '127.0.0.1', 'database_port': 5432, 'database_username': 'postgres'}


# -- the worker: one variant in one profile ------------------------------------------------------------------------


def run_w1(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Store W1's Dict nodes: one by one, in one transaction, with ``store_nodes`` or as raw rows."""
    from provstore.orm import Dict, get_default_user, store_nodes  # noqa: PLC0415 - after the profile is chosen
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415
    from provstore.storage import EntityType  # noqa: PLC0415

    storage = get_entity_storage()
    sizes = workload.counts('W1', args.scale, args.one_by_one_count)
    count = sizes['one_by_one'] if variant == 'one_by_one' else sizes['nodes']
    user_id = get_default_user(storage).pk  # the default user is made once, before timing
    attributes = workload.dict_attributes(count)
    timer = Timer()
    with timer:
        if variant == 'one_by_one':
            for chunk in untimed_chunks(attributes, 1000, timer):
                for values in chunk:
                    Dict(values).store()
        elif variant == 'transaction':
            with storage.transaction():
                for chunk in untimed_chunks(attributes, 1000, timer):
                    for values in chunk:
                        Dict(values).store()
        elif variant == 'batch':
            for chunk in untimed_chunks(attributes, W1_BATCH, timer):
                store_nodes([Dict(values) for values in chunk], storage)
        elif variant == 'rows':
            with storage.transaction():
                for chunk in untimed_chunks(attributes, W1_BATCH, timer):
                    rows = [_node_row(Dict.NODE_TYPE, values, user_id) for values in chunk]
                    storage.insert_rows(EntityType.NODE, rows)
        else:
            raise SystemExit(f'W1 has no variant {variant!r}')
    return result(SYSTEM, args, 'W1', variant, timer.seconds, nodes=count, **_nodes_rate(count, timer))


def _node_row(node_type: str, attributes: dict[str, Any], user_id: int | None) -> dict[str, Any]:
    from provstore.orm.entities import utc_now  # noqa: PLC0415

    now = utc_now()
    return {
        'uuid': str(uuid.uuid4()),
        'node_type': node_type,
        'process_type': None,
        'label': '',
        'description': '',
        'ctime': now,
        'mtime': now,
        'attributes': attributes,
        'extras': {},
        'repository_metadata': {},
        'dbcomputer_id': None,
        'user_id': user_id,
    }


def _nodes_rate(count: int, timer: Timer) -> dict[str, float]:
    return {'nodes_per_s': rate(count, timer.seconds)}


def run_w2(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Store W2's FolderData nodes with five files each (one by one, or batched), or read 400 of them back."""
    from provstore.orm import FolderData, Node, get_default_user, store_nodes  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    sizes = workload.counts('W2', args.scale)
    plan = workload.W2Plan.make(sizes['files'])
    if variant == 'read_back':
        nodes = sizes['read_back']
        pks = [node.pk for node in itertools.islice(FolderData.collection(storage).iter_all(), nodes)]
        files = 0
        size = 0
        timer = Timer()
        with timer:
            for pk in pks:
                node = Node.collection(storage).get(pk=pk)
                for folder, _, names in node.base.repository.walk():
                    for name in names:
                        size += len(node.base.repository.get_object_content(folder / name, 'rb'))
                        files += 1
        return result(
            SYSTEM,
            args,
            'W2',
            variant,
            timer.seconds,
            nodes=nodes,
            files=files,
            bytes=size,
            mb_per_s=rate(size / workload.MB, timer.seconds),
            files_per_s=rate(files, timer.seconds),
        )
    get_default_user(storage)
    nodes = sizes['nodes']

    def make(files: list[tuple[str, bytes]]) -> FolderData:
        node = FolderData(storage=storage)
        for path, content in files:
            node.put_object_from_bytes(content, path)
        return node

    contents = (plan.node_files(index) for index in range(nodes))
    timer = Timer()
    with timer:
        if variant == 'one_by_one':
            for chunk in untimed_chunks(contents, 10, timer):
                for node_files in chunk:
                    make(node_files).store()
        elif variant == 'batch':
            for chunk in untimed_chunks(contents, W2_BATCH, timer):
                store_nodes([make(node_files) for node_files in chunk], storage)
        else:
            raise SystemExit(f'W2 has no variant {variant!r}')
    files = sizes['files']
    size = plan.total_bytes(nodes)
    return result(
        SYSTEM,
        args,
        'W2',
        variant,
        timer.seconds,
        nodes=nodes,
        files=files,
        bytes=size,
        mb_per_s=rate(size / workload.MB, timer.seconds),
        files_per_s=rate(files, timer.seconds),
    )


def run_w3(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Store W3's graph: workflows calling calculations with two inputs and one output each."""
    from provstore.orm import (  # noqa: PLC0415
        CalculationNode,
        Int,
        LinkType,
        Node,
        WorkflowNode,
        get_default_user,
        store_nodes,
    )
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    sizes = workload.counts('W3', args.scale)
    get_default_user(storage)
    graph = workload.w3_calculations(sizes['workflows'])

    def build(calculations: list[workload.W3Calculation], workflow: WorkflowNode) -> list[Node]:
        made: list[Node] = []
        for item in calculations:
            first, second = Int(item.inputs[0], storage=storage), Int(item.inputs[1], storage=storage)
            calculation = CalculationNode(storage=storage)
            calculation.base.attributes.set('x', item.x)
            calculation.base.links.add_incoming(first, LinkType.INPUT_CALC, 'left')
            calculation.base.links.add_incoming(second, LinkType.INPUT_CALC, 'right')
            calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
            output = Int(item.output, storage=storage)
            output.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
            made += [first, second, calculation, output]
        return made

    timer = Timer()
    with timer:
        if variant == 'one_by_one':
            for calculations in graph:
                workflow = WorkflowNode(storage=storage).store()
                for item in calculations:
                    first = Int(item.inputs[0], storage=storage).store()
                    second = Int(item.inputs[1], storage=storage).store()
                    calculation = CalculationNode(storage=storage)
                    calculation.base.attributes.set('x', item.x)
                    calculation.base.links.add_incoming(first, LinkType.INPUT_CALC, 'left')
                    calculation.base.links.add_incoming(second, LinkType.INPUT_CALC, 'right')
                    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
                    calculation.store()
                    output = Int(item.output, storage=storage)
                    output.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
                    output.store()
        elif variant == 'batch':
            while chunk := list(itertools.islice(graph, W3_BATCH)):
                batch: list[Node] = []
                for calculations in chunk:
                    workflow = WorkflowNode(storage=storage)
                    batch += [workflow, *build(calculations, workflow)]
                store_nodes(batch, storage)
        else:
            raise SystemExit(f'W3 has no variant {variant!r}')
    nodes = sizes['nodes']
    return result(
        SYSTEM,
        args,
        'W3',
        variant,
        timer.seconds,
        nodes=nodes,
        calculations=sizes['calculations'],
        workflows=sizes['workflows'],
        **_nodes_rate(nodes, timer),
    )


RUNNERS = {'W1': run_w1, 'W2': run_w2, 'W3': run_w3}


def worker(args: argparse.Namespace) -> None:
    """Run one variant in the profile ``args.profile`` (of ``$PROVSTORE_PATH``) and print its JSON line."""
    from provstore.manager import get_manager  # noqa: PLC0415

    manager = get_manager()
    manager.load_profile(args.profile)
    try:
        emit(RUNNERS[args.steps](args.worker, args))
    finally:
        manager.unload_profile()


# -- the driver: profiles --------------------------------------------------------------------------------------------


class Profiles:
    """Fresh provstore profiles in a temporary ``$PROVSTORE_PATH``, deleted (databases dropped) afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.folder = tempfile.mkdtemp(prefix='provstore-bench-')
        self.tag = uuid.uuid4().hex[:8]
        os.environ['PROVSTORE_PATH'] = self.folder

    def make(self, key: str) -> dict[str, str]:
        """Create the profile ``key`` and return the environment that selects it."""
        from provstore.cli.profile import create_profile  # noqa: PLC0415

        options: dict[str, Any] = {}
        if self.backend == 'psql_dos':
            options = {**POSTGRES, 'database_name': f'provstore_bench_{self.tag}_{key.replace("-", "_")}'}
        create_profile(key, self.backend, options, email='bench@example.com')
        return {'PROVSTORE_PATH': self.folder}

    def drop(self, key: str) -> None:
        """Erase the profile ``key``'s storage (its database too) and forget it."""
        from provstore.config import edit_config  # noqa: PLC0415
        from provstore.manager import checked_profile, get_storage_class  # noqa: PLC0415

        with edit_config() as config:
            profile = checked_profile(config.get_profile(key))
            get_storage_class(profile).erase(profile)
            config.remove_profile(key)
        shutil.rmtree(profile.folder, ignore_errors=True)

    def close(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    """Run the driver, or one worker when ``--worker`` is given."""
    args = workload.build_parser(__doc__.splitlines()[0]).parse_args()
    if args.worker:
        worker(args)
        return 0
    profiles = Profiles(args.backend)
    try:
        return workload.run_driver(args, PLANS, profiles.make, profiles.drop)
    finally:
        profiles.close()


if __name__ == '__main__':
    sys.exit(main())
