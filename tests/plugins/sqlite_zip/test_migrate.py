"""``archive migrate``: aiida-core's main_0000 and 1.0 archives become new main_0001 files, rows and objects intact.

Every migrated file is compared with its source opened in place (rows of every entity kind, objects by key), and
read back through the registered format at version main_0001.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import stat
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlite_zip_helpers import AIIDA_CORE_STATIC, altered_database

from provstore.cli import cli
from provstore.exceptions import ArchiveError, ArchiveExportError
from provstore.registry import get_archive_format
from provstore.storage import EntityStorage, EntityType

MAIN_0000 = AIIDA_CORE_STATIC / 'export__migrate__export_main_0000_simple.aiida'
MAIN_0001 = AIIDA_CORE_STATIC / 'export__migrate__export_main_0001_simple.aiida'
VERSION_1_0 = AIIDA_CORE_STATIC / 'graphs__graph1.aiida'

OLDER = [MAIN_0000, VERSION_1_0]
"""aiida-core's archives of the versions that migrate: main_0000 and 1.0."""

WriteZip = Callable[[Iterable[tuple[str, bytes]], str], Path]


def _rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every entity kind of the archive at ``path``, read in place, sorted by id."""
    storage = get_archive_format('sqlite_zip').open(path)
    assert isinstance(storage, EntityStorage)
    try:
        return {
            entity.value: sorted(storage.iter_rows(entity), key=lambda row: row['id'])
            for entity in EntityType  # every kind, auth infos included
        }
    finally:
        storage.close()


def _objects(path: Path) -> dict[str, str]:
    """Return the sha256 of the content of every ``repo/`` member of the zip at ``path``, by key."""
    with zipfile.ZipFile(path) as handle:
        return {
            info.filename.removeprefix('repo/'): hashlib.sha256(handle.read(info)).hexdigest()
            for info in handle.infolist()
            if info.filename.startswith('repo/') and not info.is_dir()
        }


def _leftovers(folder: Path, *expected: Path) -> list[str]:
    """Return the names in ``folder`` other than ``expected``: temporary files left behind."""
    return sorted(path.name for path in folder.iterdir() if path not in expected)


@pytest.mark.parametrize('source', OLDER, ids=lambda path: path.name)
def test_older_archives_migrate_with_every_row_and_object(source: Path, tmp_path: Path) -> None:
    """main_0000 and 1.0 give a new main_0001 file with the same rows and objects; the source is unchanged."""
    before = source.read_bytes()
    destination = tmp_path / 'migrated.aiida'
    sqlite_zip = get_archive_format('sqlite_zip')
    sqlite_zip.migrate(source, destination)
    assert source.read_bytes() == before
    assert sqlite_zip.read_version(destination) == 'main_0001'
    assert _rows(destination) == _rows(source)
    assert _objects(destination) == _objects(source)
    assert _objects(destination)
    assert _leftovers(tmp_path, destination) == []
    umask = os.umask(0o077)
    os.umask(umask)
    assert stat.S_IMODE(destination.stat().st_mode) == 0o666 & ~umask  # a file to share, not mkstemp's 0o600
    with zipfile.ZipFile(destination) as handle:
        names = [info.filename for info in handle.infolist()]
        metadata = json.loads(handle.read('metadata.json'))
    assert names[:2] == ['metadata.json', 'db.sqlite3']
    old = json.loads(zipfile.ZipFile(source).read('metadata.json'))
    assert metadata['export_version'] == 'main_0001'
    assert metadata['key_format'] == 'sha256'
    assert metadata['conversion_info'][: len(old['conversion_info'])] == old['conversion_info']
    assert metadata['conversion_info'][-1].startswith(f'Converted from version {old["export_version"]} to main_0001')


def test_archive_at_main_0001_is_copied_unchanged(tmp_path: Path) -> None:
    """A main_0001 archive is copied byte for byte (what a script migrating a whole folder expects)."""
    destination = tmp_path / 'copy.aiida'
    get_archive_format('sqlite_zip').migrate(MAIN_0001, destination)
    assert destination.read_bytes() == MAIN_0001.read_bytes()
    assert _leftovers(tmp_path, destination) == []


def _nullable_main_0000(database: bytes, folder: Path, *statements: str) -> bytes:
    """Return ``database`` with its NOT NULL constraints gone, as in aiida-core's archives converted from the legacy
    format, after running ``statements``."""
    loose = altered_database(
        database,
        folder,
        'PRAGMA writable_schema=ON',
        "UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') WHERE type = 'table'",
    )
    return altered_database(loose, folder, *statements)


def _main_0000_with(simple_members: dict[str, bytes], write_zip: WriteZip, folder: Path, *statements: str) -> Path:
    """Write a main_0000 archive from aiida-core's, its database loosened and changed by ``statements``."""
    members = dict(simple_members)
    metadata = json.loads(members['metadata.json'])
    metadata['export_version'] = 'main_0000'
    members['metadata.json'] = json.dumps(metadata).encode()
    members['db.sqlite3'] = _nullable_main_0000(members['db.sqlite3'], folder, *statements)
    return write_zip(members.items(), 'nulls.aiida')


def test_empty_values_get_aiida_cores_defaults(
    simple_members: dict[str, bytes], write_zip: WriteZip, tmp_path: Path
) -> None:
    """NULLs main_0001 forbids get defaults (text '', JSON {}, enabled, group type 'core', the time of migration);
    auth infos and comments without their user, computer or node are dropped, as aiida-core's migration does."""
    node = '(SELECT min(id) FROM db_dbnode)'
    ctime = '(SELECT ctime FROM db_dbnode LIMIT 1)'
    source = _main_0000_with(
        simple_members,
        write_zip,
        tmp_path,
        f'UPDATE db_dbnode SET label = NULL, description = NULL, mtime = NULL WHERE id = {node}',
        'UPDATE db_dbgroup SET type_string = NULL, description = NULL WHERE id = (SELECT min(id) FROM db_dbgroup)',
        'UPDATE db_dbcomputer SET metadata = NULL, hostname = NULL',
        'UPDATE db_dbuser SET institution = NULL',
        'INSERT INTO db_dbauthinfo (id, aiidauser_id, dbcomputer_id, metadata, auth_params, enabled) '
        "VALUES (1, 1, 1, NULL, NULL, NULL), (2, 1, NULL, '{}', '{}', 1)",
        f'INSERT INTO db_dbcomment (id, uuid, dbnode_id, ctime, mtime, user_id, content) VALUES '
        f"(1, '{uuid.uuid4()}', {node}, {ctime}, {ctime}, 1, NULL), "
        f"(2, '{uuid.uuid4()}', NULL, {ctime}, {ctime}, 1, 'orphan')",
        f'INSERT INTO db_dblog (id, uuid, time, loggername, levelname, dbnode_id, message, metadata) VALUES '
        f"(1, '{uuid.uuid4()}', NULL, 'aiida', NULL, {node}, 'hello', NULL)",
    )
    destination = tmp_path / 'migrated.aiida'
    started = datetime.datetime.now(datetime.timezone.utc)
    get_archive_format('sqlite_zip').migrate(source, destination)
    rows = _rows(destination)
    old = _rows(source)
    assert (old['node'][0]['label'], len(old['authinfo']), len(old['comment'])) == (None, 2, 2)  # the source's NULLs
    first = rows['node'][0]
    assert (first['label'], first['description']) == ('', '')
    assert started <= first['mtime'] <= datetime.datetime.now(datetime.timezone.utc)
    assert first['ctime'] == old['node'][0]['ctime']
    assert rows['node'][1:] == old['node'][1:]
    group = rows['group'][0]
    assert (group['type_string'], group['description']) == ('core', '')
    assert [(row['metadata'], row['hostname']) for row in rows['computer']] == [({}, '')]
    assert [row['institution'] for row in rows['user']] == ['']
    assert [(row['id'], row['enabled'], row['auth_params'], row['metadata']) for row in rows['authinfo']] == [
        (1, True, {}, {})
    ]
    assert [(row['id'], row['content']) for row in rows['comment']] == [(1, '')]
    [log] = rows['log']
    assert (log['levelname'], log['metadata'], log['message']) == ('', {}, 'hello')
    assert started <= log['time']
    assert _objects(destination) == _objects(source)


def test_a_value_without_default_is_refused_and_nothing_is_left(
    simple_members: dict[str, bytes], write_zip: WriteZip, tmp_path: Path
) -> None:
    """A NULL that aiida-core gives no default either (a node's node_type) is refused by name; no file is left."""
    source = _main_0000_with(
        simple_members,
        write_zip,
        tmp_path,
        'UPDATE db_dbnode SET node_type = NULL WHERE id = (SELECT max(id) FROM db_dbnode)',
    )
    out = tmp_path / 'out'
    out.mkdir()
    destination = out / 'migrated.aiida'
    with pytest.raises(ArchiveError, match=r'the node row with id 28270 has no node_type, which an archive of version'):
        get_archive_format('sqlite_zip').migrate(source, destination)
    assert list(out.iterdir()) == []


def test_corrupt_object_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    """A repository member whose bytes no longer match its CRC stops the migration; nothing appears or stays."""
    damaged = tmp_path / 'damaged.aiida'
    content = bytearray(MAIN_0000.read_bytes())
    with zipfile.ZipFile(MAIN_0000) as handle:
        info = max((item for item in handle.infolist() if item.filename.startswith('repo/')), key=lambda i: i.file_size)
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    content[data_start + info.compress_size // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(ArchiveError, match=rf'the member {info.filename} is corrupt'):
        get_archive_format('sqlite_zip').migrate(damaged, out / 'migrated.aiida')
    assert list(out.iterdir()) == []


def test_refusals(tmp_path: Path) -> None:
    """An existing output needs force; the source itself is never an output; garbage is refused by the reader."""
    sqlite_zip = get_archive_format('sqlite_zip')
    existing = tmp_path / 'there.aiida'
    existing.write_bytes(b'keep me')
    with pytest.raises(ArchiveExportError, match='the file exists: use --force'):
        sqlite_zip.migrate(MAIN_0000, existing)
    assert existing.read_bytes() == b'keep me'
    sqlite_zip.migrate(MAIN_0000, existing, force=True)
    assert sqlite_zip.read_version(existing) == 'main_0001'
    copy = tmp_path / 'copy.aiida'
    copy.write_bytes(MAIN_0000.read_bytes())
    with pytest.raises(ArchiveExportError, match='is the archive being migrated: give another output file'):
        sqlite_zip.migrate(copy, copy, force=True)
    assert copy.read_bytes() == MAIN_0000.read_bytes()
    with pytest.raises(ArchiveError, match='not a zip file'):
        sqlite_zip.migrate(AIIDA_CORE_STATIC / 'export__migrate__empty.aiida', tmp_path / 'x.aiida')
    assert not (tmp_path / 'x.aiida').exists()


def test_cli_migrate(tmp_path: Path) -> None:
    """`archive migrate IN OUT` says what it did, quietly when not on a terminal; an existing OUT exits 1."""
    runner = CliRunner()
    out = tmp_path / 'out.aiida'
    done = runner.invoke(cli, ['archive', 'migrate', str(MAIN_0000), str(out)])
    assert done.exit_code == 0, done.output
    assert done.stdout == f'Migrated {MAIN_0000} (version main_0000) to {out} (version main_0001).\n'
    assert done.stderr == ''
    again = runner.invoke(cli, ['archive', 'migrate', str(MAIN_0000), str(out)])
    assert again.exit_code == 1
    assert again.stderr == f'Error: {out}: the file exists: use --force (force=True) to overwrite it\n'
    copied = runner.invoke(cli, ['archive', 'migrate', str(out), str(tmp_path / 'copy.aiida')])
    assert copied.exit_code == 0
    assert copied.stdout.endswith(
        f'is at version main_0001 already: copied it unchanged to {tmp_path / "copy.aiida"}.\n'
    )
    assert runner.invoke(cli, ['archive', 'migrate', str(MAIN_0000)]).exit_code == 2
