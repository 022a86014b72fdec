"""provstore's three storage contracts, run on a storage whose files live in ``example.plainfolder``.

A repository plugin has no storage backend of its own, so it borrows one by name from the registry, as a profile
would: ``sqlite_dos`` with ``repository_backend='example.plainfolder'``. Nothing but ``provstore`` is imported; each
contract is a class to subclass, with ``backend_class`` and a profile fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provstore.config import Profile
from provstore.exceptions import PluginNotFoundError
from provstore.registry import get_storage_backend
from provstore.storage import EntityStorage, EntityType, StorageBackend
from provstore.testing import (
    EntityStorageContract,
    QueryConformanceContract,
    StorageBackendContract,
    new_profile,
    opened_storage,
)

try:
    STORAGE = get_storage_backend('sqlite_dos')
except PluginNotFoundError as exc:  # pragma: no cover - the examples env installs it
    pytest.skip(f'the storage backend sqlite_dos is not installed: {exc}', allow_module_level=True)

REPOSITORY = {'repository_backend': 'example.plainfolder'}
"""The storage options that put the files of nodes in a plain folder."""

MARKER = 'contract@example.org'
"""The email of the user the lifecycle contract's data hooks write and look for."""


def plainfolder_profile(folder: Path) -> Profile:
    """Return a ``sqlite_dos`` profile in ``folder`` whose repository is an ``example.plainfolder``."""
    return new_profile(STORAGE, folder, **REPOSITORY)


class TestPlainFolderStorageLifecycle(StorageBackendContract):
    """Create, open, migrate, maintain and erase a storage holding its files in a plain folder."""

    backend_class = STORAGE

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """The profile of the storage under test."""
        return plainfolder_profile(tmp_path / 'profile')

    def write_data(self, profile: Profile) -> None:
        """Store the user :data:`MARKER`."""
        with opened_storage(self.backend_class, profile) as storage:
            assert isinstance(storage, EntityStorage)
            storage.insert_rows(EntityType.USER, [{'email': MARKER}])

    def has_data(self, storage: StorageBackend) -> bool:
        """Return whether the user :data:`MARKER` is stored."""
        assert isinstance(storage, EntityStorage)
        return bool(storage.get_rows(EntityType.USER, 'email', [MARKER]))


class TestPlainFolderEntityStorage(EntityStorageContract):
    """Rows, transactions, JSON patches, links, groups and traversal, with the files in a plain folder."""

    backend_class = STORAGE

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """The profile of the storage under test."""
        return plainfolder_profile(tmp_path / 'profile')


class TestPlainFolderQueries(QueryConformanceContract):
    """The QueryBuilder's conformance table, on a graph whose files (``file-1``, ``folder-1``) are plain files."""

    backend_class = STORAGE

    @pytest.fixture(scope='class')
    @classmethod
    def query_profile(cls, tmp_path_factory: pytest.TempPathFactory) -> Profile:
        """The profile of the storage the graph is stored in."""
        return plainfolder_profile(tmp_path_factory.mktemp('query-profile'))

    def test_files_are_in_the_plain_folder(self, query_storage: EntityStorage) -> None:
        """The graph's file contents are plain files of the example backend, named by their sha256."""
        repository = query_storage.get_repository()
        assert type(repository).name == 'example.plainfolder'
        keys = set(repository.list_objects())
        assert len(keys) == 2
        assert all(len(key) == 64 for key in keys)
