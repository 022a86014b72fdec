"""Both backends of ``psql_dos`` run the entity-storage and query contracts of ``provstore.testing``, as a third
party would: the contract classes, the backend classes and a profile fixture, nothing else.

The lifecycle contract (``StorageBackendContract``) runs in ``test_psql_dos_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from postgres_test_server import drop_database, new_database_name

from provstore.config import Profile
from provstore.storage import EntityStorage
from provstore.testing import (
    EntityStorageContract,
    QueryConformanceContract,
    ReadOnlyQueryConformanceContract,
    new_profile,
    opened_storage,
)
from provstore.testing.query_graph import build_query_graph
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend

# -- entity storage ---------------------------------------------------------------------------------------------


class TestSqliteDosEntities(EntityStorageContract):
    """``sqlite_dos`` with its default options."""

    backend_class = SqliteDosStorageBackend


class TestPsqlDosEntities(EntityStorageContract):
    """``psql_dos`` on a database of each test's own."""

    backend_class = PsqlDosStorageBackend

    @pytest.fixture
    def profile(self, tmp_path: Path, psql_options: dict[str, Any]) -> Profile:
        """A profile on a fresh database name (dropped after the test)."""
        return new_profile(self.backend_class, tmp_path / 'profile', **psql_options)


# -- queries ----------------------------------------------------------------------------------------------------


class _OnTestServer:
    """A ``psql_dos`` query profile on a database of the class's own, dropped at the end."""

    backend_class: ClassVar[type[PsqlDosStorageBackend]] = PsqlDosStorageBackend

    @pytest.fixture(scope='class')
    @classmethod
    def query_profile(
        cls, tmp_path_factory: pytest.TempPathFactory, postgres_server: dict[str, Any]
    ) -> Iterator[Profile]:
        """A profile on a fresh database of the test server."""
        database = new_database_name()
        yield new_profile(
            cls.backend_class, tmp_path_factory.mktemp('query-profile'), database_name=database, **postgres_server
        )
        drop_database(database)


class TestSqliteDosQueries(QueryConformanceContract):
    """``sqlite_dos``: every case."""

    backend_class = SqliteDosStorageBackend


class TestSqliteDosQueriesIndexed(QueryConformanceContract):
    """``sqlite_dos`` with every filtered JSON path declared indexed."""

    backend_class = SqliteDosStorageBackend
    index_json_paths = True


class TestPsqlDosQueries(_OnTestServer, QueryConformanceContract):
    """``psql_dos``: every case."""


class TestPsqlDosQueriesIndexed(_OnTestServer, QueryConformanceContract):
    """``psql_dos`` with every filtered JSON path declared indexed."""

    index_json_paths = True


class ReadOnlySqliteDos(SqliteDosStorageBackend):
    """``sqlite_dos`` opened read-only: what a backend over an archive looks like to the contract."""

    name = 'test.sqlite_dos_read_only'
    read_only = True


class TestReadOnlySqliteDosQueries(ReadOnlyQueryConformanceContract):
    """The reading cases on a graph stored by ``sqlite_dos`` and opened by a read-only backend."""

    backend_class = ReadOnlySqliteDos

    @pytest.fixture(scope='class')
    @classmethod
    def query_storage(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntityStorage]:
        """Store the graph with ``sqlite_dos``, then open the same files read-only."""
        profile = new_profile(SqliteDosStorageBackend, tmp_path_factory.mktemp('read-only-query-profile'))
        with opened_storage(SqliteDosStorageBackend, profile, initialise=True) as writable:
            assert isinstance(writable, EntityStorage)
            build_query_graph(writable)
        try:
            with opened_storage(ReadOnlySqliteDos, profile) as storage:
                assert isinstance(storage, EntityStorage)
                yield storage
        finally:
            SqliteDosStorageBackend.erase(profile)
