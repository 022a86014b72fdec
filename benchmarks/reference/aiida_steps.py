"""Steps W1-W7 of the benchmark workload on the reference, aiida-core 2.9.4, run with aiida-core's own interpreter.

aiida-core lives in a virtual environment of its own (never in provstore's)::

    python3.11 -m venv ../aiida-venv && ../aiida-venv/bin/pip install aiida-core==2.9.4
    ../aiida-venv/bin/python benchmarks/reference/aiida_steps.py --backend sqlite_dos --steps W1

``run.py --reference`` does this for you. Each variant runs in a throw-away aiida profile (``core.sqlite_dos``, or
``core.psql_dos`` on a fresh database on 127.0.0.1:5432, dropped afterwards) in a temporary ``$AIIDA_PATH``, in a
worker subprocess of its own; one JSON line per variant, the same keys as provstore's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workload
from workload import NODE_TYPES, StepPlan, Timer, emit, rate, result, untimed_chunks

SYSTEM = 'aiida-core'

PLANS = (
    StepPlan('W1', 'one_by_one', 'w1-one'),
    StepPlan('W1', 'transaction', 'w1-transaction'),
    StepPlan('W1', 'rows', 'w1-rows'),
    StepPlan('W2', 'one_by_one', 'w2-one'),
    StepPlan('W2', 'read_back', 'w2-one'),
    StepPlan('W3', 'one_by_one', 'w3-one'),
    StepPlan('W4', 'populate', 'w4', setup=True),
    StepPlan('W4a', 'plain', 'w4'),
    StepPlan('W4b', 'iterall', 'w4'),
    StepPlan('W4c', 'join', 'w4'),
    StepPlan('W4d', 'ancestors', 'w4'),
    StepPlan('W4e', 'from_workflows', 'w4'),
    StepPlan('W4e', 'from_all', 'w4'),
    StepPlan('W5', 'populate', 'w5', setup=True),
    StepPlan('W5', 'create', 'w5'),
    StepPlan('W6', 'import', 'w6'),
    StepPlan('W6', 'import_provstore_archive', 'w6-provstore'),
    *workload.W7_PLANS,
)
"""The variants aiida-core can run: it has no batch store of ORM nodes (``transaction`` is its closest path), and no
indexes on JSON paths (W4a runs ``plain`` only). W4's variants share one profile, populated once. W6 imports the
archive aiida-core's W5 wrote into a fresh profile, and (``import_provstore_archive``) the one provstore's W5 wrote
in the same run, when there is one. W7's plans are provstore's (:data:`workload.W7_PLANS`); the integrity variants
print a line saying aiida-core cannot do them."""

W1_ROWS_BATCH = 10_000
"""Rows per ``bulk_insert`` call in W1's ``rows`` variant."""

POSTGRES = {'host': '127.0.0.1', 'port': 5432, 'user': 'postgres'}


# -- the worker ------------------------------------------------------------------------------------------------------


def run_w1(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Store W1's Dict nodes: one by one (a commit each), in one transaction, or as prepared rows (bulk_insert)."""
    from aiida.manage import get_manager  # noqa: PLC0415 - after the profile is loaded
    from aiida.orm import Dict, User  # noqa: PLC0415
    from aiida.orm.entities import EntityTypes  # noqa: PLC0415

    storage = get_manager().get_profile_storage()
    sizes = workload.counts('W1', args.scale, args.one_by_one_count)
    count = sizes['one_by_one'] if variant == 'one_by_one' else sizes['nodes']
    user = User.collection.get_default()
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
        elif variant == 'rows':
            with storage.transaction():
                for chunk in untimed_chunks(attributes, W1_ROWS_BATCH, timer):
                    rows = [_node_row('data.core.dict.Dict.', values, user.pk) for values in chunk]
                    storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)
        else:
            raise SystemExit(f'W1 has no variant {variant!r} on the reference')
    return result(
        SYSTEM,
        args,
        'W1',
        variant,
        timer.seconds,
        nodes=count,
        nodes_per_s=rate(count, timer.seconds),
    )


def _node_row(node_type: str, attributes: dict[str, Any], user_id: int, label: str = '') -> dict[str, Any]:
    from aiida.common import timezone  # noqa: PLC0415

    now = timezone.now()
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
        'user_id': user_id,
    }


def run_w2(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Store W2's FolderData nodes with five files each, one by one; or read 400 of them back."""
    import io  # noqa: PLC0415

    from aiida.orm import FolderData, QueryBuilder, load_node  # noqa: PLC0415

    sizes = workload.counts('W2', args.scale)
    plan = workload.W2Plan.make(sizes['files'])
    if variant == 'read_back':
        nodes = sizes['read_back']
        query = QueryBuilder().append(FolderData, project='id').order_by({FolderData: {'id': 'asc'}}).limit(nodes)
        pks = [pk for (pk,) in query.all()]
        files = 0
        size = 0
        timer = Timer()
        with timer:
            for pk in pks:
                node = load_node(pk)
                for folder, _, names in node.base.repository.walk():
                    for name in names:
                        size += len(node.base.repository.get_object_content(str(folder / name), 'rb'))
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
    if variant != 'one_by_one':
        raise SystemExit(f'W2 has no variant {variant!r} on the reference')
    nodes = sizes['nodes']
    contents = (plan.node_files(index) for index in range(nodes))
    timer = Timer()
    with timer:
        for chunk in untimed_chunks(contents, 10, timer):
            for files in chunk:
                node = FolderData()
                for path, content in files:
                    node.base.repository.put_object_from_filelike(io.BytesIO(content), path)
                node.store()
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
    """Store W3's graph node by node: low-level process nodes, links added with ``add_incoming``."""
    from aiida.common.links import LinkType  # noqa: PLC0415
    from aiida.orm import CalculationNode, Int, WorkflowNode  # noqa: PLC0415

    if variant != 'one_by_one':
        raise SystemExit(f'W3 has no variant {variant!r} on the reference')
    sizes = workload.counts('W3', args.scale)
    timer = Timer()
    with timer:
        for calculations in workload.w3_calculations(sizes['workflows']):
            workflow = WorkflowNode().store()
            for item in calculations:
                first = Int(item.inputs[0]).store()
                second = Int(item.inputs[1]).store()
                calculation = CalculationNode()
                calculation.base.attributes.set('x', item.x)
                calculation.base.links.add_incoming(first, LinkType.INPUT_CALC, 'left')
                calculation.base.links.add_incoming(second, LinkType.INPUT_CALC, 'right')
                calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
                calculation.store()
                output = Int(item.output)
                output.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
                output.store()
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
        nodes_per_s=rate(nodes, timer.seconds),
    )


# -- W4: queries over a populated profile ------------------------------------------------------------------------------


def populate_w4(variant: str, args: argparse.Namespace) -> None:
    """Fill W4's profile as fast as aiida-core allows: ``bulk_insert`` of prepared rows, one transaction (not timed).

    The pks of a chunk's nodes are looked up by uuid after its insert: ``bulk_insert`` does not promise to return
    them in the order of the rows.
    """
    from aiida.manage import get_manager  # noqa: PLC0415
    from aiida.orm import Node, QueryBuilder, User  # noqa: PLC0415
    from aiida.orm.entities import EntityTypes  # noqa: PLC0415

    storage = get_manager().get_profile_storage()
    sizes = workload.counts('W4', args.scale)
    user_id = User.collection.get_default().pk
    timer = Timer()
    with timer, storage.transaction():
        for chunk in untimed_chunks(workload.w4_dict_attributes(sizes['dicts']), W1_ROWS_BATCH, timer):
            rows = [_node_row(NODE_TYPES['dict'], values, user_id) for values in chunk]
            storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)
        for part in workload.w4_graph(sizes['workflows']):
            rows = [_node_row(NODE_TYPES[kind], attributes, user_id, label) for kind, attributes, label in part.nodes]
            storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)
            uuids = [row['uuid'] for row in rows]
            query = QueryBuilder().append(Node, filters={'uuid': {'in': uuids}}, project=['uuid', 'id'])
            pks = {str(node_uuid): pk for node_uuid, pk in query.iterall(batch_size=10_000)}
            ids = [pks[node_uuid] for node_uuid in uuids]
            links = [
                {'input_id': ids[source], 'output_id': ids[target], 'label': label, 'type': link_type}
                for source, target, link_type, label in part.links
            ]
            storage.bulk_insert(EntityTypes.LINK, links)
    _analyze(storage)
    print(f'# W4 populated on {args.backend}: {sizes["nodes"]:,} nodes in {timer.seconds:.1f} s', file=sys.stderr)


def run_w4(step: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one W4 query: untimed set-up, one warm-up, then the median of 5 timed runs."""
    from aiida.orm import CalculationNode, Data, Dict, Node, QueryBuilder, WorkflowNode  # noqa: PLC0415
    from aiida.tools.graph.graph_traversers import get_nodes_export  # noqa: PLC0415

    expected = workload.w4_expected(args.scale)
    figures: dict[str, Any] = {}
    query: Callable[[], int]
    if step == 'W4a':
        if variant != 'plain':
            raise SystemExit(f'W4a has no variant {variant!r} on the reference')

        def query() -> int:
            filters = {'attributes.a': {'>': workload.W4A_THRESHOLD}}
            return int(QueryBuilder().append(Dict, filters=filters).count())

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
        figures.update(starting_nodes=len(starts), api='get_nodes_export')

        def query() -> int:
            return len(get_nodes_export(starting_pks=starts, get_links=False)['nodes'])

    else:
        raise SystemExit(f'no step {step!r}')
    median, runs, rows = workload.repeat_ms(query, args.repeats)
    expect = expected[f'W4e_{variant}' if step == 'W4e' else step]
    figures.update(rows=rows, expected_rows=expect)
    if step == 'W4b':
        figures['rows_per_s'] = rate(rows, median / 1000)
    return result(SYSTEM, args, step, variant, median / 1000, ms=median, ms_runs=runs, **figures)


# -- W5 and W6: an archive of the whole profile, and its import into a fresh one --------------------------------------


def populate_w5(variant: str, args: argparse.Namespace) -> None:
    """Fill W5's profile (not timed): the same as provstore's, W4's Dicts and graph (processes sealed) with
    ``bulk_insert``, a group holding the workflows, W2's FolderData nodes (files put in the repository, rows by
    ``bulk_insert``); then the loose objects are packed (``storage.maintain()``), as provstore's bulk write packs."""
    from aiida.manage import get_manager  # noqa: PLC0415

    storage = get_manager().get_profile_storage()
    fill_whole_profile(storage, args, label_deleted=False)
    storage.maintain()
    _analyze(storage)
    sizes = workload.counts('W5', args.scale)
    print(f'# W5 populated on {args.backend}: {sizes["nodes"]:,} nodes, {sizes["files"]:,} files', file=sys.stderr)


def _analyze(storage: Any) -> None:
    """Refresh the database's planner statistics after populating (as provstore's driver does)."""
    from sqlalchemy import text  # noqa: PLC0415

    session = storage.get_session()
    session.execute(text('ANALYZE'))
    session.commit()


def fill_whole_profile(storage: Any, args: argparse.Namespace, label_deleted: bool) -> None:
    """Store W5's content with ``bulk_insert`` (W4's Dicts and graph, a group, W2's FolderData nodes), each file put
    in the repository by itself (``put_object_from_filelike``: a loose object).

    :param label_deleted: label the FolderData nodes W7 deletes.
    """
    import io  # noqa: PLC0415

    from aiida.orm import Group, Node, QueryBuilder, User  # noqa: PLC0415
    from aiida.orm.entities import EntityTypes  # noqa: PLC0415

    sizes = workload.counts('W5', args.scale)
    user_id = User.collection.get_default().pk
    repository = storage.get_repository()
    group = Group(label=workload.W5_GROUP_LABEL).store()

    def insert_nodes(rows: list[dict[str, Any]]) -> list[int]:
        storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)
        uuids = [row['uuid'] for row in rows]
        query = QueryBuilder().append(Node, filters={'uuid': {'in': uuids}}, project=['uuid', 'id'])
        pks = {str(node_uuid): pk for node_uuid, pk in query.iterall(batch_size=10_000)}
        return [pks[node_uuid] for node_uuid in uuids]

    folder = 0
    with storage.transaction():
        for chunk in untimed_chunks(workload.w4_dict_attributes(sizes['dicts']), W1_ROWS_BATCH, Timer()):
            rows = [_node_row(NODE_TYPES['dict'], values, user_id) for values in chunk]
            storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)
        for part in workload.w5_graph(sizes['workflows']):
            rows = [_node_row(NODE_TYPES[kind], attributes, user_id, label) for kind, attributes, label in part.nodes]
            ids = insert_nodes(rows)
            links = [
                {'input_id': ids[source], 'output_id': ids[target], 'label': label, 'type': link_type}
                for source, target, link_type, label in part.links
            ]
            storage.bulk_insert(EntityTypes.LINK, links)
            members = [ids[index] for index, (kind, _, _) in enumerate(part.nodes) if kind == 'workflow']
            storage.bulk_insert(EntityTypes.GROUP_NODE, [{'dbgroup_id': group.pk, 'dbnode_id': pk} for pk in members])
        for folders in workload.w5_folder_nodes(sizes['folders']):
            rows = []
            for files in folders:
                keys = [repository.put_object_from_filelike(io.BytesIO(content)) for _, content in files]
                metadata = workload.repository_metadata(list(zip([path for path, _ in files], keys, strict=True)))
                label = workload.W7_DELETE_LABEL if label_deleted and workload.w7_deleted(folder) else ''
                rows.append({**_node_row(NODE_TYPES['folder'], {}, user_id, label), 'repository_metadata': metadata})
                folder += 1
            storage.bulk_insert(EntityTypes.NODE, rows, allow_defaults=True)


def run_w5(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Write an archive of the whole profile: ``aiida.tools.archive.create_archive(None, ...)``, its defaults."""
    from aiida.tools.archive import create_archive  # noqa: PLC0415

    path = workload.archive_path(args.archive_dir, SYSTEM, args.backend, args.scale)
    before = workload.rss_now_mb()
    timer = Timer()
    with timer:
        create_archive(None, filename=path, overwrite=True)
    return workload.w5_result(SYSTEM, args, timer.seconds, path, rss_before_mb=before)


def run_w6(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import W5's archive (aiida-core's own, or provstore's) into this fresh profile:
    ``aiida.tools.archive.import_archive``, its defaults."""
    from aiida.manage import get_manager  # noqa: PLC0415
    from aiida.orm import Node, QueryBuilder  # noqa: PLC0415
    from aiida.tools.archive import import_archive  # noqa: PLC0415
    from sqlalchemy import text  # noqa: PLC0415

    system = 'provstore' if variant == 'import_provstore_archive' else SYSTEM
    path = workload.archive_path(args.archive_dir, system, args.backend, args.scale)
    if not os.path.exists(path):
        if variant == 'import_provstore_archive':
            return result(SYSTEM, args, 'W6', variant, 0.0, unavailable=f'no archive of provstore at {path}')
        raise SystemExit(f'W6 imports the archive W5 writes, and there is none at {path}: run --steps W5,W6')
    before = workload.rss_now_mb()
    timer = Timer()
    with timer:
        import_archive(path)
    storage = get_manager().get_profile_storage()
    nodes = QueryBuilder().append(Node).count()
    links = int(storage.get_session().execute(text('SELECT count(*) FROM db_dblink')).scalar_one())
    objects = sum(1 for _ in storage.get_repository().list_objects())
    return workload.w6_result(
        SYSTEM, args, variant, timer.seconds, path, nodes=nodes, links=links, objects=objects, rss_before_mb=before
    )


# -- W7: maintenance, storage info and integrity -----------------------------------------------------------------------


def populate_w7(variant: str, args: argparse.Namespace) -> None:
    """Fill W7's profile (not timed): W5's content with its files left loose (no maintenance), then delete the
    FolderData nodes labelled for deletion (``aiida.tools.delete_nodes``), leaving their files unreferenced."""
    from aiida.manage import get_manager  # noqa: PLC0415
    from aiida.orm import FolderData, QueryBuilder  # noqa: PLC0415
    from aiida.tools import delete_nodes  # noqa: PLC0415

    storage = get_manager().get_profile_storage()
    fill_whole_profile(storage, args, label_deleted=True)
    query = QueryBuilder().append(FolderData, filters={'label': workload.W7_DELETE_LABEL}, project='id')
    deleted, _ = delete_nodes(query.all(flat=True), dry_run=False)
    _analyze(storage)
    state = _object_state(storage)
    print(f'# W7 populated on {args.backend}: {len(deleted)} nodes deleted, objects {state}', file=sys.stderr)


W7_APIS = {
    'maintain_full': 'storage.maintain(full=True)',
    'maintain_live': 'storage.maintain(full=False)',
    'info': 'storage.get_info(detailed=False)',
    'info_detailed': 'storage.get_info(detailed=True)',
}
"""What each W7 variant calls: what ``verdi storage maintain [--full]`` and ``verdi storage info [--detailed]`` call,
with their defaults."""

NO_INTEGRITY = (
    'aiida-core 2.9.4 has no integrity check of a profile (`verdi storage integrity` is a command group without '
    'commands)'
)


def run_w7(variant: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run one W7 variant on the loaded profile: ``storage.maintain`` (full or live) or ``storage.get_info`` (plain
    or detailed); the integrity variants are reported as unavailable."""
    from aiida.manage import get_manager  # noqa: PLC0415
    from aiida.orm import Node, QueryBuilder  # noqa: PLC0415

    if variant == 'populate':
        populate_w7(variant, args)
        return None
    if variant in ('integrity', 'integrity_no_hash'):
        return workload.w7_result(SYSTEM, args, variant, 0.0, unavailable=NO_INTEGRITY)
    storage = get_manager().get_profile_storage()  # opened before timing
    before = _object_state(storage)
    figures: dict[str, Any] = {}
    timer = Timer()
    if variant in ('maintain_full', 'maintain_live'):
        with timer:
            storage.maintain(full=variant == 'maintain_full')
    elif variant in ('info', 'info_detailed'):
        with timer:
            info = storage.get_info(detailed=variant == 'info_detailed')
        figures['info_keys'] = sorted(info)
    else:
        raise SystemExit(f'W7 has no variant {variant!r} on the reference')
    figures.update(nodes=QueryBuilder().append(Node).count(), before=before, after=_object_state(storage))
    return workload.w7_result(SYSTEM, args, variant, timer.seconds, api=W7_APIS[variant], **figures)


def _object_state(storage: Any) -> dict[str, int]:
    """Return the objects of ``storage``'s repository: distinct keys, loose files and packed objects (not timed)."""
    repository = storage.get_repository()
    counts = repository.get_info()['Objects']
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
    """Run one variant in the aiida profile ``args.profile`` (of ``$AIIDA_PATH``) and print its JSON line (if any)."""
    from aiida import load_profile  # noqa: PLC0415

    load_profile(args.profile)
    record = RUNNERS[args.steps](args.worker, args)
    if record is not None:
        emit(record)


# -- the driver: profiles --------------------------------------------------------------------------------------------


class Profiles:
    """Throw-away aiida profiles in a temporary ``$AIIDA_PATH``; databases dropped and files removed afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.folder = tempfile.mkdtemp(prefix='aiida-bench-')
        self.tag = uuid.uuid4().hex[:8]
        self.databases: dict[str, str] = {}
        # NOTE: aiida-core reads $AIIDA_PATH when it is imported: set it before the first import.
        os.environ['AIIDA_PATH'] = self.folder

    def make(self, key: str) -> dict[str, str]:
        """Create the profile ``key`` (and its database) and return the environment that selects it."""
        from aiida.manage.configuration import create_profile, get_config  # noqa: PLC0415

        name = key.replace('-', '_')
        if self.backend == 'psql_dos':
            database = f'aiida_bench_{self.tag}_{name}'
            _admin(f'CREATE DATABASE {database}')
            self.databases[key] = database
            storage_config: dict[str, Any] = {
                'database_engine': 'postgresql_psycopg',
                'database_hostname': POSTGRES['host'],
                'database_port': POSTGRES['port'],
                'database_username': POSTGRES['user'],
                'database_password': '',
                'database_name': database,
                'repository_uri': Path(self.folder, f'{name}-repository').as_uri(),
            }
            storage_backend = 'core.psql_dos'
        else:
            storage_config = {'filepath': str(Path(self.folder, f'{name}-storage'))}
            storage_backend = 'core.sqlite_dos'
        create_profile(
            get_config(create=True),
            name=key,
            email='bench@example.com',
            storage_backend=storage_backend,
            storage_config=storage_config,
        )
        _let_go(key)
        return {'AIIDA_PATH': self.folder}

    def drop(self, key: str) -> None:
        """Drop the profile's database (psql_dos); its files go with the temporary folder."""
        database = self.databases.pop(key, None)
        if database is not None:
            _admin(f'DROP DATABASE IF EXISTS {database} WITH (FORCE)')

    def close(self) -> None:
        """Drop what is left and remove the temporary folder."""
        for key in list(self.databases):
            self.drop(key)
        shutil.rmtree(self.folder, ignore_errors=True)


def _let_go(key: str) -> None:
    """Make this driver process stop using the profile ``key``, which it has just made.

    ``create_profile`` loads the profile to make its default user, which records this process as one using it
    (``<pid>.pid`` in aiida-core's access folder, kept while the process lives); aiida-core's full maintenance then
    refuses the profile. A ``verdi profile setup`` would have ended by now, and its record would be stale: the profile
    is unloaded and the record removed.
    """
    from aiida.manage import get_manager  # noqa: PLC0415
    from aiida.manage.configuration.settings import AiiDAConfigPathResolver  # noqa: PLC0415

    get_manager().unload_profile()
    (AiiDAConfigPathResolver().access_control_dir / key / f'{os.getpid()}.pid').unlink(missing_ok=True)


def _admin(statement: str) -> None:
    """Run ``statement`` on the server's maintenance database, outside a transaction."""
    import psycopg  # noqa: PLC0415 - aiida-core's interpreter has it

    with psycopg.connect(dbname='postgres', autocommit=True, **POSTGRES) as connection:  # type: ignore[arg-type]
        connection.execute(statement)


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
