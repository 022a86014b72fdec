"""Fixtures for the ``psql_dos`` plugin's tests: a PostgreSQL server, databases of their own, profiles.

The PostgreSQL tests need a server at ``$PGHOST:$PGPORT`` (default ``127.0.0.1:5432``) that lets role ``$PGUSER``
(default ``postgres``) in without a password and create databases. When it cannot be reached they are skipped,
with a reason that says so in capitals in the summary; when the environment variable ``CI`` is ``true`` they fail
instead, so a CI run never passes without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_test_server import PG_HOST, PG_PORT, PG_USER, connect, drop_database

from provstore.config import Profile
from provstore.storage import StorageBackend


@pytest.fixture(scope='session')
def postgres_server() -> dict[str, Any]:
    """Return the ``psql_dos`` options reaching the test server; skip loudly, or fail when ``CI=true``, without one."""
    import psycopg

    try:
        connect().close()
    except psycopg.OperationalError as exc:
        reason = (
            f'POSTGRESQL UNREACHABLE at {PG_HOST}:{PG_PORT} as role {PG_USER!r}: the psql_dos tests DID NOT RUN '
            f'({str(exc).strip().splitlines()[0]})'
        )
        if os.environ.get('CI', '').lower() == 'true' or os.environ.get('PROVSTORE_REQUIRE_POSTGRES') == '1':
            pytest.fail(f'{reason}; CI=true (or PROVSTORE_REQUIRE_POSTGRES=1) makes this a failure', pytrace=False)
        pytest.skip(f'{reason}; set CI=true to make this a failure')
    return {'database_hostname': PG_HOST, 'database_port': PG_PORT, 'database_username': PG_USER}


@pytest.fixture
def database_name(postgres_server: dict[str, Any]) -> Iterator[str]:
    """Return a database name unique to this test; the database is dropped after the test if it exists."""
    name = f'provstore_test_{uuid.uuid4().hex[:16]}'
    yield name
    drop_database(name)


@pytest.fixture
def psql_options(postgres_server: dict[str, Any], database_name: str) -> dict[str, Any]:
    """Return ``psql_dos`` options naming the test server and a database of this test's own."""
    return {**postgres_server, 'database_name': database_name}


@pytest.fixture
def make_profile(tmp_path: Path) -> Callable[..., Profile]:
    """Return ``make_profile(backend_class, name='test', **options)``: a profile in a fresh folder, options checked."""

    def make(backend_class: type[StorageBackend], name: str = 'test', **options: Any) -> Profile:
        config = backend_class.validate_config(options, f'profile {name!r}')
        return Profile(name=name, storage_backend=backend_class.name, storage_config=config, folder=tmp_path / name)

    return make
