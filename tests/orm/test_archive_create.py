"""``create_archive`` writes ``.aiida`` files with the ``sqlite_zip`` format, on ``sqlite_dos`` and ``psql_dos``.

Each archive is opened in place with the read-only ``sqlite_zip`` backend and compared with its source, row by row
and file by file.
"""

from __future__ import annotations

import gc
import json
import random
import sqlite3
import sys
import threading
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from provstore.archive import create as create_module
from provstore.archive.create import ArchiveSummary, create_archive
from provstore.exceptions import ArchiveExportError
from provstore.orm import (
    CalcJobNode,
    Comment,
    Int,
    LinkType,
    Node,
    NotExistentError,
    WorkChainNode,
    get_nodes_export,
    store_nodes,
)
from provstore.storage import EntityStorage, EntityType, Row
from provstore.testing.archive_graph import Graph
from provstore_sqlite_zip.cache import check_database
from provstore_sqlite_zip.format import SqliteZipFormat

ARCHIVED = (
    EntityType.USER,
    EntityType.COMPUTER,
    EntityType.AUTHINFO,
    EntityType.NODE,
    EntityType.GROUP,
    EntityType.GROUP_NODE,
    EntityType.LINK,
    EntityType.COMMENT,
    EntityType.LOG,
)


def rows_of(storage: EntityStorage, entity: EntityType) -> list[Row]:
    """Return every row of ``entity`` by ascending id."""
    return list(storage.iter_rows(entity))


def assert_archive_holds(
    archive: Path, source: EntityStorage, node_ids: set[int] | None, authinfos: bool = False
) -> None:
    """Assert the archive's rows are the source's (the selected nodes and what refers to them: the groups, users and
    computers as archived) and its files too; auth infos only with ``authinfos``."""
    check_database(archive, extracted_database(archive))
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        groups = {row['id'] for row in rows_of(opened, EntityType.GROUP)}
        for entity in ARCHIVED:
            expected = rows_of(source, entity)
            if entity is EntityType.AUTHINFO and not authinfos:
                expected = []
            elif node_ids is not None:
                archived = rows_of(opened, entity)
                expected = [row for row in expected if selected(entity, row, node_ids, groups, archived)]
            assert rows_of(opened, entity) == expected, entity
        keys = {key for row in rows_of(opened, EntityType.NODE) for key in file_keys(row['repository_metadata'])}
        repository, archived = source.get_repository(), opened.get_repository()
        for key in keys:
            assert archived.get_object_content(key) == repository.get_object_content(key)
        assert set(archived.list_objects()) == keys
    finally:
        opened.close()


def selected(entity: EntityType, row: Row, node_ids: set[int], groups: set[int], archived: list[Row]) -> bool:
    """Whether a source row belongs in the archive of ``node_ids`` (users, computers, groups: as archived)."""
    if entity is EntityType.NODE:
        return bool(row['id'] in node_ids)
    if entity is EntityType.LINK:
        return row['input_id'] in node_ids and row['output_id'] in node_ids
    if entity is EntityType.GROUP_NODE:
        return row['dbnode_id'] in node_ids and row['dbgroup_id'] in groups
    if entity in (EntityType.COMMENT, EntityType.LOG):
        return bool(row['dbnode_id'] in node_ids)
    return row['id'] in {other['id'] for other in archived}


def file_keys(tree: dict[str, object]) -> set[str]:
    """Return the keys of every file in a ``repository_metadata`` tree."""
    keys: set[str] = set()
    for child in (tree.get('o') or {}).values():  # type: ignore[attr-defined]
        keys.update({child['k']} if 'k' in child else file_keys(child))
    return keys


def extracted_database(archive: Path) -> Path:
    """Extract the archive's ``db.sqlite3`` beside it and return its path."""
    target = archive.with_suffix('.check.sqlite3')
    with zipfile.ZipFile(archive) as handle:
        target.write_bytes(handle.read('db.sqlite3'))
    return target


def test_whole_profile_round_trip(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An archive of the whole profile holds every row (auth infos aside) and every file of the source."""
    archive = tmp_path / 'all.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat)
    assert list(tmp_path.iterdir()) == [archive]  # NOTE: the scratch files (rows, file keys) are gone
    assert_archive_holds(archive, storage, None)
    assert summary.counts['node'] == storage.count_rows(EntityType.NODE) == 5
    assert (summary.counts['user'], summary.counts['computer'], summary.counts['authinfo']) == (2, 2, 0)
    assert summary.counts['comment'] == 2
    assert summary.object_count == 3
    assert summary.object_bytes == len(b'input file') + len(b'result file' * 1000) + len(b'not reached')


def test_metadata_and_member_order(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """metadata.json (aiida-core's keys, main_0001, the entity counts) and db.sqlite3 come first, then repo/
    (aiida-core's importer looks for db.sqlite3 among the first four members only)."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat, compression=9)
    with zipfile.ZipFile(archive) as handle:
        infos = handle.infolist()
        names = handle.namelist()
        metadata = json.loads(handle.read('metadata.json'))
    assert names[:2] == ['metadata.json', 'db.sqlite3']
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
    assert all(name.startswith('repo/') for name in names[2:])
    assert metadata['export_version'] == 'main_0001'
    assert metadata['key_format'] == 'sha256'
    assert metadata['compression'] == 9
    assert {'aiida_version', 'ctime'} <= set(metadata)
    assert metadata['creation_parameters']['entity_counts']['node'] == 5
    assert SqliteZipFormat.read_version(archive) == 'main_0001'


def test_start_set_holds_the_export_closure(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An archive of one node holds exactly its export closure, with its users, computers, comments and logs, and no
    group (as aiida-core: groups come only as a start set)."""
    archive = tmp_path / 'part.aiida'
    closure = get_nodes_export([graph.result.pk], storage)
    assert closure == {graph.data.pk, graph.calculation.pk, graph.result.pk, graph.workflow.pk}
    summary = create_archive(storage, archive, SqliteZipFormat, node_ids=[graph.result.pk], compression=0)
    assert_archive_holds(archive, storage, closure)
    with zipfile.ZipFile(archive) as handle:
        assert {info.compress_type for info in handle.infolist()} == {zipfile.ZIP_STORED}
    assert summary.counts == {
        'user': 1,
        'computer': 1,
        'authinfo': 0,
        'node': len(closure),
        'group': 0,
        'group_node': 0,
        'link': storage.count_rows(EntityType.LINK),
        'comment': 1,
        'log': 1,
    }
    parameters = SqliteZipFormat.read_metadata(archive).details['creation_parameters']
    assert parameters['entities_starting_set'] == {'node': [graph.result.uuid]}
    assert parameters['graph_traversal_rules']['create_backward'] is True
    assert len(parameters['graph_traversal_rules']) == 12


def archived_ids(archive: Path) -> dict[str, set[int]]:
    """Return the ids of the archive's rows, by entity kind."""
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        return {entity.value: {row['id'] for row in rows_of(opened, entity)} for entity in ARCHIVED}
    finally:
        opened.close()


def test_group_start_set(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """A group brings all its nodes as start nodes (so their closure), its memberships, and no other group."""
    archive = tmp_path / 'group.aiida'
    create_archive(storage, archive, SqliteZipFormat, group_ids=[graph.results.pk])
    expected = {graph.data.pk, graph.result.pk, graph.calculation.pk, graph.workflow.pk}
    assert_archive_holds(archive, storage, expected)
    ids = archived_ids(archive)
    assert ids['node'] == expected
    assert ids['group'] == {graph.results.pk}
    assert len(ids['group_node']) == 2
    parameters = SqliteZipFormat.read_metadata(archive).details['creation_parameters']
    assert parameters['entities_starting_set'] == {'group': [graph.results.uuid]}


def test_computer_and_user_start_sets_bring_themselves(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """A computer or a user alone is archived with no node (as aiida-core); with auth infos, the computer's auth
    infos come with their users."""
    archive = tmp_path / 'computer.aiida'
    create_archive(storage, archive, SqliteZipFormat, computer_ids=[graph.cluster.pk])
    ids = archived_ids(archive)
    assert ids['computer'] == {graph.cluster.pk}
    assert not ids['node'] and not ids['user'] and not ids['authinfo'] and not ids['group']
    with_auth = tmp_path / 'computer-auth.aiida'
    create_archive(storage, with_auth, SqliteZipFormat, computer_ids=[graph.cluster.pk], include_authinfos=True)
    ids = archived_ids(with_auth)
    assert ids['user'] == {graph.admin.pk}
    assert len(ids['authinfo']) == 1
    user_only = tmp_path / 'user.aiida'
    create_archive(storage, user_only, SqliteZipFormat, user_ids=[graph.admin.pk])
    ids = archived_ids(user_only)
    assert ids['user'] == {graph.admin.pk}
    assert not ids['node'] and not ids['computer']
    parameters = SqliteZipFormat.read_metadata(user_only).details['creation_parameters']
    assert parameters['entities_starting_set'] == {'user': ['admin@example.org']}


def test_comment_authors_come_along(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """The author of a comment on an archived node is archived, unless comments are left out."""
    archive = tmp_path / 'unrelated.aiida'
    create_archive(storage, archive, SqliteZipFormat, node_ids=[graph.unrelated.pk])
    assert graph.admin.pk in archived_ids(archive)['user']
    bare = tmp_path / 'bare.aiida'
    create_archive(storage, bare, SqliteZipFormat, node_ids=[graph.unrelated.pk], include_comments=False)
    assert graph.admin.pk not in archived_ids(bare)['user']


@pytest.mark.parametrize('authinfos', [False, True])
def test_whole_profile_authinfos(storage: EntityStorage, graph: Graph, tmp_path: Path, authinfos: bool) -> None:
    """Auth infos are archived only when asked, as the source holds them."""
    archive = tmp_path / 'all.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat, include_authinfos=authinfos)
    assert summary.counts['authinfo'] == (1 if authinfos else 0)
    assert_archive_holds(archive, storage, None, authinfos=authinfos)
    parameters = SqliteZipFormat.read_metadata(archive).details['creation_parameters']
    assert parameters['include_authinfos'] is authinfos
    assert parameters['entities_starting_set'] is None


def test_start_set_ids_checked(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """Ids of a start set that are not stored are refused, named, before anything is written."""
    for kind, arguments in (
        ('group', {'group_ids': [graph.results.pk, 999]}),
        ('computer', {'computer_ids': [999, 998]}),
        ('user', {'user_ids': [999]}),
    ):
        with pytest.raises(NotExistentError, match=f'^No {kind} with pk (998, )?999$'):
            create_archive(storage, tmp_path / 'x.aiida', SqliteZipFormat, **arguments)  # type: ignore[arg-type]
    with pytest.raises(NotExistentError, match='No node with pk 999'):
        create_archive(storage, tmp_path / 'x.aiida', SqliteZipFormat, node_ids=[999])
    assert list(tmp_path.iterdir()) == []


@dataclass
class RuleGraph:
    """``outer`` calls ``workflow``, which takes ``data``, calls ``calculation`` (``data`` in, ``result`` out) and
    returns ``result``; ``other_calculation`` also takes ``data`` and creates ``other_result``."""

    nodes: dict[str, Node]

    def pks(self, *names: str) -> set[int]:
        return {self.nodes[name].pk for name in names}  # type: ignore[misc]


@pytest.fixture
def rule_graph(storage: EntityStorage) -> RuleGraph:
    """Store the graph of :class:`RuleGraph`, every process sealed."""
    data, result, other_result = Int(1, storage=storage), Int(2, storage=storage), Int(3, storage=storage)
    outer, workflow = WorkChainNode(storage=storage), WorkChainNode(storage=storage)
    calculation, other_calculation = CalcJobNode(storage=storage), CalcJobNode(storage=storage)
    workflow.base.links.add_incoming(outer, LinkType.CALL_WORK, 'inner')
    workflow.base.links.add_incoming(data, LinkType.INPUT_WORK, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'step')
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'y')
    other_calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    other_result.base.links.add_incoming(other_calculation, LinkType.CREATE, 'y')
    store_nodes([data, outer, workflow, calculation, result, other_calculation, other_result], storage)
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'y')
    for process in (outer, workflow, calculation, other_calculation):
        assert hasattr(process, 'seal')
        process.seal()
    nodes: dict[str, Node] = {
        'data': data,
        'outer': outer,
        'workflow': workflow,
        'calculation': calculation,
        'result': result,
        'other_calculation': other_calculation,
        'other_result': other_result,
    }
    return RuleGraph(nodes)


WORKFLOW_CLOSURE = ('data', 'outer', 'workflow', 'calculation', 'result')

RULE_CASES = [
    ('data', {}, ('data',)),
    ('data', {'input_calc_forward': True}, (*WORKFLOW_CLOSURE, 'other_calculation', 'other_result')),
    ('data', {'input_work_forward': True}, WORKFLOW_CLOSURE),
    ('result', {}, WORKFLOW_CLOSURE),
    ('result', {'create_backward': False}, ('result',)),
    ('result', {'create_backward': False, 'return_backward': True}, WORKFLOW_CLOSURE),
    ('calculation', {}, WORKFLOW_CLOSURE),
    ('calculation', {'call_calc_backward': False}, ('calculation', 'data', 'result')),
    ('workflow', {'call_work_backward': False}, ('workflow', 'data', 'calculation', 'result')),
]


@pytest.mark.parametrize(
    'case', RULE_CASES, ids=[f'{start}-{"-".join(rules) or "defaults"}' for start, rules, _ in RULE_CASES]
)
def test_rule_toggles_change_the_nodes(
    storage: EntityStorage, rule_graph: RuleGraph, tmp_path: Path, case: tuple[str, dict[str, bool], tuple[str, ...]]
) -> None:
    """Each toggleable export rule, switched from its default, changes the archived nodes exactly as it says."""
    start, rules, expected = case
    archive = tmp_path / 'rules.aiida'
    create_archive(storage, archive, SqliteZipFormat, node_ids=rule_graph.pks(start), compression=0, **rules)
    assert archived_ids(archive)['node'] == rule_graph.pks(*expected)
    applied = SqliteZipFormat.read_metadata(archive).details['creation_parameters']['graph_traversal_rules']
    assert {name: value for name, value in applied.items() if name in rules} == rules


@pytest.mark.parametrize(
    ('rules', 'message'),
    [
        ({'input_calc_backward': False}, "export rule 'input_calc_backward' is fixed to True"),
        ({'create_forward': False}, "export rule 'create_forward' is fixed to True"),
        ({'sideways_forward': True}, "unknown export rule 'sideways_forward'"),
    ],
)
def test_fixed_and_unknown_rules_refused(
    storage: EntityStorage, tmp_path: Path, rules: dict[str, bool], message: str
) -> None:
    """A rule aiida-core keeps fixed, or an unknown one, is refused before anything is read or written."""
    with pytest.raises(ValueError, match=message):
        create_archive(storage, tmp_path / 'x.aiida', SqliteZipFormat, **rules)
    assert list(tmp_path.iterdir()) == []


def test_comments_and_logs_left_out(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """Without comments and logs, the archive has none, and everything else."""
    archive = tmp_path / 'bare.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat, include_comments=False, include_logs=False)
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        assert opened.count_rows(EntityType.COMMENT) == opened.count_rows(EntityType.LOG) == 0
        assert opened.count_rows(EntityType.NODE) == summary.counts['node'] == 5
    finally:
        opened.close()


def test_dry_run_writes_nothing(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """A dry run returns the counts and bytes of a real run and leaves the folder empty."""
    folder = tmp_path / 'out'
    folder.mkdir()
    dry = create_archive(storage, folder / 'dry.aiida', SqliteZipFormat, dry_run=True)
    assert list(folder.iterdir()) == []
    real = create_archive(storage, folder / 'real.aiida', SqliteZipFormat)
    assert dry.dry_run
    assert (dry.counts, dry.object_count, dry.object_bytes) == (real.counts, real.object_count, real.object_bytes)
    with zipfile.ZipFile(folder / 'real.aiida') as handle:
        objects = [info for info in handle.infolist() if info.filename.startswith('repo/')]
    assert dry.object_count == len(objects)
    assert dry.object_bytes == sum(info.file_size for info in objects)


@pytest.mark.parametrize(('stage', 'at'), [('objects', 2), ('node', 5)])
def test_interrupted_create_leaves_nothing(
    storage: EntityStorage, graph: Graph, tmp_path: Path, stage: str, at: int
) -> None:
    """An exception from the progress callback (among the objects, or the rows) leaves no file under the final name
    and no temporary file beside it; an existing file replaced with ``force`` is kept whole."""
    folder = tmp_path / 'out'
    folder.mkdir()
    (folder / 'kept.aiida').write_bytes(b'old archive')

    def interrupt(reached: str, done: int, total: int) -> None:
        if reached == stage and done == at:
            # NOTE: the temporary files, the table of file keys among them, exist at this point
            assert [path for path in folder.iterdir() if path.name.endswith('.keys.sqlite3')]
            raise KeyboardInterrupt

    for name in ('cut.aiida', 'kept.aiida'):
        with pytest.raises(KeyboardInterrupt):
            create_archive(storage, folder / name, SqliteZipFormat, progress=interrupt, force=True)
    assert sorted(path.name for path in folder.iterdir()) == ['kept.aiida']
    assert (folder / 'kept.aiida').read_bytes() == b'old archive'


def test_archive_is_one_snapshot_while_others_write(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """Rows another thread stores while the archive is written are not in it (neither a node whose file would be
    missing, nor a comment): the archive is the profile as it was when the reading began."""
    before = {row['id'] for row in rows_of(storage, EntityType.NODE)}
    comments = storage.count_rows(EntityType.COMMENT)
    errors: list[BaseException] = []
    written: list[int] = []

    def store_meanwhile() -> None:
        try:
            late = Int(7, storage=storage)
            late.base.repository.put_object_from_bytes(b'written meanwhile', 'late.txt')
            late.store()
            Comment(graph.data, 'late comment').store()
            written.append(late.pk)  # type: ignore[arg-type]
        except BaseException as exc:  # NOTE: handed over to the test's thread
            errors.append(exc)

    def write_meanwhile(stage: str, done: int, total: int) -> None:
        if stage == 'user' and not written and not errors:
            thread = threading.Thread(target=store_meanwhile)
            thread.start()
            thread.join()

    archive = tmp_path / 'all.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat, progress=write_meanwhile)
    assert not errors, errors
    assert written and storage.count_rows(EntityType.NODE) == len(before) + 1
    ids = archived_ids(archive)
    assert ids['node'] == before
    assert len(ids['comment']) == summary.counts['comment'] == comments


@pytest.mark.parametrize('batch', [1, 2])
def test_keys_streamed_in_batches(
    storage: EntityStorage, graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """File keys read back from the scratch table a few at a time are each archived once (a key two nodes share
    too), and the dry run measures the same objects."""
    monkeypatch.setattr(create_module, 'KEY_BATCH_SIZE', batch)
    seen: list[tuple[int, int]] = []
    archive = tmp_path / 'all.aiida'
    dry = create_archive(storage, archive, SqliteZipFormat, dry_run=True)
    summary = create_archive(
        storage,
        archive,
        SqliteZipFormat,
        progress=lambda stage, done, total: seen.append((done, total)) if stage == 'objects' else None,
    )
    assert summary.object_count == dry.object_count == 3
    assert summary.object_bytes == dry.object_bytes
    assert seen[-3:] == [(1, 3), (2, 3), (3, 3)]
    assert_archive_holds(archive, storage, None)


def store_nodes_with_a_file(storage: EntityStorage, count: int) -> list[Int]:
    """Store ``count`` nodes, each with a file of its own (``f.txt``); return them."""
    nodes = []
    for index in range(count):
        node = Int(index, storage=storage)
        node.base.repository.put_object_from_bytes(f'file {index}'.encode(), 'f.txt')
        nodes.append(node)
    store_nodes(nodes, storage)
    return nodes


@pytest.mark.slow
def test_dry_run_memory_does_not_grow_with_objects(
    storage: EntityStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run of a whole profile holds no list of its file keys: what stays allocated (after collecting garbage)
    while the objects are measured is far below what 4000 keys take, and the same from the first batch to the last.
    """
    store_nodes_with_a_file(storage, 4000)
    monkeypatch.setattr(create_module, 'KEY_BATCH_SIZE', 500)
    create_archive(storage, tmp_path / 'warm.aiida', SqliteZipFormat, dry_run=True)  # NOTE: caches filled first
    held: list[int] = []

    def measure(stage: str, done: int, total: int) -> None:
        if stage == 'objects' and done:
            gc.collect()
            held.append(tracemalloc.get_traced_memory()[0] - baseline)

    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        summary = create_archive(storage, tmp_path / 'dry.aiida', SqliteZipFormat, dry_run=True, progress=measure)
    finally:
        tracemalloc.stop()
    keys = 4000 * sys.getsizeof('0' * 64)
    assert summary.object_count == 4000
    assert len(held) == 8
    assert max(held) < keys / 3, held
    assert max(held) - min(held) < keys / 20, held


def test_archive_of_an_archive_read_in_place(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An archive opened in place (read-only) is itself archived whole, its dry run measuring the zip's objects."""
    first, second = tmp_path / 'first.aiida', tmp_path / 'second.aiida'
    made = create_archive(storage, first, SqliteZipFormat, include_authinfos=True)
    opened = SqliteZipFormat.open(first)
    try:
        assert isinstance(opened, EntityStorage)
        dry = create_archive(opened, second, SqliteZipFormat, include_authinfos=True, dry_run=True)
        again = create_archive(opened, second, SqliteZipFormat, include_authinfos=True)
    finally:
        opened.close()
    assert dry.counts == again.counts == made.counts
    assert dry.object_bytes == again.object_bytes == made.object_bytes
    assert_archive_holds(second, storage, None, authinfos=True)


def test_existing_file_refused_unless_forced(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An existing file is kept as it is, unless ``force`` replaces it with a complete archive."""
    archive = tmp_path / 'there.aiida'
    archive.write_bytes(b'precious')
    with pytest.raises(ArchiveExportError, match='the file exists'):
        create_archive(storage, archive, SqliteZipFormat)
    assert archive.read_bytes() == b'precious'
    summary: ArchiveSummary = create_archive(storage, archive, SqliteZipFormat, force=True)
    assert SqliteZipFormat.read_metadata(archive).details['creation_parameters']['entity_counts'] == summary.counts


def test_unsealed_process_refused(storage: EntityStorage, tmp_path: Path) -> None:
    """A selected process node that is not sealed refuses the archive, naming its pk; nothing is written."""
    data = Int(1, storage=storage)
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([data, calculation], storage)
    with pytest.raises(ArchiveExportError, match=rf'1 process node\(s\) are not sealed .*: pk {calculation.pk}$'):
        create_archive(storage, tmp_path / 'refused.aiida', SqliteZipFormat, node_ids=[calculation.pk])
    assert list(tmp_path.iterdir()) == []


def test_unsealed_process_refused_in_whole_profile(storage: EntityStorage, tmp_path: Path) -> None:
    """An archive of the whole profile is refused for its unsealed process nodes too (found while their rows are
    written, once): the error names them and no file, final or temporary, is left."""
    data = Int(1, storage=storage)
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([data, calculation], storage)
    with pytest.raises(ArchiveExportError, match=rf'1 process node\(s\) are not sealed .*: pk {calculation.pk}$'):
        create_archive(storage, tmp_path / 'refused.aiida', SqliteZipFormat)
    assert list(tmp_path.iterdir()) == []


def test_compression_level_checked(storage: EntityStorage, tmp_path: Path) -> None:
    """A compression level outside 0-9 is refused before anything is read or written."""
    with pytest.raises(ValueError, match='compression must be an integer from 0 to 9, got 10'):
        create_archive(storage, tmp_path / 'x.aiida', SqliteZipFormat, compression=10)
    assert list(tmp_path.iterdir()) == []


def test_incompressible_objects_stored(storage: EntityStorage, tmp_path: Path) -> None:
    """At levels 1-9 an object that does not deflate (random bytes) is stored, a compressible one deflated; both
    read back byte for byte, and aiida-core's ``compression`` key still gives the level asked for."""
    noise = random.Random(7).randbytes(200_000)
    text = b'energy 1.0 eV\n' * 20_000
    node = Int(1, storage=storage)
    node.base.repository.put_object_from_bytes(noise, 'noise.bin')
    node.base.repository.put_object_from_bytes(text, 'out.txt')
    node.store()
    archive = tmp_path / 'mixed.aiida'
    create_archive(storage, archive, SqliteZipFormat, compression=6)
    with zipfile.ZipFile(archive) as handle:
        kinds = {info.filename: info.compress_type for info in handle.infolist()}
        contents = {name: handle.read(name) for name in kinds if name.startswith('repo/')}
        metadata = json.loads(handle.read('metadata.json'))
    by_content = {content: kinds[name] for name, content in contents.items()}
    assert by_content == {noise: zipfile.ZIP_STORED, text: zipfile.ZIP_DEFLATED}
    assert kinds['db.sqlite3'] == kinds['metadata.json'] == zipfile.ZIP_DEFLATED
    assert metadata['compression'] == 6


AIIDA_CORE_ARCHIVE = (
    Path(__file__).resolve().parents[1]
    / 'fixtures'
    / 'aiida-core-static'
    / 'export__migrate__export_main_0001_simple.aiida'
)
"""A main_0001 archive written by aiida-core."""


def database_columns(archive: Path) -> dict[str, set[str]]:
    """Return the columns of every table of the archive's database."""
    database = extracted_database(archive)
    connection = sqlite3.connect(database)
    try:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')} for table in tables}
    finally:
        connection.close()


def test_database_has_aiida_cores_tables(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """The archive's database has exactly the tables of aiida-core's main_0001 archives, each with its columns."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    ours, theirs = database_columns(archive), database_columns(AIIDA_CORE_ARCHIVE)
    assert set(ours) == set(theirs)
    for table, columns in theirs.items():
        assert ours[table] == columns, table


def test_object_missing_from_the_repository_refuses_the_archive(storage: EntityStorage, tmp_path: Path) -> None:
    """A node whose file is gone from the repository: the thread that copies objects meets it while rows are still
    written, and its error (naming the key) ends the archive; no file, final or temporary, is left."""
    nodes = store_nodes_with_a_file(storage, 30)
    key = nodes[7].base.repository.get_object('f.txt').key
    assert key is not None
    storage.get_repository().delete_objects([key])
    with pytest.raises(FileNotFoundError, match=key):
        create_archive(storage, tmp_path / 'broken.aiida', SqliteZipFormat)
    assert list(tmp_path.iterdir()) == []
