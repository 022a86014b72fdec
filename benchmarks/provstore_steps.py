"""Steps W1-W7 of the benchmark workload on provstore: one backend, each variant in a fresh profile.

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
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from workload import NODE_TYPES, StepPlan, Timer, emit, rate, result, untimed_chunks

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
    StepPlan('W4', 'populate', 'w4', setup=True),
    StepPlan('W4a', 'plain', 'w4'),
    StepPlan('W4b', 'iterall', 'w4'),
    StepPlan('W4c', 'join', 'w4'),
    StepPlan('W4d', 'ancestors', 'w4'),
    StepPlan('W4e', 'from_workflows', 'w4'),
    StepPlan('W4e', 'from_all', 'w4'),
    StepPlan('W4a', 'indexed', 'w4'),
    StepPlan('W5', 'populate', 'w5', setup=True),
    StepPlan('W5', 'create', 'w5'),
    StepPlan('W6', 'import', 'w6'),
    StepPlan('W6', 'import_aiida_archive', 'w6-aiida'),
    *workload.W7_PLANS,
)
"""The variants provstore runs, in order, with the profile each runs in. W4's variants share one profile, populated
once; W4a ``indexed`` comes last, since declaring the indexed path changes the profile for whatever runs after it.
W6 imports, each into a fresh profile, the archive W5 wrote and (``import_aiida_archive``) the one aiida-core's W5
wrote in the same run, when there is one. W7's plans are the same on both systems (:data:`workload.W7_PLANS`)."""

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


def _node_row(node_type: str, attributes: dict[str, Any], user_id: int | None, label: str = '') -> dict[str, Any]:
    from provstore.orm.entities import utc_now  # noqa: PLC0415

    now = utc_now()
    return {
        'uuid': str(uuid.uuid4()),
        'node_type': node_type,
        'process_type': None,
        'label': label,
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


# -- W4: queries over a populated profile ------------------------------------------------------------------------------

INDEXED_PATHS = ('attributes.a',)
"""The JSON path W4a's ``indexed`` variant declares indexed."""


def declare_indexed_paths(storage: Any, paths: Sequence[str]) -> tuple[str, list[str]]:
    """Declare the node JSON paths ``paths`` (``attributes.a``) indexed on ``storage``.

    The one place that knows provstore's API for indexed JSON paths: ``EntityStorage.add_json_index(EntityType.NODE,
    'attributes', ('a',))`` (also ``provstore storage index add``).

    :return: the API used, and the names of the indexes.
    :raises NotImplementedError: if the storage has no such API (the variant is then reported as unavailable).
    """
    from provstore.storage import EntityType  # noqa: PLC0415

    add_json_index = getattr(storage, 'add_json_index', None)
    if add_json_index is None:
        raise NotImplementedError(f'{type(storage).__name__} has no add_json_index()')
    names = []
    for path in paths:
        field, *keys = path.split('.')
        names.append(str(add_json_index(EntityType.NODE, field, tuple(keys))))
    return 'EntityStorage.add_json_index', names


def export_closure(pks: Sequence[int]) -> tuple[int, str]:
    """Return the size of the export closure of ``pks`` (aiida-core's default export rules) and the API used.

    The one place that knows provstore's API for it: ``provstore.orm.get_nodes_export(pks)``, a set of pks.
    """
    from provstore.orm import get_nodes_export  # noqa: PLC0415

    return len(get_nodes_export(list(pks))), 'orm.get_nodes_export'


def analyze(storage: Any) -> None:
    """Refresh the database's planner statistics after populating (PostgreSQL's autovacuum would, some time later)."""
    with storage.connection(write=True) as connection:
        connection.exec_driver_sql('ANALYZE')


def populate_w4(variant: str, args: argparse.Namespace) -> None:
    """Fill W4's profile as fast as provstore allows (raw rows, one transaction); prints no line (not measured)."""
    from provstore.orm import get_default_user  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415
    from provstore.storage import EntityType  # noqa: PLC0415

    storage = get_entity_storage()
    sizes = workload.counts('W4', args.scale)
    user_id = get_default_user(storage).pk
    timer = Timer()
    with timer, storage.transaction():
        for chunk in untimed_chunks(workload.w4_dict_attributes(sizes['dicts']), W1_BATCH, timer):
            storage.insert_rows(EntityType.NODE, [_node_row(NODE_TYPES['dict'], values, user_id) for values in chunk])
        for part in workload.w4_graph(sizes['workflows']):
            rows = [_node_row(NODE_TYPES[kind], attributes, user_id, label) for kind, attributes, label in part.nodes]
            ids = storage.insert_rows(EntityType.NODE, rows)
            links = [
                {'input_id': ids[source], 'output_id': ids[target], 'label': label, 'type': link_type}
                for source, target, link_type, label in part.links
            ]
            storage.insert_rows(EntityType.LINK, links)
    analyze(storage)
    print(f'# W4 populated on {args.backend}: {sizes["nodes"]:,} nodes in {timer.seconds:.1f} s', file=sys.stderr)


def run_w4(step: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one W4 query: untimed set-up, one warm-up, then the median of 5 timed runs."""
    from provstore.orm import CalculationNode, Data, Dict, Node, QueryBuilder, WorkflowNode  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    expected = workload.w4_expected(args.scale)
    figures: dict[str, Any] = {}
    query: Callable[[], int]
    if step == 'W4a':
        filters = {'attributes.a': {'>': workload.W4A_THRESHOLD}}
        if variant == 'indexed':
            try:
                started = time.perf_counter()
                figures['api'], names = declare_indexed_paths(storage, INDEXED_PATHS)
                figures['index_seconds'] = round(time.perf_counter() - started, 3)
            except NotImplementedError as exception:
                return result(SYSTEM, args, step, variant, 0.0, ms=None, unavailable=str(exception))
            plan = QueryBuilder().append(Dict, filters=filters).explain()
            figures['plan_uses_index'] = any(name in plan for name in names) if names else None
        elif variant != 'plain':
            raise SystemExit(f'W4a has no variant {variant!r}')

        def query() -> int:
            return QueryBuilder().append(Dict, filters=filters).count()

    elif step == 'W4b':

        def query() -> int:
            builder = QueryBuilder().append(Dict, project=[f'attributes.{key}' for key in workload.W4B_KEYS])
            return sum(1 for _ in builder.iterall(batch_size=workload.W4B_BATCH))

    elif step == 'W4c':

        def query() -> int:
            builder = QueryBuilder()
            builder.append(CalculationNode, tag='c', filters={'attributes.x': workload.W4C_X})
            builder.append(Data, with_outgoing='c', project='id')
            return len(builder.all(flat=True))

    elif step == 'W4d':
        (target,) = QueryBuilder().append(Node, filters={'label': workload.W4D_LABEL}, project='id').all(flat=True)

        def query() -> int:
            builder = QueryBuilder()
            builder.append(Node, filters={'id': target}, tag='n')
            builder.append(Node, with_descendants='n', project='id')
            return len(builder.all(flat=True))

    elif step == 'W4e':
        start_class = WorkflowNode if variant == 'from_workflows' else Node
        starts = QueryBuilder().append(start_class, project='id').all(flat=True)
        figures['starting_nodes'] = len(starts)

        def query() -> int:
            size, figures['api'] = export_closure(starts)
            return size

    else:
        raise SystemExit(f'no step {step!r}')
    median, runs, rows = workload.repeat_ms(query, args.repeats)
    expect = expected[f'W4e_{variant}' if step == 'W4e' else step]
    figures.update(rows=rows, expected_rows=expect)
    if step == 'W4b':
        figures['rows_per_s'] = rate(rows, median / 1000)
    return result(SYSTEM, args, step, variant, median / 1000, ms=median, ms_runs=runs, **figures)


# -- W5 and W6: an archive of the whole profile, and its import into a fresh one --------------------------------------


def archive_format() -> Any:
    """Return the archive format both steps use: ``sqlite_zip`` (aiida-core's ``.aiida`` files), from the registry."""
    from provstore.registry import get_archive_format  # noqa: PLC0415

    return get_archive_format('sqlite_zip')


def populate_w5(variant: str, args: argparse.Namespace) -> None:
    """Fill W5's profile (not timed): W4's Dict nodes and graph (processes sealed) as raw rows, a group holding the
    workflows, and W2's FolderData nodes, their files written in bulk (straight into packs) and their rows raw."""
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    fill_whole_profile(storage, args, loose=False)
    analyze(storage)
    sizes = workload.counts('W5', args.scale)
    print(f'# W5 populated on {args.backend}: {sizes["nodes"]:,} nodes, {sizes["files"]:,} files', file=sys.stderr)


def fill_whole_profile(storage: Any, args: argparse.Namespace, loose: bool) -> None:
    """Store W5's content in ``storage`` as raw rows (W4's Dicts and graph, a group, W2's FolderData nodes).

    :param loose: write each file by itself with the repository's single-object API
        (``RepositoryBackend.put_object_from_filelike``: a loose object), and label the FolderData nodes W7 deletes;
        otherwise write a chunk's files in one bulk call (``put_objects_from_filelikes``: straight into packs).
    """
    import io  # noqa: PLC0415

    from provstore.orm import Group, get_default_user  # noqa: PLC0415
    from provstore.storage import EntityType  # noqa: PLC0415

    sizes = workload.counts('W5', args.scale)
    user_id = get_default_user(storage).pk
    repository = storage.get_repository()
    group = Group(workload.W5_GROUP_LABEL, storage=storage).store()
    with storage.transaction():
        for chunk in workload.untimed_chunks(workload.w4_dict_attributes(sizes['dicts']), W1_BATCH, Timer()):
            storage.insert_rows(EntityType.NODE, [_node_row(NODE_TYPES['dict'], values, user_id) for values in chunk])
        for part in workload.w5_graph(sizes['workflows']):
            rows = [_node_row(NODE_TYPES[kind], attributes, user_id, label) for kind, attributes, label in part.nodes]
            ids = storage.insert_rows(EntityType.NODE, rows)
            links = [
                {'input_id': ids[source], 'output_id': ids[target], 'label': label, 'type': link_type}
                for source, target, link_type, label in part.links
            ]
            storage.insert_rows(EntityType.LINK, links)
            members = [ids[index] for index, (kind, _, _) in enumerate(part.nodes) if kind == 'workflow']
            storage.insert_rows(EntityType.GROUP_NODE, [{'dbgroup_id': group.pk, 'dbnode_id': pk} for pk in members])
    folder = 0
    for folders in workload.w5_folder_nodes(sizes['folders']):
        with storage.transaction():
            contents = [content for files in folders for _, content in files]
            if loose:
                keys = [repository.put_object_from_filelike(io.BytesIO(content)) for content in contents]
            else:
                keys = repository.put_objects_from_filelikes([io.BytesIO(content) for content in contents])
            rows = []
            for index, files in enumerate(folders):
                paths = [path for path, _ in files]
                metadata = workload.repository_metadata(list(zip(paths, keys[5 * index : 5 * index + 5], strict=True)))
                label = workload.W7_DELETE_LABEL if loose and workload.w7_deleted(folder) else ''
                row = _node_row(NODE_TYPES['folder'], {}, user_id, label)
                rows.append({**row, 'repository_metadata': metadata})
                folder += 1
            storage.insert_rows(EntityType.NODE, rows)


def run_w5(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Write an archive of the whole profile (``provstore.archive.create.create_archive``, default compression 6)."""
    from provstore.archive.create import create_archive  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    path = Path(workload.archive_path(args.archive_dir, SYSTEM, args.backend, args.scale))
    before = workload.rss_now_mb()
    timer = Timer()
    with timer:
        summary = create_archive(storage, path, archive_format(), force=True)
    figures = {'object_bytes': summary.object_bytes, 'rss_before_mb': before}
    return workload.w5_result(SYSTEM, args, timer.seconds, str(path), **figures)


def run_w6(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import W5's archive (provstore's own, or aiida-core's) into this fresh profile (``import_archive``, defaults)."""
    from provstore.archive.imports import import_archive  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    system = 'aiida-core' if variant == 'import_aiida_archive' else SYSTEM
    path = workload.archive_path(args.archive_dir, system, args.backend, args.scale)
    if not os.path.exists(path):
        if variant == 'import_aiida_archive':
            return result(SYSTEM, args, 'W6', variant, 0.0, unavailable=f'no archive of aiida-core at {path}')
        raise SystemExit(f'W6 imports the archive W5 writes, and there is none at {path}: run --steps W5,W6')
    before = workload.rss_now_mb()
    timer = Timer()
    with timer:
        import_archive(storage, Path(path), archive_format())
    nodes, links, objects = _profile_counts(storage)
    return workload.w6_result(
        SYSTEM, args, variant, timer.seconds, path, nodes=nodes, links=links, objects=objects, rss_before_mb=before
    )


def _profile_counts(storage: Any) -> tuple[int, int, int]:
    """Return the nodes, links and repository objects ``storage`` holds (after an import; not timed)."""
    from provstore.storage import EntityType  # noqa: PLC0415

    nodes, links = storage.count_rows(EntityType.NODE), storage.count_rows(EntityType.LINK)
    objects = sum(1 for _ in storage.get_repository().list_objects())
    return nodes, links, objects


# -- W7: maintenance, storage info and integrity -----------------------------------------------------------------------


def populate_w7(variant: str, args: argparse.Namespace) -> None:
    """Fill W7's profile (not timed): W5's content with every file a loose object, then delete the FolderData nodes
    labelled for deletion (``provstore.orm.delete_nodes``), whose files no other node shares become unreferenced."""
    from provstore.orm import FolderData, QueryBuilder, delete_nodes  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415

    storage = get_entity_storage()
    fill_whole_profile(storage, args, loose=True)
    query = QueryBuilder().append(FolderData, filters={'label': workload.W7_DELETE_LABEL}, project='id')
    deleted = delete_nodes(query.all(flat=True), dry_run=False, storage=storage)
    analyze(storage)
    state = _object_state(storage)
    print(f'# W7 populated on {args.backend}: {len(deleted)} nodes deleted, objects {state}', file=sys.stderr)


def run_w7(variant: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run one W7 variant on the open profile: maintenance (full or live), ``get_info`` (plain or detailed), or the
    integrity check (with or without hashing every object)."""
    from provstore.manager import maintain_storage  # noqa: PLC0415
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415
    from provstore.orm.integrity import check_integrity  # noqa: PLC0415
    from provstore.storage import EntityType  # noqa: PLC0415

    if variant == 'populate':
        populate_w7(variant, args)
        return None
    storage = get_entity_storage()  # opened (and the profile's shared lock taken) before timing
    before = _object_state(storage)
    figures: dict[str, Any] = {}
    timer = Timer()
    if variant in ('maintain_full', 'maintain_live'):
        with timer:
            report = maintain_storage(storage, full=variant == 'maintain_full')
        figures.update(steps=list(report.steps), unreferenced_deleted=report.details['unreferenced']['deleted'])
    elif variant in ('info', 'info_detailed'):
        with timer:
            info = storage.get_info(detailed=variant == 'info_detailed')
        figures['info_keys'] = sorted(info)
    elif variant in ('integrity', 'integrity_no_hash'):
        with timer:
            checks = check_integrity(storage, hashes=variant == 'integrity')
        figures['failed'] = [check.name for check in checks if check.failed]
        figures['clean'] = not figures['failed']
        figures['checks'] = {check.name: {'checked': check.checked, 'problems': check.problems} for check in checks}
        figures['unreferenced_found'] = next(check.problems for check in checks if check.name == 'unreferenced')
    else:
        raise SystemExit(f'W7 has no variant {variant!r}')
    figures.update(
        nodes=storage.count_rows(EntityType.NODE), before=before, after=_object_state(storage), api=W7_APIS[variant]
    )
    return workload.w7_result(SYSTEM, args, variant, timer.seconds, **figures)


W7_APIS = {
    'maintain_full': 'manager.maintain_storage(storage, full=True)',
    'maintain_live': 'manager.maintain_storage(storage, full=False)',
    'info': 'storage.get_info(detailed=False)',
    'info_detailed': 'storage.get_info(detailed=True)',
    'integrity': 'orm.integrity.check_integrity(storage, hashes=True)',
    'integrity_no_hash': 'orm.integrity.check_integrity(storage, hashes=False)',
}
"""What each W7 variant calls (recorded in its line)."""


def _object_state(storage: Any) -> dict[str, int]:
    """Return the objects of ``storage``'s repository: distinct keys, loose files and packed objects (not timed)."""
    repository = storage.get_repository()
    counts = repository.get_info()['objects']
    return {'objects': sum(1 for _ in repository.list_objects()), 'loose': counts['loose'], 'packed': counts['packed']}


def _w4_runner(step: str) -> Callable[[str, argparse.Namespace], dict[str, Any]]:
    return lambda variant, args: run_w4(step, variant, args)


RUNNERS: dict[str, Callable[[str, argparse.Namespace], dict[str, Any] | None]] = {
    'W1': run_w1,
    'W2': run_w2,
    'W3': run_w3,
    'W4': populate_w4,
    **{step: _w4_runner(step) for step in ('W4a', 'W4b', 'W4c', 'W4d', 'W4e')},
    'W5': lambda variant, args: populate_w5(variant, args) if variant == 'populate' else run_w5(variant, args),
    'W6': run_w6,
    'W7': run_w7,
}


def worker(args: argparse.Namespace) -> None:
    """Run one variant in the profile ``args.profile`` (of ``$PROVSTORE_PATH``) and print its JSON line (if any)."""
    from provstore.manager import get_manager  # noqa: PLC0415

    manager = get_manager()
    manager.load_profile(args.profile)
    try:
        record = RUNNERS[args.steps](args.worker, args)
        if record is not None:
            emit(record)
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
    args.archive_dir = args.archive_dir or profiles.folder
    try:
        return workload.run_driver(args, PLANS, profiles.make, profiles.drop)
    finally:
        profiles.close()


if __name__ == '__main__':
    sys.exit(main())
