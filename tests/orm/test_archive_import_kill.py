"""An import killed with SIGKILL at any moment leaves the profile as it was: it opens, holds none of the archive's
nodes, and the same archive then imports whole. On ``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from orm_helpers import counts, open_storage

from provstore.archive.create import create_archive
from provstore.archive.imports import import_archive
from provstore.orm import Group, Int, store_nodes
from provstore.storage import EntityStorage, EntityType
from provstore.testing import new_profile, opened_storage
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend
from provstore_sqlite_zip.format import SqliteZipFormat

NODES, FILES_PER_NODE = 300, 4
"""Enough distinct files (1,200) for two batches of objects, so that a kill can fall between them."""

IMPORTER = textwrap.dedent(
    """
    import pathlib, sys, time
    from provstore.archive.imports import import_archive
    from provstore.manager import get_manager
    from provstore_sqlite_zip.format import SqliteZipFormat

    profile, archive, stage, marker = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])

    def progress(at, done, total):
        if at == stage and (done > 0 or at == 'commit'):
            marker.write_text(f'{at} {done} {total}')
            time.sleep(600)

    manager = get_manager()
    manager.load_profile(profile)
    import_archive(manager.get_profile_storage(), archive, SqliteZipFormat, progress=progress)
    """
)


@pytest.fixture(scope='module')
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of 300 nodes, in a group, with 1,200 distinct files, made in a throw-away profile."""
    folder = tmp_path_factory.mktemp('kill-source')
    profile = new_profile(SqliteDosStorageBackend, folder / 'profile', name='source')
    path = folder / 'source.aiida'
    with opened_storage(SqliteDosStorageBackend, profile, initialise=True) as source:
        assert isinstance(source, EntityStorage)
        nodes = []
        for index in range(NODES):
            node = Int(index, storage=source)
            for number in range(FILES_PER_NODE):
                node.base.repository.put_object_from_bytes(f'{index}/{number}'.encode() * 10, f'f{number}.txt')
            nodes.append(node)
        store_nodes(nodes, source)
        Group('all', storage=source).store().add_nodes(nodes)
        create_archive(source, path, SqliteZipFormat)
    return path


@pytest.mark.parametrize('stage', ['node', 'group_node', 'hashing', 'objects', 'commit'])
def test_sigkill_during_import(profile_name: str, archive: Path, tmp_path: Path, stage: str) -> None:
    """Killed during the rows (nodes, memberships), while hashing, between batches of objects or just before the
    commit."""
    storage = open_storage(profile_name)
    before = counts(storage)
    marker = tmp_path / 'reached'
    process = subprocess.Popen(
        [sys.executable, '-c', IMPORTER, profile_name, str(archive), stage, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f'the import ended before reaching {stage!r}: {process.communicate()}')
            assert time.monotonic() < deadline, f'the import did not reach {stage!r}'
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL

    storage = open_storage(profile_name)
    assert counts(storage) == before
    summary = import_archive(storage, archive, SqliteZipFormat)
    assert summary.added['node'] == NODES
    assert storage.count_rows(EntityType.NODE) == before['node'] + NODES
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        last = list(opened.iter_rows(EntityType.NODE))[-1]
    finally:
        opened.close()
    node = Int.collection(storage).get(uuid=last['uuid'])
    assert node.base.repository.list_object_names() == [f'f{number}.txt' for number in range(FILES_PER_NODE)]
    assert node.base.repository.get_object_content('f3.txt') == f'{node.value}/3' * 10
