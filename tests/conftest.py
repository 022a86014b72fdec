"""Settings and shared fixtures of the whole test suite.

Plugin failures raise (strict mode) unless a test turns it off, and every test gets its own configuration
folder, so nothing ever touches the user's real ``~/.provstore``.

The PostgreSQL fixtures need a server at ``$PGHOST:$PGPORT`` (default ``127.0.0.1:5432``) that lets role ``$PGUSER``
(default ``postgres``) in without a password and create databases. When it cannot be reached the tests using them
are skipped, with a reason that says so in capitals in the summary; when the environment variable ``CI`` is ``true``
(or ``PROVSTORE_REQUIRE_POSTGRES=1``) they fail instead, so a CI run never passes without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_test_server import PG_HOST, PG_PORT, PG_USER, connect, drop_database, new_database_name

from provstore.config import Profile
from provstore.manager import reset_manager
from provstore.storage import StorageBackend
from provstore.testing import new_profile

os.environ.setdefault('PROVSTORE_PLUGINS_STRICT', '1')

# The core-only tox env installs no plugin; its own checks live in tests/core_only and run only there. The checks
# against aiida-core live in tests/interop and run only in the aiida-interop env, which installs it: every other run
# leaves them out by name, whether aiida-core happens to be importable or not (so none is ever skipped in silence).
collect_ignore = [] if os.environ.get('PROVSTORE_CORE_ONLY') else ['core_only']
if not os.environ.get('PROVSTORE_AIIDA_INTEROP'):
    collect_ignore.append('interop')


@pytest.fixture(autouse=True)
def config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point $PROVSTORE_PATH at a fresh folder for each test, with no profile preselected."""
    folder = tmp_path_factory.mktemp('provstore-config')
    monkeypatch.setenv('PROVSTORE_PATH', str(folder))
    monkeypatch.delenv('PROVSTORE_PROFILE', raising=False)
    yield folder
    reset_manager()


@pytest.fixture(scope='session')
def postgres_server() -> dict[str, Any]:
    """Return the ``psql_dos`` options reaching the test server; skip loudly, or fail when ``CI=true``, without one."""
    import psycopg

    try:
        connect().close()
    except psycopg.OperationalError as exc:
        reason = (
            f'POSTGRESQL UNREACHABLE at {PG_HOST}:{PG_PORT} as role {PG_USER!r}: the PostgreSQL tests DID NOT RUN '
            f'({str(exc).strip().splitlines()[0]})'
        )
        if os.environ.get('CI', '').lower() == 'true' or os.environ.get('PROVSTORE_REQUIRE_POSTGRES') == '1':
            pytest.fail(f'{reason}; CI=true (or PROVSTORE_REQUIRE_POSTGRES=1) makes this a failure', pytrace=False)
        pytest.skip(f'{reason}; set CI=true to make this a failure')
    return {'database_hostname': PG_HOST, 'database_port': PG_PORT, 'database_username': PG_USER}


@pytest.fixture
def database_name(postgres_server: dict[str, Any]) -> Iterator[str]:
    """Return a database name unique to this test; the database is dropped after the test if it exists."""
    name = new_database_name()
    yield name
    drop_database(name)


@pytest.fixture
def psql_options(postgres_server: dict[str, Any], database_name: str) -> dict[str, Any]:
    """Return ``psql_dos`` options naming the test server and a database of this test's own."""
    return {**postgres_server, 'database_name': database_name}


@pytest.fixture
def make_profile(tmp_path: Path) -> Callable[..., Profile]:
    """Return ``make_profile(backend_class, name='test', **options)``: a profile in a fresh folder, options checked.

    The profile is in no configuration file and has no default user email (see :func:`provstore.testing.new_profile`).
    """

    def make(backend_class: type[StorageBackend], name: str = 'test', **options: Any) -> Profile:
        return new_profile(backend_class, tmp_path / name, name=name, default_user_email=None, **options)

    return make
