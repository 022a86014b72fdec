"""``import_archive`` brings archives into ``sqlite_dos`` and ``psql_dos`` profiles: aiida-core's own archives and
provstore's, whole, atomically, and only once.

Every import is compared with the archive opened in place, by identity (UUIDs, emails) and file contents.
"""

from __future__ import annotations

import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_archives import AIIDA_CORE_STATIC, READABLE_ARCHIVES
from orm_helpers import counts, object_count
from postgres_test_server import drop_database, new_database_name

from provstore.archive.create import create_archive
from provstore.archive.imports import ImportSummary, import_archive
from provstore.exceptions import ArchiveError
from provstore.orm import Comment, Group, Int, QueryBuilder
from provstore.storage import EntityStorage, EntityType
from provstore.testing import new_profile, opened_storage
from provstore.testing.archive_graph import Graph, assert_holds, snapshot, snapshot_in_place
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend
from provstore_sqlite_zip.format import SqliteZipFormat


@pytest.fixture
def target(storage: EntityStorage, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[EntityStorage]:
    """A second, empty storage of the same backend as ``storage`` (not the loaded profile)."""
    if isinstance(storage, PsqlDosStorageBackend):
        database = new_database_name()
        options: dict[str, Any] = {**request.getfixturevalue('postgres_server'), 'database_name': database}
        profile = new_profile(PsqlDosStorageBackend, tmp_path / 'target', name='target', **options)
        try:
            with opened_storage(PsqlDosStorageBackend, profile, initialise=True) as opened:
                assert isinstance(opened, EntityStorage)
                yield opened
        finally:
            drop_database(database)
    else:
        profile = new_profile(SqliteDosStorageBackend, tmp_path / 'target', name='target')
        with opened_storage(SqliteDosStorageBackend, profile, initialise=True) as opened:
            assert isinstance(opened, EntityStorage)
            yield opened


def in_place(archive: Path) -> dict[str, Any]:
    """The snapshot of an archive opened in place."""
    return snapshot_in_place(SqliteZipFormat, archive)


def imported(storage: EntityStorage, archive: Path, **options: Any) -> ImportSummary:
    return import_archive(storage, archive, SqliteZipFormat, **options)


# -- aiida-core's archives ------------------------------------------------------------------------------------------


@pytest.mark.parametrize('name', READABLE_ARCHIVES)
def test_aiida_core_archives_import_whole(storage: EntityStorage, name: str) -> None:
    """Every node, link, group and membership, computer, user, comment, log, attribute, extra and file arrives."""
    archive = AIIDA_CORE_STATIC / name
    expected = in_place(archive)
    summary = imported(storage, archive)
    assert_holds(expected, snapshot(storage))
    assert summary.added['node'] == len(expected['node'])
    assert summary.added['link'] == len(expected['link'])
    assert summary.added['comment'] == len(expected['comment'])
    assert summary.object_count == object_count(storage)


def test_empty_legacy_archive_is_refused(storage: EntityStorage) -> None:
    """aiida-core's 'empty' archive (a gzipped tar of one stray file) is refused, saying why; nothing is written."""
    before = counts(storage)
    with pytest.raises(
        ArchiveError, match=r'export__migrate__empty.aiida: not a zip file, so not a sqlite_zip archive'
    ):
        imported(storage, AIIDA_CORE_STATIC / 'export__migrate__empty.aiida')
    assert counts(storage) == before


# -- provstore's archives -------------------------------------------------------------------------------------------


def test_round_trip_and_reimport(storage: EntityStorage, graph: Graph, target: EntityStorage, tmp_path: Path) -> None:
    """export -> import into an empty profile -> export gives the same entities and objects; re-import adds nothing."""
    first = tmp_path / 'first.aiida'
    create_archive(storage, first, SqliteZipFormat)
    summary = imported(target, first, import_group=False)
    source = snapshot(storage)
    assert_holds(source, snapshot(target))
    assert summary.added == {
        'user': 2,  # NOTE: a new storage makes its default user (the same email) on first use only
        'computer': 2,
        'node': 5,
        'group': 2,
        'group_node': 3,
        'link': storage.count_rows(EntityType.LINK),
        'comment': 2,
        'log': 2,
    }
    assert (summary.object_count, object_count(target)) == (3, 3)

    second = tmp_path / 'second.aiida'
    create_archive(target, second, SqliteZipFormat)
    assert in_place(second) == in_place(first)

    before, objects = counts(target), object_count(target)
    again = imported(target, first, import_group=False)
    assert counts(target) == before
    assert object_count(target) == objects
    assert set(again.added.values()) == {0}
    assert again.existing['node'] == 5
    assert again.existing['link'] == storage.count_rows(EntityType.LINK)
    assert again.object_count == 0


def test_dry_run_reports_and_writes_nothing(
    storage: EntityStorage, graph: Graph, target: EntityStorage, tmp_path: Path
) -> None:
    """A dry run gives the counts a real import gives, and leaves rows and objects as they were."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    before = counts(target)
    dry = imported(target, archive, dry_run=True)
    assert dry.dry_run
    assert counts(target) == before
    assert object_count(target) == 0
    real = imported(target, archive)
    assert (dry.added, dry.existing, dry.object_count, dry.object_bytes) == (
        real.added,
        real.existing,
        real.object_count,
        real.object_bytes,
    )
    assert real.object_bytes == len(b'input file') + len(b'result file' * 1000) + len(b'not reached')


def test_import_group(storage: EntityStorage, graph: Graph, target: EntityStorage, tmp_path: Path) -> None:
    """Every node of the archive goes into a new group named by the time, or the named one; none with False."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    summary = imported(target, archive)
    assert summary.import_group is not None
    (group_row,) = target.get_rows(EntityType.GROUP, 'label', [summary.import_group])
    assert group_row['type_string'] == 'core.import'
    members = target.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', [group_row['id']])
    assert len(members) == 5

    again = imported(target, archive, import_group='mine')
    assert again.import_group == 'mine'
    (mine,) = target.get_rows(EntityType.GROUP, 'label', ['mine'])
    assert len(target.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', [mine['id']])) == 5
    groups = target.count_rows(EntityType.GROUP)
    assert imported(target, archive, import_group=False).import_group is None
    assert target.count_rows(EntityType.GROUP) == groups


def test_label_clashes_are_renamed(storage: EntityStorage, graph: Graph, target: EntityStorage, tmp_path: Path) -> None:
    """A new group or computer whose label is taken gets aiida-core's '(Imported #n)' label."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    Group('results', storage=target).store()
    Group('results (Imported #0)', storage=target).store()
    from provstore.orm import Computer

    Computer('cluster', 'elsewhere.example.org', storage=target).store()
    summary = imported(target, archive, import_group=False)
    assert summary.relabelled == {
        'computer': [('cluster', 'cluster (Imported #0)')],
        'group': [('results', 'results (Imported #1)')],
    }
    assert target.get_rows(EntityType.GROUP, 'label', ['results (Imported #1)'])[0]['description'] == 'the results'


@pytest.mark.parametrize(
    ('mode', 'expected'),
    [
        ('keep_existing', {'tag': 'mine', 'only_mine': 1, 'only_archive': 2, '_aiida_hash': 'x'}),
        ('update_existing', {'tag': 'archive', 'only_mine': 1, 'only_archive': 2, '_aiida_hash': 'x'}),
        ('mirror', {'tag': 'archive', 'only_archive': 2, '_aiida_hash': 'x'}),
        ('none', {'tag': 'mine', 'only_mine': 1}),
    ],
)
def test_extras_modes_for_existing_nodes(
    storage: EntityStorage, target: EntityStorage, tmp_path: Path, mode: str, expected: dict[str, Any]
) -> None:
    """The extras of a node the profile holds are merged as the mode says; new nodes keep theirs, or none."""
    node = Int(1, storage=storage)
    node.base.extras.set_many({'tag': 'archive', 'only_archive': 2, '_aiida_hash': 'x'})
    node.store()
    other = Int(2, storage=storage)
    other.base.extras.set('kept', True)
    first = tmp_path / 'first.aiida'
    create_archive(storage, first, SqliteZipFormat, node_ids=[node.pk])
    imported(target, first, import_group=False)
    (row,) = target.get_rows(EntityType.NODE, 'uuid', [node.uuid])
    assert row['extras'] == {'tag': 'archive', 'only_archive': 2}  # NOTE: a new node comes without private keys
    target.update_rows(EntityType.NODE, [{'id': row['id'], 'extras': {'tag': 'mine', 'only_mine': 1}}])
    mtime = target.get_rows(EntityType.NODE, 'id', [row['id']])[0]['mtime']

    other.store()
    second = tmp_path / 'second.aiida'
    create_archive(storage, second, SqliteZipFormat)
    summary = imported(target, second, import_group=False, extras_mode_existing=mode, extras_mode_new='none')
    (merged,) = target.get_rows(EntityType.NODE, 'uuid', [node.uuid])
    assert merged['extras'] == expected
    assert merged['mtime'] == mtime
    assert summary.updated.get('node', 0) == (0 if mode == 'none' else 1)
    assert target.get_rows(EntityType.NODE, 'uuid', [other.uuid])[0]['extras'] == {}


def test_private_extras_written_with_escapes_are_left_out_too(
    storage: EntityStorage, target: EntityStorage, tmp_path: Path
) -> None:
    """A new node's ``_aiida_`` extras are left out however the archive's JSON text spells their keys."""
    node = Int(1, storage=storage).store()
    archive = tmp_path / 'escaped.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    escaped = tmp_path / 'escaped-keys.aiida'
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(escaped, 'w') as output:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == 'db.sqlite3':
                database = tmp_path / 'db.sqlite3'
                database.write_bytes(data)
                connection = sqlite3.connect(database)
                connection.execute(
                    'UPDATE db_dbnode SET extras = ? WHERE uuid = ?',
                    ('{"\\u005faiida_hash": "x", "\\u006bept": 1}', node.uuid),
                )
                connection.commit()
                connection.close()
                data = database.read_bytes()
            output.writestr(info, data)
    imported(target, escaped, import_group=False)
    assert target.get_rows(EntityType.NODE, 'uuid', [node.uuid])[0]['extras'] == {'kept': 1}


@pytest.mark.parametrize(
    ('mode', 'age', 'expected'),
    [
        ('leave', -1, 'mine'),
        ('newest', -1, 'archive'),
        ('newest', +1, 'mine'),
        ('overwrite', +1, 'archive'),
    ],
)
def test_comment_modes(  # noqa: PLR0917 - pytest passes parameters and fixtures by name
    storage: EntityStorage, target: EntityStorage, tmp_path: Path, mode: str, age: int, expected: str
) -> None:
    """A comment the profile holds (changed ``age`` years after the archive's) is left, replaced when the
    archive's is newer, or always replaced."""
    node = Int(1, storage=storage).store()
    comment = Comment(node, 'archive').store()
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    imported(target, archive, import_group=False)
    (row,) = target.get_rows(EntityType.COMMENT, 'uuid', [comment.uuid])
    mtime = row['mtime'].replace(year=row['mtime'].year + age)
    target.update_rows(EntityType.COMMENT, [{'id': row['id'], 'content': 'mine', 'mtime': mtime}])
    summary = imported(target, archive, import_group=False, comment_mode=mode)
    assert target.get_rows(EntityType.COMMENT, 'uuid', [comment.uuid])[0]['content'] == expected
    assert summary.updated.get('comment', 0) == (expected == 'archive')


def test_unknown_modes_are_refused(storage: EntityStorage, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"extras_mode_existing must be one of .* got 'merge'"):
        imported(storage, tmp_path / 'x.aiida', extras_mode_existing='merge')
    with pytest.raises(ValueError, match='comment_mode must be one of'):
        imported(storage, tmp_path / 'x.aiida', comment_mode='newer')


def test_a_conflicting_link_is_refused_and_nothing_is_written(
    storage: EntityStorage, target: EntityStorage, tmp_path: Path
) -> None:
    """An archive whose link breaks a rule together with the profile's links is refused whole."""
    from provstore.orm import CalcFunctionNode, LinkType, store_nodes

    data = Int(1, storage=storage).store()
    archive = tmp_path / 'data.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    imported(target, archive, import_group=False)
    # the target gives the data node a creator; the source gives it another one
    mine = CalcFunctionNode(storage=target)
    copy = Int.collection(target).get(uuid=data.uuid)
    mine.store()
    target.insert_rows(
        EntityType.LINK, [{'input_id': mine.pk, 'output_id': copy.pk, 'type': 'create', 'label': 'result'}]
    )
    theirs = CalcFunctionNode(storage=storage)
    theirs.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([theirs], storage)
    storage.insert_rows(
        EntityType.LINK, [{'input_id': theirs.pk, 'output_id': data.pk, 'type': 'create', 'label': 'result'}]
    )
    theirs.seal()
    with_file = Int(2, storage=storage)
    with_file.base.repository.put_object_from_bytes(b'a file the target lacks' * 10_000, 'big.txt')
    with_file.store()
    conflicting = tmp_path / 'conflicting.aiida'
    create_archive(storage, conflicting, SqliteZipFormat)
    before, objects = counts(target), object_count(target)
    with pytest.raises(ArchiveError, match='already has an incoming create link'):
        imported(target, conflicting, import_group=False)
    assert (counts(target), object_count(target)) == (before, objects)
    # the check of the archive's objects, which ran while the links were imported, was stopped and cleaned up
    assert not [thread for thread in threading.enumerate() if thread.name == 'provstore-import-objects']


def test_an_object_that_does_not_hash_to_its_name_is_refused(
    storage: EntityStorage, graph: Graph, target: EntityStorage, tmp_path: Path
) -> None:
    """Before any object is written, every object to write is hashed: a forged one refuses the whole archive."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    forged = tmp_path / 'forged.aiida'
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(forged, 'w') as output:
        names = [name for name in source.namelist() if name.startswith('repo/')]
        for info in source.infolist():
            data = source.read(info)
            output.writestr(info, b'forged content' if info.filename == names[-1] else data)
    before = counts(target)
    with pytest.raises(ArchiveError, match=f'{names[-1][5:]} of the archive does not hash to its name'):
        imported(target, forged)
    assert counts(target) == before
    assert object_count(target) == 0
    assert QueryBuilder(storage=target).append(Int).count() == 0
