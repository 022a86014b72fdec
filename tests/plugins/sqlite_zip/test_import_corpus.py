"""``import_archive`` over the corpus of ``corpus.py``, into a ``sqlite_dos`` profile that already holds a node.

Each hostile archive is refused with its own message, and afterwards the profile holds the same rows of every kind
and the same repository objects, and no file was written or left outside the profile (the configuration folder,
the temporary folder, the archive itself). Each odd archive imports whole: the profile then holds everything the
archive holds, compared by identity with the archive opened in place.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus import HOSTILE, ODD, Corpus

from provstore.archive.imports import import_archive
from provstore.exceptions import ArchiveError
from provstore.orm import Group, Int
from provstore.registry import get_storage_backend
from provstore.storage import EntityStorage, EntityType
from provstore.testing import new_profile, opened_storage
from provstore.testing.archive_graph import assert_holds, snapshot
from provstore_sqlite_zip.format import SqliteZipFormat

HOSTILE_BY_ID = {case.id: case for case in HOSTILE}
ODD_BY_ID = {case.id: case for case in ODD}


@pytest.fixture(scope='session')
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a ``sqlite_dos`` profile holding a node with a file, in a group; copied for each test."""
    folder = tmp_path_factory.mktemp('seed') / 'profile'
    backend = get_storage_backend('sqlite_dos')
    with opened_storage(backend, new_profile(backend, folder, name='target'), initialise=True) as storage:
        node = Int(42, storage=storage)
        node.base.repository.put_object_from_bytes(b'already here', 'here.txt')
        node.store()
        Group('existing', storage=storage).store().add_nodes([node])
    return folder


@pytest.fixture
def target(seed: Path, tmp_path: Path) -> Iterator[EntityStorage]:
    """A copy of the seed profile in this test's folder, open."""
    folder = tmp_path / 'target'
    shutil.copytree(seed, folder)
    backend = get_storage_backend('sqlite_dos')
    with opened_storage(backend, new_profile(backend, folder, name='target')) as storage:
        assert isinstance(storage, EntityStorage)
        yield storage


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this test: where ``tempfile`` makes its files and folders."""
    folder = tmp_path / 'tmp'
    folder.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(folder))
    return folder


def state(storage: EntityStorage) -> tuple[dict[str, int], set[str]]:
    """Return the rows per entity kind and the repository's object keys."""
    return {kind.value: storage.count_rows(kind) for kind in EntityType}, set(storage.get_repository().list_objects())


def files_outside(*folders: Path, profile: Path) -> dict[str, tuple[int, int]]:
    """Return ``{path: (size, mtime)}`` of every file in ``folders`` but those of the profile folder."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in folder.rglob('*')
        if path.is_file() and profile not in path.parents
    }


@pytest.mark.parametrize('case_id', list(HOSTILE_BY_ID))
def test_hostile_archive_import_is_refused(  # noqa: PLR0917 - pytest passes parameters and fixtures by name
    case_id: str, corpus: Corpus, target: EntityStorage, temporary: Path, config_folder: Path, tmp_path: Path
) -> None:
    """Refused with the case's message; the profile unchanged; nothing written outside it."""
    case = HOSTILE_BY_ID[case_id]
    path = corpus.path(case_id)
    archive = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    before = state(target)
    outside = files_outside(config_folder, tmp_path, profile=tmp_path / 'target')
    with pytest.raises(ArchiveError) as refused:
        import_archive(target, path, SqliteZipFormat)
    message = str(refused.value)
    assert (case.import_expected or case.expected) in message
    assert '\n' not in message
    assert state(target) == before
    written = set(files_outside(config_folder, tmp_path, profile=tmp_path / 'target').items()) - set(outside.items())
    if case.needs_hashes:
        # NOTE: the database of these archives is sound: verify passes it, and opening the archive to read its rows
        # and objects extracts it into the cache of databases (keyed by the archive's identity), where it stays.
        written = {
            (name, stat) for name, stat in written if Path(name).parent != config_folder / 'cache' / 'sqlite_zip'
        }
    assert written == set()
    assert list(temporary.iterdir()) == []
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == archive


@pytest.mark.parametrize(
    'case_id',
    # NOTE: a hundred thousand objects take the import most of a minute on a small machine
    [pytest.param(case, marks=pytest.mark.slow) if case == 'hundred-thousand-files' else case for case in ODD_BY_ID],
)
def test_odd_archive_imports_whole(case_id: str, corpus: Corpus, target: EntityStorage, temporary: Path) -> None:
    """Everything the archive holds arrives (nodes, links, groups, comments, logs, files); the seed node stays."""
    path = corpus.path(case_id)
    opened = SqliteZipFormat.open(path)
    try:
        assert isinstance(opened, EntityStorage)
        expected: dict[str, Any] = snapshot(opened)
    finally:
        opened.close()
    before = target.count_rows(EntityType.NODE)
    summary = import_archive(target, path, SqliteZipFormat)
    assert summary.added['node'] == len(expected['node']) == ODD_BY_ID[case_id].nodes
    assert target.count_rows(EntityType.NODE) == before + len(expected['node'])
    assert_holds(expected, snapshot(target))
    assert list(temporary.iterdir()) == []
