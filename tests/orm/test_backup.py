"""``storage backup`` and ``storage restore`` on ``sqlite_dos`` and ``psql_dos``: round trip, a backup taken while
another process writes, incremental copies (hard links), a backup killed with SIGKILL and resumed, ``--verify``,
pruning, bad input, and restore over a profile that another process holds."""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import error, invoke, ok
from orm_helpers import open_storage
from postgres_test_server import drop_database, new_database_name

from provstore.exceptions import BackupError, ProfileLockedError, StorageError
from provstore.manager import get_manager, maintain_storage, restore_storage
from provstore.orm import Int, store_nodes
from provstore.storage import EntityStorage
from provstore.storage.backup import (
    LAST_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    PARTIAL_NAME,
    PAUSE_VARIABLE,
    create_backup,
    read_manifest,
    resolve_backup,
    verify_backup,
)
from provstore.testing.archive_graph import store_graph


@pytest.fixture
def restored(storage_or_name: Any) -> Iterator[tuple[str, str | None]]:
    """The name of the profile to restore into, and its database name on psql_dos (dropped afterwards)."""
    database = new_database_name() if _backend(storage_or_name) == 'psql_dos' else None
    yield 'restored', database
    get_manager().unload_profile()
    if database is not None:
        drop_database(database)


@pytest.fixture
def storage_or_name(request: pytest.FixtureRequest) -> Any:
    """Whichever of ``storage`` or ``profile_name`` the test uses."""
    for name in ('storage', 'profile_name'):
        if name in request.fixturenames:
            return request.getfixturevalue(name)
    raise AssertionError('the test uses neither storage nor profile_name')


def _backend(storage_or_name: Any) -> str:
    if isinstance(storage_or_name, str):
        return str(get_manager().load_profile(storage_or_name).storage_backend)
    return str(storage_or_name.profile.storage_backend)


def _rows(storage: EntityStorage) -> dict[str, set[tuple[Any, ...]]]:
    """Nodes (uuid, type, repository metadata) and links (input, output, label, type) as sets of tuples."""
    from sqlalchemy import text

    queries = {
        'nodes': 'SELECT uuid, node_type, repository_metadata FROM db_dbnode',
        'links': 'SELECT i.uuid, o.uuid, l.label, l.type FROM db_dblink l '
        'JOIN db_dbnode i ON i.id = l.input_id JOIN db_dbnode o ON o.id = l.output_id',
        'groups': 'SELECT uuid, label FROM db_dbgroup',
    }
    found = {}
    with storage.connection() as connection:  # type: ignore[attr-defined]
        for name, query in queries.items():
            found[name] = {
                tuple(json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value) for value in row)
                for row in connection.execute(text(query))
            }
    return found


def _objects(storage: EntityStorage) -> dict[str, bytes]:
    repository = storage.get_repository()
    return {key: repository.get_object_content(key) for key in repository.list_objects()}


def _store_with_files(storage: EntityStorage, count: int, tag: str) -> list[str]:
    nodes = []
    for index in range(count):
        node = Int(index, storage=storage)
        node.base.repository.put_object_from_bytes(f'{tag} file {index}\n'.encode() * 50, f'{tag}.txt')
        nodes.append(node)
    store_nodes(nodes, storage)
    return [node.uuid for node in nodes]


def _reopen(name: str) -> EntityStorage:
    get_manager().unload_profile()
    return open_storage(name)


def test_round_trip(storage: EntityStorage, restored: tuple[str, str | None], tmp_path: Path) -> None:
    """A backup restored into a new profile holds the same nodes, links, groups and objects, and verifies."""
    store_graph(storage)
    storage.maintain()  # NOTE: packs the objects, so that the backup has pack files and a pack index
    _store_with_files(storage, 3, 'loose')
    rows, objects = _rows(storage), _objects(storage)
    report = create_backup(storage, tmp_path / 'backups')
    assert report.files_copied == report.files and report.files_linked == 0
    assert verify_backup(tmp_path / 'backups') == []
    manifest = read_manifest(Path(report.folder))
    assert 'database_password' not in manifest['profile']['storage_config']
    name, database = restored
    profile = restore_storage(tmp_path / 'backups', name, database_name=database)
    assert profile.storage_backend == storage.profile.storage_backend
    copy = _reopen(name)
    assert _rows(copy) == rows
    assert _objects(copy) == objects


def test_second_backup_copies_only_the_change(storage: EntityStorage, tmp_path: Path) -> None:
    """After a small change, a second backup copies the database snapshot, the pack index and the new object only;
    the unchanged pack files and container config are hard links to the first backup's (same inode)."""
    _store_with_files(storage, 20, 'first')
    storage.maintain()
    dest = tmp_path / 'backups'
    first = create_backup(storage, dest)
    store_nodes([Int(99, storage=storage)], storage)
    storage.get_repository().put_object_from_filelike(io.BytesIO(b'one new object'))  # one loose object
    second = create_backup(storage, dest)
    old, new = Path(first.folder), Path(second.folder)
    copied = {}
    for entry in read_manifest(new)['files']:
        before = old / entry.path
        if before.exists() and before.stat().st_ino == (new / entry.path).stat().st_ino:
            continue
        copied[entry.path] = entry.size
    packs = [entry.path for entry in read_manifest(new)['files'] if entry.path.startswith('repository/packs/')]
    assert packs, 'the first objects were packed'
    assert second.files_linked == len(packs) + 1  # the packs and config.json
    loose = [path for path in copied if path.startswith('repository/loose/')]
    assert len(loose) == 1
    assert set(copied) - set(loose) == {
        next(path for path in copied if path.startswith('database/database.')),
        'database/snapshot.json',
        'repository/packs.idx',
    }
    assert second.bytes_copied == sum(copied.values())
    assert second.files_copied == len(copied)
    assert verify_backup(dest) == []
    calls: list[tuple[str, int, int]] = []
    third = create_backup(storage, dest, progress=lambda *call: calls.append(call))
    last = {stage: (done, total) for stage, done, total in calls}
    assert last['objects'] == (third.files, third.files)
    assert last['bytes'] == (third.bytes, third.bytes)


WRITER = textwrap.dedent(
    """
    import pathlib, sys
    from provstore.manager import get_manager, maintain_storage, restore_storage
    from provstore.orm import Int, store_nodes

    manager = get_manager()
    manager.load_profile(sys.argv[1])
    storage = manager.get_profile_storage()
    committed = open(sys.argv[2], 'a')
    index = 0
    while True:
        nodes = []
        for _ in range(5):
            node = Int(index, storage=storage)
            node.base.repository.put_object_from_bytes(f'busy {index}'.encode() * 100, 'busy.txt')
            nodes.append(node)
            index += 1
        store_nodes(nodes, storage)
        committed.write(''.join(node.uuid + '\\n' for node in nodes))
        committed.flush()
        if index % 50 == 0:
            storage.maintain()
    """
)


def test_backup_while_a_writer_is_busy(profile_name: str, restored: tuple[str, str | None], tmp_path: Path) -> None:
    """A backup taken while another process stores nodes with files (and packs them) restores into a profile that
    passes the restore's checks and holds every node committed before the backup began."""
    committed = tmp_path / 'committed.txt'
    committed.touch()
    writer = subprocess.Popen([sys.executable, '-c', WRITER, profile_name, str(committed)])
    try:
        while len(committed.read_text().split()) < 30:
            assert writer.poll() is None, 'the writer stopped'
            time.sleep(0.05)
        before = set(committed.read_text().split())
        storage = open_storage(profile_name)
        report = create_backup(storage, tmp_path / 'backups')
        assert writer.poll() is None, 'the writer went on during the backup'
    finally:
        writer.kill()
        writer.wait()
    assert verify_backup(report.folder) == []
    name, database = restored
    restore_storage(report.folder, name, database_name=database)
    uuids = {row[0] for row in _rows(_reopen(name))['nodes']}
    assert before <= uuids


def test_backup_killed_half_way_resumes(profile_name: str, tmp_path: Path) -> None:
    """A backup process killed with SIGKILL half way leaves no complete backup; the next run keeps the files already
    copied (checked against the journal), completes and verifies."""
    storage = open_storage(profile_name)
    _store_with_files(storage, 5, 'kill')
    for index in range(20):  # NOTE: single objects are written loose: 20 files to copy one by one
        storage.get_repository().put_object_from_filelike(io.BytesIO(b'loose %d' % index))
    dest = tmp_path / 'backups'
    environment = {**os.environ, PAUSE_VARIABLE: '0.2'}
    command = [sys.executable, '-m', 'provstore.cli', '-p', profile_name, 'storage', 'backup', str(dest)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = dest / PARTIAL_NAME / 'journal.jsonl'
    try:
        while not journal.exists() or len(journal.read_text().splitlines()) < 8:
            assert process.poll() is None, 'the backup ended before it was killed'
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (dest / LAST_NAME).exists()
    assert not any((path / MANIFEST_NAME).exists() for path in dest.iterdir())
    report = create_backup(storage, dest)
    assert report.files_resumed >= 5  # NOTE: repository files; the database snapshot is always taken again
    assert report.files_copied + report.files_resumed == report.files  # nothing to link from: no backup yet
    assert not (dest / PARTIAL_NAME).exists()
    assert verify_backup(dest) == []


def test_verify_detects_a_flipped_byte(storage: EntityStorage, tmp_path: Path) -> None:
    """``storage backup --verify`` exits 1 naming a pack file, then the database copy, with one byte flipped."""
    _store_with_files(storage, 5, 'flip')
    storage.maintain()
    dest = tmp_path / 'backups'
    ok('storage', 'backup', str(dest))
    result = ok('storage', 'backup', '--verify', str(dest))
    assert 'every file matches' in result.output
    folder = resolve_backup(dest)
    database = next(path for path in (folder / 'database').iterdir() if path.name.startswith('database.'))
    for path in (folder / 'repository' / 'packs' / '0', database):
        content = bytearray(path.read_bytes())
        content[len(content) // 2] ^= 0x01
        path.write_bytes(bytes(content))
        result = invoke('storage', 'backup', '--verify', str(dest))
        assert result.exit_code == 1, result.output
        assert str(path.relative_to(folder)) in result.stderr
    result = invoke('storage', 'backup', '--verify', '--json', str(dest))
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)['problems']) == 2
    message = error('storage', 'restore', str(dest), '--profile', 'from-damaged')
    assert 'is damaged' in message and '(and 1 more)' in message
    assert 'from-damaged' not in ok('profile', 'list').output


def test_keep_prunes_the_oldest(storage: EntityStorage, tmp_path: Path) -> None:
    """``--keep 2`` leaves the two newest complete backups; ``last`` names the newest; --list shows them."""
    _store_with_files(storage, 2, 'keep')
    dest = tmp_path / 'backups'
    reports = [create_backup(storage, dest, keep=2) for _ in range(3)]
    assert reports[2].pruned == (Path(reports[0].folder).name,)
    names = sorted(path.name for path in dest.iterdir() if not path.name.startswith('.') and path.name != LAST_NAME)
    assert names == [Path(report.folder).name for report in reports[1:]]
    assert (dest / LAST_NAME).resolve() == Path(reports[2].folder)
    listed = json.loads(ok('storage', 'backup', '--list', '--json', str(dest)).stdout)
    assert [item['name'] for item in listed] == names
    assert all(item['profile'] == storage.profile.name for item in listed)


def test_bad_input_is_refused(storage: EntityStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing parent folder, a folder that holds other things, a corrupted manifest, a folder that is not a
    backup, a destination another backup is writing into, and (psql_dos) pg_dump missing: one clear error line
    each, and no complete backup written."""
    message = error('storage', 'backup', str(tmp_path / 'missing' / 'backups'))
    assert 'parent folder' in message and 'does not exist' in message
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'notes.txt').write_text('mine')
    assert 'is not a backup folder' in error('storage', 'backup', str(other))
    assert sorted(path.name for path in other.iterdir()) == ['notes.txt']
    assert 'is not a backup' in error('storage', 'backup', '--verify', str(other))
    assert 'is not a backup' in error('storage', 'restore', str(other), '--profile', 'nowhere')
    dest = tmp_path / 'backups'
    report = create_backup(storage, dest)
    (Path(report.folder) / MANIFEST_NAME).write_text('{"format": "provstore-backup", "version": 1, "files"')
    assert 'is corrupted' in error('storage', 'backup', '--verify', str(dest))
    with open(dest / LOCK_NAME, 'ab') as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        assert 'Another process is writing a backup' in error('storage', 'backup', str(dest))
    with pytest.raises(BackupError, match='--keep must be at least 1'):
        create_backup(storage, tmp_path / 'kept', keep=0)
    if storage.profile.storage_backend == 'psql_dos':
        monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
        with pytest.raises(StorageError, match='pg_dump is not on PATH'):
            create_backup(storage, tmp_path / 'nodump')
        assert not any((path / MANIFEST_NAME).exists() for path in (tmp_path / 'nodump').iterdir())


HOLDER = textwrap.dedent(
    """
    import sys
    from provstore.manager import get_manager, maintain_storage, restore_storage

    manager = get_manager()
    manager.load_profile(sys.argv[1])
    manager.get_profile_storage()
    print('ready', flush=True)
    sys.stdin.readline()
    """
)


def test_restore_over_an_existing_profile(
    storage: EntityStorage, restored: tuple[str, str | None], tmp_path: Path
) -> None:
    """Restoring over an existing profile is refused without --force, and with --force while another process holds
    it (naming that process); once it has let go, --force replaces the profile with the backup's content."""
    _store_with_files(storage, 3, 'before')
    dest = tmp_path / 'backups'
    create_backup(storage, dest)
    name, database = restored
    options = ['--database-name', database] if database else []
    ok('storage', 'restore', str(dest), '--profile', name, *options)
    assert 'exists already' in error('storage', 'restore', str(dest), '--profile', name, *options)
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLDER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'ready'
        with pytest.raises(ProfileLockedError, match=f'pid {holder.pid}'):
            restore_storage(dest, name, database_name=database, force=True)
    finally:
        holder.communicate('\n')
    storage = _reopen(storage.profile.name)
    _store_with_files(storage, 2, 'after')
    create_backup(storage, dest)
    get_manager().unload_profile()
    ok('storage', 'restore', str(dest), '--profile', name, '--force', *options)
    assert len(_rows(_reopen(name))['nodes']) == 5


def test_help() -> None:
    """Both commands explain themselves."""
    assert 'manifest.json' in ok('storage', 'backup', '--help').output
    assert '--database-name' in ok('storage', 'restore', '--help').output


def test_full_maintenance_waits_for_a_backup(profile_name: str, tmp_path: Path) -> None:
    """While a backup runs in another process, full maintenance (which rewrites pack files) is refused, naming the
    backup's process; live maintenance goes on."""
    storage = open_storage(profile_name)
    for index in range(10):
        storage.get_repository().put_object_from_filelike(io.BytesIO(b'object %d' % index))
    get_manager().unload_profile()
    dest = tmp_path / 'backups'
    environment = {**os.environ, PAUSE_VARIABLE: '0.5'}
    command = [sys.executable, '-m', 'provstore.cli', '-p', profile_name, 'storage', 'backup', str(dest)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (dest / PARTIAL_NAME / 'journal.jsonl').exists():
            assert process.poll() is None, 'the backup ended too soon'
            time.sleep(0.05)
        storage = open_storage(profile_name)
        with pytest.raises(ProfileLockedError, match=f'pid {process.pid}'):
            maintain_storage(storage, full=True)
        maintain_storage(storage, full=False)
    finally:
        assert process.wait() == 0
    assert verify_backup(dest) == []
