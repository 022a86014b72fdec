"""Fixtures of the ORM's tests: a storage to work in, on every backend.

``storage`` is parametrized over ``sqlite_dos`` and ``psql_dos``: each test runs once per backend, on a
real profile, made with the CLI's ``create_profile`` in the test's own configuration folder and loaded by the
manager, so that the storage is also the default one. ``psql_dos`` needs a PostgreSQL server at ``$PGHOST:$PGPORT``
(default ``127.0.0.1:5432``) that lets role ``$PGUSER`` (default ``postgres``) in without a password and create
databases; without one its tests are skipped with a reason in capitals, or fail when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from orm_helpers import EMAIL, open_storage

from provstore.manager import get_manager
from provstore.storage import EntityStorage

PG_HOST = os.environ.get('PGHOST', '127.0.0.1')
PG_PORT = int(os.environ.get('PGPORT', '5432'))
PG_USER = os.environ.get('PGUSER', 'postgres')

BACKENDS = ['sqlite_dos', 'psql_dos']


def _pg_connect(database: str = 'postgres') -> Any:
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5, autocommit=True
    )


@pytest.fixture(scope='session')
def postgres_options() -> dict[str, Any]:
    """Return the ``psql_dos`` options reaching the test server; skip loudly, or fail when ``CI=true``, without one."""
    import psycopg

    try:
        _pg_connect().close()
    except psycopg.OperationalError as exc:
        reason = (
            f'POSTGRESQL UNREACHABLE at {PG_HOST}:{PG_PORT} as role {PG_USER!r}: the psql_dos ORM tests DID NOT RUN '
            f'({str(exc).strip().splitlines()[0]})'
        )
        if os.environ.get('CI', '').lower() == 'true' or os.environ.get('PROVSTORE_REQUIRE_POSTGRES') == '1':
            pytest.fail(f'{reason}; CI=true (or PROVSTORE_REQUIRE_POSTGRES=1) makes this a failure', pytrace=False)
        pytest.skip(f'{reason}; set CI=true to make this a failure')
    return {'database_hostname': PG_HOST, 'database_port': PG_PORT, 'database_username': PG_USER}


def _drop_database(name: str) -> None:
    from psycopg import sql

    with _pg_connect() as connection:
        connection.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(name)))


@contextlib.contextmanager
def make_profile(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """Create a profile on ``backend`` (dropping its PostgreSQL database afterwards) and yield its name."""
    from provstore.cli.profile import create_profile

    options: dict[str, Any] = {}
    database = None
    if backend == 'psql_dos':
        database = f'provstore_orm_{uuid.uuid4().hex[:16]}'
        options = {**request.getfixturevalue('postgres_options'), 'database_name': database}
    name = f'orm-{backend}'
    try:
        create_profile(name, backend, options, email=EMAIL, set_default=True)
        yield name
    finally:
        get_manager().unload_profile()
        if database is not None:
            _drop_database(database)


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[EntityStorage]:
    """Yield the empty storage of a new profile that is also the loaded default one."""
    with make_profile(request, request.param) as name:
        yield open_storage(name)


@pytest.fixture(params=BACKENDS)
def profile_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the name of a new profile on each real backend, loaded by nobody (for tests running other processes)."""
    with make_profile(request, request.param) as name:
        yield name
