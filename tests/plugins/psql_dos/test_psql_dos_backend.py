"""The ``psql_dos`` backend: its database on the server, connection pool, options and repository."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from postgres_test_server import connect, create_database, database_exists, drop_database
from sqlalchemy import select, text

from provstore.config import Profile
from provstore.exceptions import ConfigError, StorageError
from provstore.options import SECRET_MASK, mask_secrets
from provstore_psql_dos.base import REPOSITORY_UUID_KEY, SCHEMA_VERSION_HEAD
from provstore_psql_dos.engine import POOL_MAX_OVERFLOW, POOL_SIZE
from provstore_psql_dos.models import DbSetting
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend


@pytest.fixture
def profile(make_profile: Callable[..., Profile], psql_options: dict[str, Any]) -> Profile:
    """A ``psql_dos`` profile on a database of this test's own, not initialised."""
    return make_profile(PsqlDosStorageBackend, **psql_options)


@pytest.fixture
def storage(profile: Profile) -> Iterator[PsqlDosStorageBackend]:
    """The profile's storage, initialised and open; closed and erased afterwards."""
    PsqlDosStorageBackend.initialise(profile)
    storage = PsqlDosStorageBackend(profile)
    yield storage
    storage.close()
    PsqlDosStorageBackend.erase(profile)


def test_initialise_creates_the_database(profile: Profile, psql_options: dict[str, Any]) -> None:
    """``initialise`` creates the missing database (UTF-8) and the repository in ``<profile folder>/repository``."""
    name = psql_options['database_name']
    assert not database_exists(name)
    assert PsqlDosStorageBackend.initialise(profile) is True
    assert database_exists(name)
    with connect() as connection:
        encoding = connection.execute(
            'SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s', (name,)
        ).fetchone()
    assert encoding == ('UTF8',)
    assert (profile.folder / 'repository' / 'config.json').is_file()


def test_initialise_uses_an_existing_empty_database(profile: Profile, psql_options: dict[str, Any]) -> None:
    """A database created beforehand (by an administrator, say) and still empty is initialised in place."""
    create_database(psql_options['database_name'])
    assert PsqlDosStorageBackend.version_profile(profile) is None
    assert PsqlDosStorageBackend.initialise(profile) is True
    assert PsqlDosStorageBackend.version_profile(profile) == SCHEMA_VERSION_HEAD


def test_default_database_name(make_profile: Callable[..., Profile], postgres_server: dict[str, Any]) -> None:
    """Without ``database_name`` the database is ``provstore_<profile name>``; erase drops it."""
    name = f'p{uuid.uuid4().hex[:12]}'
    profile = make_profile(PsqlDosStorageBackend, name=name, **postgres_server)
    try:
        assert PsqlDosStorageBackend.parameters(profile).database == f'provstore_{name}'
        PsqlDosStorageBackend.initialise(profile)
        assert database_exists(f'provstore_{name}')
        PsqlDosStorageBackend.erase(profile)
        assert not database_exists(f'provstore_{name}')
    finally:
        drop_database(f'provstore_{name}')


def test_too_long_database_name(make_profile: Callable[..., Profile]) -> None:
    """A derived database name longer than PostgreSQL keeps (63 bytes) is a ConfigError asking for ``database_name``."""
    profile = make_profile(PsqlDosStorageBackend, name='x' * 60)
    with pytest.raises(ConfigError, match=r"longer than 63 bytes; give a shorter one with the option 'database_name'"):
        PsqlDosStorageBackend.version_profile(profile)


def test_unreachable_server(make_profile: Callable[..., Profile]) -> None:
    """A server that does not answer is a StorageError naming the host and port, not 'not initialised'."""
    profile = make_profile(PsqlDosStorageBackend, database_hostname='127.0.0.1', database_port=1)
    with pytest.raises(StorageError, match=r'Cannot reach the PostgreSQL server 127\.0\.0\.1:1 as role'):
        PsqlDosStorageBackend.version_profile(profile)
    with pytest.raises(StorageError, match=r'127\.0\.0\.1:1'):
        PsqlDosStorageBackend.initialise(profile)


def test_pool(storage: PsqlDosStorageBackend) -> None:
    """The pool keeps 5 connections and opens up to 5 more under load."""
    pool: Any = storage.engine.pool
    assert pool.size() == POOL_SIZE == 5
    connections = [storage.engine.connect() for _ in range(POOL_SIZE + POOL_MAX_OVERFLOW)]
    try:
        assert pool.overflow() == POOL_MAX_OVERFLOW == 5
        for connection in connections:
            assert connection.execute(text('SELECT 1')).scalar_one() == 1
    finally:
        for connection in connections:
            connection.close()


def test_connections_survive_a_server_restart(storage: PsqlDosStorageBackend, psql_options: dict[str, Any]) -> None:
    """Pooled connections killed by the server (as a restart does) are replaced transparently on next use.

    The kill waits until the server processes have ended (a restart has ended them all before the server accepts
    connections again): only then are the pooled connections closed.
    """
    with storage.connection() as connection:
        before = connection.execute(text('SELECT pg_backend_pid()')).scalar_one()
    with connect() as admin:
        killed = admin.execute(
            'SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity '
            'WHERE datname = %s AND pid <> pg_backend_pid()',
            (psql_options['database_name'],),
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    with storage.connection() as connection:
        after = connection.execute(text('SELECT pg_backend_pid()')).scalar_one()
        assert connection.execute(select(DbSetting.key)).scalars().all() == [REPOSITORY_UUID_KEY]
    assert after != before


def test_commits_are_durable(storage: PsqlDosStorageBackend) -> None:
    """Every connection keeps PostgreSQL's durable commit: ``synchronous_commit`` is on, for writes as for reads."""
    for write in (False, True):
        with storage.connection(write=write) as connection:
            assert connection.exec_driver_sql('SHOW synchronous_commit').scalar() == 'on'


def test_connections_are_named(storage: PsqlDosStorageBackend, psql_options: dict[str, Any]) -> None:
    """The server lists provstore's connections under the application name ``provstore``."""
    with storage.connection() as connection:
        name = connection.execute(text('SELECT current_setting(:name)'), {'name': 'application_name'}).scalar_one()
    assert name == 'provstore'


def test_repository_uuid_mismatch_is_refused(profile: Profile) -> None:
    """A database whose repository was replaced does not open; the message names both uuids."""
    PsqlDosStorageBackend.initialise(profile)
    repository = PsqlDosStorageBackend.make_repository(profile)
    old_uuid = repository.uuid
    repository.erase()
    repository.initialise()
    new_uuid = repository.uuid
    repository.close()
    with pytest.raises(StorageError, match=rf'do not belong together.*uuid {old_uuid}.*uuid {new_uuid}'):
        PsqlDosStorageBackend(profile)


def test_erase_refuses_while_in_use(storage: PsqlDosStorageBackend, profile: Profile) -> None:
    """Erasing a database another session uses is a StorageError naming the database; nothing is deleted."""
    with storage.transaction():
        with pytest.raises(StorageError, match=r'Cannot drop the PostgreSQL database .*being accessed by other users'):
            PsqlDosStorageBackend.erase(profile)
    assert PsqlDosStorageBackend.version_profile(profile) == SCHEMA_VERSION_HEAD


def test_password_is_secret(profile: Profile) -> None:
    """The password option is secret: listings mask it."""
    config = {**profile.storage_config, 'database_password': 'hunter2'}
    masked = mask_secrets(PsqlDosStorageBackend.options, config)
    assert masked['database_password'] == SECRET_MASK
    assert masked['database_name'] == profile.storage_config['database_name']
