"""Both backends of the ``psql_dos`` plugin pass provstore's storage backend contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from provstore.config import Profile
from provstore.storage import StorageBackend
from provstore.testing import StorageBackendContract
from provstore_psql_dos.base import DosStorageBackend
from provstore_psql_dos.models import DbSetting
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend


class _SettingMarker:
    """The contract's data hooks: a ``db_dbsetting`` row written and read with SQL."""

    backend_class: type[DosStorageBackend]

    def write_data(self, profile: Profile) -> None:
        """Insert the setting ``contract`` in a write transaction of a storage opened for it."""
        storage = self.backend_class(profile)
        try:
            with storage.connection(write=True) as connection:
                connection.execute(
                    insert(DbSetting).values(key='contract', val='marker', description='by the contract')
                )
        finally:
            storage.close()

    def has_data(self, storage: StorageBackend) -> bool:
        """Return whether the setting ``contract`` is there."""
        assert isinstance(storage, DosStorageBackend)
        with storage.connection() as connection:
            value = connection.execute(select(DbSetting.val).where(DbSetting.key == 'contract')).scalar_one_or_none()
        return bool(value == 'marker')


class TestSqliteDosContract(_SettingMarker, StorageBackendContract):
    """``sqlite_dos`` with its default options: database and repository inside the profile's folder."""

    backend_class = SqliteDosStorageBackend


class TestSqliteDosElsewhereContract(_SettingMarker, StorageBackendContract):
    """``sqlite_dos`` with ``filepath`` outside the profile's folder and the repository in a third place."""

    backend_class = SqliteDosStorageBackend

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """A profile whose storage folder and repository are both outside its folder."""
        options: dict[str, Any] = {
            'filepath': str(tmp_path / 'elsewhere'),
            'repository_options': {'filepath': str(tmp_path / 'repository')},
        }
        return Profile(
            name='contract',
            storage_backend=self.backend_class.name,
            storage_config=self.backend_class.validate_config(options, "profile 'contract'"),
            folder=tmp_path / 'profile',
        )

    def storage_paths(self, profile: Profile) -> list[Path]:
        """The profile's folder, the storage folder and the repository folder."""
        return [*super().storage_paths(profile), Path(profile.storage_config['repository_options']['filepath'])]


class TestPsqlDosContract(_SettingMarker, StorageBackendContract):
    """``psql_dos`` on a database of each test's own on the test server; the repository in the profile's folder."""

    backend_class = PsqlDosStorageBackend

    @pytest.fixture
    def profile(self, tmp_path: Path, psql_options: dict[str, Any]) -> Profile:
        """A profile on a fresh database name (dropped after the test)."""
        return Profile(
            name='contract',
            storage_backend=self.backend_class.name,
            storage_config=self.backend_class.validate_config(psql_options, "profile 'contract'"),
            folder=tmp_path / 'profile',
        )
