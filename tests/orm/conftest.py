"""Fixtures of the ORM's tests: a storage to work in, on every backend.

``storage`` is parametrized over ``sqlite_dos`` and ``psql_dos``: each test runs once per backend, on a
real profile, made with the CLI's ``create_profile`` in the test's own configuration folder and loaded by the
manager, so that the storage is also the default one. ``psql_dos`` needs a PostgreSQL server at ``$PGHOST:$PGPORT``
(default ``127.0.0.1:5432``) that lets role ``$PGUSER`` (default ``postgres``) in without a password and create
databases; without one its tests are skipped with a reason in capitals, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from orm_helpers import BACKENDS, make_profile, open_storage
from postgres_test_server import PG_HOST, PG_PORT, PG_USER, connect

from provstore.storage import EntityStorage


@pytest.fixture(scope='session')
def postgres_options() -> dict[str, Any]:
    """Return the ``psql_dos`` options reaching the test server; skip loudly, or fail when ``CI=true``, without one."""
    import psycopg

    try:
        connect().close()
    except psycopg.OperationalError as exc:
        reason = (
            f'POSTGRESQL UNREACHABLE at {PG_HOST}:{PG_PORT} as role {PG_USER!r}: the psql_dos ORM tests DID NOT RUN '
            f'({str(exc).strip().splitlines()[0]})'
        )
        if os.environ.get('CI', '').lower() == 'true' or os.environ.get('PROVSTORE_REQUIRE_POSTGRES') == '1':
            pytest.fail(f'{reason}; CI=true (or PROVSTORE_REQUIRE_POSTGRES=1) makes this a failure', pytrace=False)
        pytest.skip(f'{reason}; set CI=true to make this a failure')
    return {'database_hostname': PG_HOST, 'database_port': PG_PORT, 'database_username': PG_USER}


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
