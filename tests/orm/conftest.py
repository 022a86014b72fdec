"""Fixtures of the ORM's tests: a storage to work in, on every backend.

``storage`` is parametrized over ``sqlite_dos`` and ``psql_dos``: each test runs once per backend, on a
real profile, made with the CLI's ``create_profile`` in the test's own configuration folder and loaded by the
manager, so that the storage is also the default one. ``psql_dos`` needs a PostgreSQL server at ``$PGHOST:$PGPORT``
(default ``127.0.0.1:5432``) that lets role ``$PGUSER`` (default ``postgres``) in without a password and create
databases (fixture ``postgres_server`` of ``tests/conftest.py``); without one its tests are skipped with a reason in
capitals, or fail when ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from orm_helpers import BACKENDS, configured_profile, open_storage

from provstore.storage import EntityStorage
from provstore.testing.archive_graph import Graph, store_graph


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[EntityStorage]:
    """Yield the empty storage of a new profile that is also the loaded default one."""
    with configured_profile(request, request.param) as name:
        yield open_storage(name)


@pytest.fixture(params=BACKENDS)
def profile_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the name of a new profile on each real backend, loaded by nobody (for tests running other processes)."""
    with configured_profile(request, request.param) as name:
        yield name


@pytest.fixture
def graph(storage: EntityStorage) -> Graph:
    """The graph of :func:`archive_helpers.store_graph` in ``storage``."""
    return store_graph(storage)
