"""aiida-core's own archives (main_0000, main_0001, 1.0) open read-only and answer queries in place.

Every answer is compared with the archive's database read directly with ``sqlite3`` and with its ``repo/`` members.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_archives import AIIDA_CORE_STATIC, READABLE_ARCHIVES
from sqlite_zip_helpers import altered_database

from provstore.archive import ArchiveReader
from provstore.exceptions import ReadOnlyStorageError
from provstore.orm import Comment, Computer, Group, Log, Node, QueryBuilder, User
from provstore.registry import get_archive_format
from provstore.storage import EntityStorage, EntityType, StorageBackend
from provstore_sqlite_zip.format import SqliteZipFormat


@pytest.fixture(params=READABLE_ARCHIVES)
def archive(request: pytest.FixtureRequest) -> Path:
    """One of aiida-core's readable archives."""
    return AIIDA_CORE_STATIC / request.param


@pytest.fixture
def storage(archive: Path) -> Iterator[EntityStorage]:
    """The archive, opened in place through the registered format."""
    opened = get_archive_format('sqlite_zip').open(archive)
    assert isinstance(opened, EntityStorage)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def direct(archive: Path, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The archive's own database, extracted by hand and read with sqlite3."""
    path = tmp_path / 'direct.sqlite3'
    with zipfile.ZipFile(archive) as handle:
        path.write_bytes(handle.read('db.sqlite3'))
    connection = sqlite3.connect(path)
    try:
        yield connection
    finally:
        connection.close()


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def test_version_is_read_from_metadata_alone(archive: Path) -> None:
    """read_version gives metadata.json's export_version, one of the versions the format reads."""
    with zipfile.ZipFile(archive) as handle:
        expected = json.loads(handle.read('metadata.json'))['export_version']
    assert SqliteZipFormat.read_version(archive) == expected
    assert expected in SqliteZipFormat.versions_readable()


def test_nodes_match_the_database(storage: EntityStorage, direct: sqlite3.Connection) -> None:
    """Every node, with its type strings, label, attributes and extras, is found by the QueryBuilder."""
    expected = {
        uuid: (node_type, process_type, label, _json(attributes), _json(extras))
        for uuid, node_type, process_type, label, attributes, extras in direct.execute(
            'SELECT uuid, node_type, process_type, label, attributes, extras FROM db_dbnode'
        )
    }
    projected = ['uuid', 'node_type', 'process_type', 'label', 'attributes', 'extras']
    found = {row[0]: tuple(row[1:]) for row in QueryBuilder(storage).append(Node, project=projected).all()}
    assert expected
    assert found == expected
    assert QueryBuilder(storage).append(Node).count() == len(expected)


def test_links_match_the_database(storage: EntityStorage, direct: sqlite3.Connection) -> None:
    """Every link, as (input uuid, output uuid, label, type), is found by a query along the links."""
    expected = sorted(
        direct.execute(
            'SELECT i.uuid, o.uuid, l.label, l.type FROM db_dblink l '
            'JOIN db_dbnode i ON i.id = l.input_id JOIN db_dbnode o ON o.id = l.output_id'
        ).fetchall()
    )
    query = QueryBuilder(storage).append(Node, tag='in', project='uuid')
    query.append(Node, with_incoming='in', project='uuid', edge_project=['label', 'type'])
    assert sorted(tuple(row) for row in query.all()) == expected


def test_groups_and_members_match_the_database(storage: EntityStorage, direct: sqlite3.Connection) -> None:
    """Groups (uuid, label, type string) and their members are those of the database."""
    groups = sorted(direct.execute('SELECT uuid, label, type_string FROM db_dbgroup').fetchall())
    found = QueryBuilder(storage).append(Group, project=['uuid', 'label', 'type_string']).all()
    assert sorted(tuple(row) for row in found) == groups
    members = sorted(
        direct.execute(
            'SELECT g.uuid, n.uuid FROM db_dbgroup_dbnodes m JOIN db_dbgroup g ON g.id = m.dbgroup_id '
            'JOIN db_dbnode n ON n.id = m.dbnode_id'
        ).fetchall()
    )
    query = (
        QueryBuilder(storage)
        .append(Group, tag='group', project='uuid')
        .append(Node, with_group='group', project='uuid')
    )
    assert sorted(tuple(row) for row in query.all()) == members


def test_users_computers_comments_and_logs_match_the_database(
    storage: EntityStorage, direct: sqlite3.Connection
) -> None:
    """Users, computers, comments and logs are those of the database."""
    cases: list[tuple[type[Any], list[str], str]] = [
        (User, ['email', 'first_name', 'last_name'], 'SELECT email, first_name, last_name FROM db_dbuser'),
        (Computer, ['uuid', 'label', 'hostname'], 'SELECT uuid, label, hostname FROM db_dbcomputer'),
        (Comment, ['uuid', 'content'], 'SELECT uuid, content FROM db_dbcomment'),
        (Log, ['uuid', 'message', 'levelname'], 'SELECT uuid, message, levelname FROM db_dblog'),
    ]
    for cls, projected, sql in cases:
        expected = sorted(direct.execute(sql).fetchall())
        found = sorted(tuple(row) for row in QueryBuilder(storage).append(cls, project=projected).all())
        assert found == expected, cls.__name__
    assert storage.count_rows(EntityType.USER) >= 1


def _files(metadata: dict[str, Any], prefix: str = '') -> Iterator[tuple[str, str]]:
    """Yield ``(path, key)`` of every file in a ``repository_metadata`` tree."""
    for name, entry in metadata.get('o', {}).items():
        if 'k' in entry:
            yield f'{prefix}{name}', entry['k']
        else:
            yield from _files(entry, f'{prefix}{name}/')


def test_file_contents_match_the_zip_members(storage: EntityStorage, direct: sqlite3.Connection, archive: Path) -> None:
    """Every file of every node reads, through the node's repository, as the bytes of its zip member."""
    checked = 0
    with zipfile.ZipFile(archive) as handle:
        for uuid, metadata in direct.execute('SELECT uuid, repository_metadata FROM db_dbnode'):
            node = Node.collection(storage).get(uuid=uuid)
            for path, key in _files(_json(metadata) or {}):
                expected = hashlib.sha256(handle.read(f'repo/{key}')).hexdigest()
                assert expected == key
                assert hashlib.sha256(node.base.repository.get_object_content(path, 'rb')).hexdigest() == expected
                checked += 1
    with zipfile.ZipFile(archive) as handle:
        has_objects = any(name.startswith('repo/') and not name.endswith('/') for name in handle.namelist())
    assert (checked > 0) == has_objects


def test_the_archive_refuses_every_write(storage: EntityStorage, archive: Path) -> None:
    """Rows, files and the storage's lifecycle are refused with the one error naming the read-only backend; the
    archive file is unchanged."""
    before = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert isinstance(storage, StorageBackend)
    assert storage.read_only
    with pytest.raises(ReadOnlyStorageError, match=rf'The archive {archive} is read-only \(sqlite_zip reads it'):
        storage.insert_rows(EntityType.USER, [{'email': 'intruder@example.org'}])
    repository = storage.get_repository()
    assert repository.read_only
    with pytest.raises(ReadOnlyStorageError, match=r'\(sqlite_zip\) is read-only'):
        repository.put_object_from_filelike(io.BytesIO(b'data'))
    keys = list(repository.list_objects())
    if keys:
        with pytest.raises(ReadOnlyStorageError, match='read-only'):
            repository.delete_objects(keys[:1])
    with pytest.raises(ReadOnlyStorageError, match='read-only'):
        type(storage).initialise(storage.profile, reset=True)
    with pytest.raises(ReadOnlyStorageError, match='read-only'):
        storage.maintain()
    with pytest.raises(ReadOnlyStorageError):
        User(email='new@example.org', storage=storage).store()
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == before


def test_the_reader_streams_metadata_rows_and_objects(archive: Path, direct: sqlite3.Connection) -> None:
    """``open_reader`` gives the archive's metadata, every row of each entity kind and every object, by key."""
    reader = SqliteZipFormat.open_reader(archive)
    try:
        assert isinstance(reader, ArchiveReader)
        assert reader.metadata.format == 'sqlite_zip'
        assert reader.metadata.version == SqliteZipFormat.read_version(archive)
        assert reader.metadata.key_format == 'sha256'
        for entity, table in [(EntityType.NODE, 'db_dbnode'), (EntityType.LINK, 'db_dblink')]:
            (expected,) = direct.execute(f'SELECT count(*) FROM {table}').fetchone()
            assert reader.count_rows(entity) == expected
            assert len(list(reader.iter_rows(entity, batch_size=3))) == expected
        uuids = {row['uuid'] for row in reader.iter_rows(EntityType.NODE)}
        assert uuids == {uuid for (uuid,) in direct.execute('SELECT uuid FROM db_dbnode')}
        with zipfile.ZipFile(archive) as handle:
            keys = [name[5:] for name in handle.namelist() if name.startswith('repo/') and len(name) == 69]
        streamed = {key: hashlib.sha256(stream.read()).hexdigest() for key, stream in reader.iter_object_streams(keys)}
        assert streamed == {key: key for key in keys}
        with pytest.raises(FileNotFoundError, match='0' * 64):
            reader.iter_object_streams(['0' * 64])
    finally:
        reader.close()


def test_null_values_of_main_0000_are_read_as_none(tmp_path: Path) -> None:
    """A main_0000 archive may hold NULL where main_0001 has defaults (aiida-core's main_0000a): read as ``None``."""
    source = AIIDA_CORE_STATIC / 'export__migrate__export_main_0000_simple.aiida'
    with zipfile.ZipFile(source) as handle:
        members = {info.filename: handle.read(info) for info in handle.infolist() if not info.is_dir()}
    members['db.sqlite3'] = altered_database(
        members['db.sqlite3'],
        tmp_path,
        'UPDATE db_dbnode SET label = NULL, description = NULL',
        'UPDATE db_dbuser SET first_name = NULL',
        'UPDATE db_dbgroup SET type_string = NULL, description = NULL',
    )
    path = tmp_path / 'nulls.aiida'
    with zipfile.ZipFile(path, 'w') as handle:
        for name, content in members.items():
            handle.writestr(name, content)
    storage = SqliteZipFormat.open(path)
    try:
        labels = QueryBuilder(storage).append(Node, project=['label', 'description']).all()
        assert labels == [[None, None]] * 10
        assert [user.first_name for user in User.collection(storage).all()] == [None]
        assert sorted(group.label for group in Group.collection(storage).all()) == [f'testing{i}' for i in range(1, 5)]
        assert QueryBuilder(storage).append(Group, filters={'type_string': None}).count() == 4
    finally:
        storage.close()
