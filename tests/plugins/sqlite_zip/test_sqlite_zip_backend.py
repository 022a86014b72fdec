"""The read-only storage backend ``sqlite_zip``: profiles over archives, the database cache, refused writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlite_zip_helpers import SIMPLE

from provstore.exceptions import ReadOnlyStorageError
from provstore.registry import get_storage_backend
from provstore.storage import EntityType
from provstore.testing import new_profile, opened_storage
from provstore_sqlite_zip.backend import SqliteZipStorageBackend


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A copy of a real main_0001 archive, free to touch."""
    path = tmp_path / 'archive' / 'simple.aiida'
    path.parent.mkdir()
    shutil.copyfile(SIMPLE, path)
    return path


def _cached(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def test_the_backend_is_registered_read_only() -> None:
    """The registry gives the ``sqlite_zip`` storage backend, read-only, at the newest archive version."""
    backend = get_storage_backend('sqlite_zip')
    assert backend is SqliteZipStorageBackend
    assert backend.read_only
    assert backend.version_head() == 'main_0001'


def test_a_profile_points_at_an_archive(archive: Path, tmp_path: Path) -> None:
    """A profile of backend sqlite_zip reads the archive in place, with its database cached in ``cache_folder``."""
    cache = tmp_path / 'cache'
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'profile', filepath=str(archive), cache_folder=str(cache))
    assert SqliteZipStorageBackend.version_profile(profile) == 'main_0001'
    assert SqliteZipStorageBackend.initialise(profile) is False
    with opened_storage(SqliteZipStorageBackend, profile) as storage:
        assert storage.count_rows(EntityType.NODE) == 10  # type: ignore[attr-defined]
        info = storage.get_info(detailed=True)
    assert info['backend'] == 'sqlite_zip'
    assert info['entities']['nodes'] == 10
    assert info['repository']['objects'] > 0
    assert [path.suffix for path in _cached(cache)] == ['.sqlite3']


def test_the_database_is_extracted_once_and_reused(archive: Path, tmp_path: Path) -> None:
    """A second opening reuses the cached database untouched; no temporary file is left behind."""
    cache = tmp_path / 'cache'
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'p', filepath=str(archive), cache_folder=str(cache))
    with opened_storage(SqliteZipStorageBackend, profile):
        pass
    (cached,) = _cached(cache)
    first = cached.stat()
    with opened_storage(SqliteZipStorageBackend, profile) as storage:
        assert storage.count_rows(EntityType.LINK) == 8  # type: ignore[attr-defined]
    assert _cached(cache) == [cached]
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def test_a_changed_archive_gets_a_new_cache_entry(archive: Path, tmp_path: Path) -> None:
    """The cache is keyed by the archive's identity: a new modification time means a new extraction."""
    cache = tmp_path / 'cache'
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'p', filepath=str(archive), cache_folder=str(cache))
    with opened_storage(SqliteZipStorageBackend, profile):
        pass
    os.utime(archive, ns=(1_000_000_000, 1_000_000_000))
    with opened_storage(SqliteZipStorageBackend, profile):
        pass
    assert len(_cached(cache)) == 2


def test_processes_opening_the_same_archive_at_once(archive: Path, tmp_path: Path) -> None:
    """Four processes that open the same archive at the same moment all read it, and one cache entry is left."""
    cache = tmp_path / 'cache'
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from provstore.storage import EntityType
        from provstore.testing import new_profile
        from provstore_sqlite_zip.backend import SqliteZipStorageBackend

        profile = new_profile(SqliteZipStorageBackend, Path({str(tmp_path)!r}), filepath={str(archive)!r},
                              cache_folder={str(cache)!r})
        storage = SqliteZipStorageBackend(profile)
        print(storage.count_rows(EntityType.NODE))
        storage.close()
        """
    )
    processes = [
        subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    outcomes = [(process.returncode, out.strip()) for process, (out, _) in zip(processes, results, strict=True)]
    assert outcomes == [(0, '10')] * 4, results
    assert [path.suffix for path in _cached(cache)] == ['.sqlite3']


def test_writes_are_refused_also_below_the_entity_methods(archive: Path, tmp_path: Path) -> None:
    """A write block is refused with ReadOnlyStorageError; SQL written by hand in a read block fails in SQLite."""
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'p', filepath=str(archive), cache_folder=str(tmp_path))
    with opened_storage(SqliteZipStorageBackend, profile) as storage:
        with pytest.raises(ReadOnlyStorageError, match=rf'The archive {archive} is read-only \(sqlite_zip reads it'):
            with storage.connection(write=True):  # type: ignore[attr-defined]
                pass
        with pytest.raises(OperationalError, match=r'readonly|read-only|query_only'):
            with storage.connection() as connection:  # type: ignore[attr-defined]
                connection.execute(text('DELETE FROM db_dbnode'))
        assert storage.count_rows(EntityType.NODE) == 10  # type: ignore[attr-defined]
        with pytest.raises(ReadOnlyStorageError):
            storage.add_json_index(EntityType.NODE, 'attributes', ['value'])  # type: ignore[attr-defined]
        assert storage.list_json_indexes() == []  # type: ignore[attr-defined]


def test_erase_forgets_the_cache_and_keeps_the_archive(archive: Path, tmp_path: Path) -> None:
    """Erasing the storage deletes the cached database only: the archive file is untouched."""
    cache = tmp_path / 'cache'
    before = hashlib.sha256(archive.read_bytes()).hexdigest()
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'p', filepath=str(archive), cache_folder=str(cache))
    with opened_storage(SqliteZipStorageBackend, profile, erase=True):
        assert len(_cached(cache)) == 1
    assert _cached(cache) == []
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == before


def test_no_archive_cannot_be_initialised(tmp_path: Path) -> None:
    """A profile whose archive does not exist has no storage, and initialising cannot make one."""
    profile = new_profile(SqliteZipStorageBackend, tmp_path / 'p', filepath=str(tmp_path / 'missing.aiida'))
    assert SqliteZipStorageBackend.version_profile(profile) is None
    with pytest.raises(ReadOnlyStorageError, match='cannot make the archive'):
        SqliteZipStorageBackend.initialise(profile)
    assert not (tmp_path / 'missing.aiida').exists()
