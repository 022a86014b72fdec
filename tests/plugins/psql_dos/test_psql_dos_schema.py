"""The schema of both backends is aiida-core's, table by table; migrations build it from an empty database.

Each database is made by the backend's own ``initialise`` (alembic from empty) and reflected with SQLAlchemy's
inspector; the result is compared whole, so a missing or extra table, column, constraint or index fails.
"""

from __future__ import annotations

import datetime
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiida_schema
import pytest
from postgres_test_server import PG_HOST, PG_PORT, PG_USER, create_database, database_exists, drop_database
from sqlalchemy import Engine, delete, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from provstore.config import Profile
from provstore.exceptions import IncompatibleStorageError, StorageError
from provstore_psql_dos import migrator
from provstore_psql_dos.base import SCHEMA_VERSION_HEAD, DosStorageBackend, transaction
from provstore_psql_dos.engine import create_postgresql_engine, create_sqlite_engine
from provstore_psql_dos.models import OWN_TABLES, Base, DbLink, DbNode, DbUser
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend

DIALECTS = ('sqlite', 'postgresql')


def reflect(engine: Engine) -> dict[str, dict[str, Any]]:
    """Return every table of the database: columns in order, primary key, unique constraints, foreign keys, indexes.

    Columns are ``(type, nullable, default)`` with the type as the dialect writes it. Foreign keys are
    ``(columns, referred table, referred columns, ON DELETE, deferrable, initially)``. Indexes are
    ``(columns, unique, operator class)``, leaving out those that only back a unique constraint.
    """
    inspector = inspect(engine)
    result: dict[str, dict[str, Any]] = {}
    for table in inspector.get_table_names():
        primary_key = inspector.get_pk_constraint(table)
        indexes = {}
        for index in inspector.get_indexes(table):
            if index.get('duplicates_constraint'):
                continue
            operators = set(index.get('dialect_options', {}).get('postgresql_ops', {}).values())
            assert len(operators) <= 1, index
            columns = tuple(name for name in index['column_names'] if name is not None)
            indexes[index['name']] = (columns, bool(index['unique']), operators.pop() if operators else None)
        result[table] = {
            'columns': {
                column['name']: (column['type'].compile(dialect=engine.dialect), column['nullable'], column['default'])
                for column in inspector.get_columns(table)
            },
            'primary_key': (primary_key['name'], tuple(primary_key['constrained_columns'])),
            'unique': {
                constraint['name']: tuple(constraint['column_names'])
                for constraint in inspector.get_unique_constraints(table)
            },
            'foreign_keys': {
                key['name']: (
                    tuple(key['constrained_columns']),
                    key['referred_table'],
                    tuple(key['referred_columns']),
                    (key['options'].get('ondelete') or '').upper() or None,
                    key['options'].get('deferrable'),
                    key['options'].get('initially'),
                )
                for key in inspector.get_foreign_keys(table)
            },
            'indexes': indexes,
        }
    return result


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    """Each dialect in turn; PostgreSQL needs the test server."""
    if request.param == 'postgresql':
        request.getfixturevalue('postgres_server')
    return str(request.param)


@pytest.fixture
def profile(dialect: str, make_profile: Callable[..., Profile], request: pytest.FixtureRequest) -> Profile:
    """A profile of the backend of ``dialect``, not initialised."""
    if dialect == 'postgresql':
        return make_profile(PsqlDosStorageBackend, **request.getfixturevalue('psql_options'))
    return make_profile(SqliteDosStorageBackend)


@pytest.fixture
def storage(profile: Profile) -> Iterator[DosStorageBackend]:
    """The profile's storage, initialised and open; closed and erased after the test."""
    backend_class = _backend_class(profile)
    backend_class.initialise(profile)
    storage = backend_class(profile)
    yield storage
    storage.close()
    backend_class.erase(profile)


@pytest.fixture
def empty_engine(dialect: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of ``dialect`` that no backend made; the database is removed afterwards."""
    if dialect == 'sqlite':
        engine = create_sqlite_engine(tmp_path / 'empty.sqlite', pooled=False)
        yield engine
        engine.dispose()
        return
    name = f'provstore_test_{uuid.uuid4().hex[:16]}'
    create_database(name)
    engine = create_postgresql_engine(
        hostname=PG_HOST, port=PG_PORT, username=PG_USER, password='', database=name, pooled=False
    )
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(name)


def _backend_class(profile: Profile) -> type[DosStorageBackend]:
    return PsqlDosStorageBackend if profile.storage_backend == 'psql_dos' else SqliteDosStorageBackend


# -- the schema is aiida-core's -------------------------------------------------------------------------------------


OWN_TABLE = {
    'columns': {'node_id': ('INTEGER', False, None), 'path': ('TEXT', False, None), 'key': ('TEXT', False, None)},
    'primary_key': ('provstore_node_file_pkey', ('node_id', 'path')),
    'unique': {},
    'foreign_keys': {
        'fk_provstore_node_file_node_id_db_dbnode': (
            ('node_id',),
            'db_dbnode',
            ('id',),
            'CASCADE',
            True,
            'DEFERRED',
        )
    },
    'indexes': {'ix_provstore_node_file_key': (('key',), False, None)},
}
"""provstore's own table of file references, the same on both dialects."""


def aiida_tables(reflected: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The reflected tables but provstore's own (the ``provstore_`` ones)."""
    return {table: description for table, description in reflected.items() if table not in OWN_TABLES}


def test_schema_is_aiida_schema(storage: DosStorageBackend, dialect: str) -> None:
    """Every table, column (type, nullability, default, order), key, constraint and index is aiida-core's, no more,
    beside provstore's own table of file references."""
    expected = aiida_schema.POSTGRESQL if dialect == 'postgresql' else aiida_schema.SQLITE
    everything = reflect(storage.engine)
    assert sorted(set(everything) - set(expected)) == sorted(OWN_TABLES) == ['provstore_node_file']
    assert everything['provstore_node_file'] == OWN_TABLE
    reflected = aiida_tables(everything)
    assert sorted(reflected) == sorted(expected)
    for table, description in expected.items():
        assert reflected[table] == description, table
        assert list(reflected[table]['columns']) == list(description['columns']), f'column order of {table}'


def test_postgresql_definitions_are_aiida_definitions(
    psql_options: dict[str, Any], make_profile: Callable[..., Profile]
) -> None:
    """On PostgreSQL, the server's own text of every index and foreign key is the one aiida-core's schema shows."""
    expected_indexes = {}
    expected_keys = {}
    for table, description in aiida_schema.POSTGRESQL.items():
        name, columns = description['primary_key']
        expected_indexes[name] = f'CREATE UNIQUE INDEX {name} ON public.{table} USING btree ({", ".join(columns)})'
        for name, columns in description['unique'].items():
            expected_indexes[name] = f'CREATE UNIQUE INDEX {name} ON public.{table} USING btree ({", ".join(columns)})'
        for name, (columns, _, operators) in description['indexes'].items():
            column = columns[0] + (f' {operators}' if operators else '')
            expected_indexes[name] = f'CREATE INDEX {name} ON public.{table} USING btree ({column})'
        for name, (columns, referred, _, ondelete, _, _) in description['foreign_keys'].items():
            action = f' ON DELETE {ondelete}' if ondelete else ''
            expected_keys[name] = (
                f'FOREIGN KEY ({columns[0]}) REFERENCES {referred}(id){action} DEFERRABLE INITIALLY DEFERRED'
            )
    profile = make_profile(PsqlDosStorageBackend, **psql_options)
    PsqlDosStorageBackend.initialise(profile)
    with PsqlDosStorageBackend.parameters(profile).connect() as connection:
        indexes = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename NOT LIKE 'provstore%'"
            )
        )
        keys = dict(
            connection.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid::regclass::text NOT LIKE 'provstore%'"
            )
        )
    assert indexes == expected_indexes
    assert keys == expected_keys
    PsqlDosStorageBackend.erase(profile)


def test_models_are_the_migrated_schema(storage: DosStorageBackend, empty_engine: Engine) -> None:
    """The models' metadata creates exactly the schema the migrations create (without alembic's table)."""
    Base.metadata.create_all(empty_engine)
    migrated = reflect(storage.engine)
    del migrated['alembic_version']
    assert reflect(empty_engine) == migrated


# -- migrations ---------------------------------------------------------------------------------------------------


def test_revisions_and_the_schema_version() -> None:
    """The migrations are aiida-core's schema (main_0001) then provstore's file references (main_0002, the head,
    whose id is the schema version both backends report)."""
    assert migrator.known_revisions() == {'main_0001', 'main_0002'}
    assert SCHEMA_VERSION_HEAD == 'main_0002'
    assert migrator.head_revision() == SCHEMA_VERSION_HEAD
    assert PsqlDosStorageBackend.version_head() == SqliteDosStorageBackend.version_head() == SCHEMA_VERSION_HEAD


def test_migrations_from_empty_and_back(empty_engine: Engine, dialect: str) -> None:
    """Upgrading an empty database reaches the head with every table; downgrading to base removes them all again."""
    with transaction(empty_engine, write=True) as connection:
        assert migrator.current_revision(connection) is None
        migrator.upgrade(connection)
    with transaction(empty_engine) as connection:
        assert migrator.current_revision(connection) == SCHEMA_VERSION_HEAD
    expected = aiida_schema.POSTGRESQL if dialect == 'postgresql' else aiida_schema.SQLITE
    assert reflect(empty_engine) == {**expected, 'provstore_node_file': OWN_TABLE}
    with transaction(empty_engine, write=True) as connection:
        migrator.downgrade(connection, 'base')
    with transaction(empty_engine) as connection:
        assert migrator.current_revision(connection) is None
    assert inspect(empty_engine).get_table_names() == ['alembic_version']


def test_file_references_filled_from_existing_nodes(empty_engine: Engine) -> None:
    """A database at main_0001 holding nodes with files (nested folders, a key two nodes share) and without: the
    migration to main_0002 gives exactly their (node, path, key) rows; going back to main_0001 drops the table."""
    with transaction(empty_engine, write=True) as connection:
        migrator.upgrade(connection, 'main_0001')
        user = connection.execute(insert(DbUser).values(email='a@b.c').returning(DbUser.id)).scalar_one()
        trees = [
            {'o': {'a.txt': {'k': 'k1'}, 'sub': {'o': {'deep': {'o': {'b.txt': {'k': 'k2'}}}, 'empty': {}}}}},
            {},
            {'o': {'same.txt': {'k': 'k1'}}},
        ]
        ids = [
            connection.execute(
                insert(DbNode).values(user_id=user, repository_metadata=tree).returning(DbNode.id)
            ).scalar_one()
            for tree in trees
        ]
    with transaction(empty_engine, write=True) as connection:
        migrator.upgrade(connection)
    with transaction(empty_engine) as connection:
        rows = set(connection.execute(text('SELECT node_id, path, key FROM provstore_node_file')).all())
    assert rows == {(ids[0], 'a.txt', 'k1'), (ids[0], 'sub/deep/b.txt', 'k2'), (ids[2], 'same.txt', 'k1')}
    with transaction(empty_engine, write=True) as connection:
        migrator.downgrade(connection, 'main_0001')
    assert 'provstore_node_file' not in inspect(empty_engine).get_table_names()


def test_failed_migration_leaves_no_trace(empty_engine: Engine) -> None:
    """A migration is one transaction: when the block around it fails, no table and no version remain."""
    with pytest.raises(RuntimeError, match='interrupted'), transaction(empty_engine, write=True) as connection:
        migrator.upgrade(connection)
        raise RuntimeError('interrupted')
    assert inspect(empty_engine).get_table_names() == []


def test_initialise_from_nothing(profile: Profile) -> None:
    """Before ``initialise`` there is no version; after it the head version, and a second call changes nothing."""
    backend_class = _backend_class(profile)
    assert backend_class.version_profile(profile) is None
    assert backend_class.initialise(profile) is True
    assert backend_class.version_profile(profile) == SCHEMA_VERSION_HEAD
    assert backend_class.initialise(profile) is False
    backend_class.erase(profile)


def test_unknown_version_is_refused(storage: DosStorageBackend, profile: Profile) -> None:
    """A storage at a version this code does not know (a newer provstore's) is neither migrated nor opened."""
    with storage.connection(write=True) as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'main_9999'"))
    backend_class = _backend_class(profile)
    assert backend_class.version_profile(profile) == 'main_9999'
    with pytest.raises(IncompatibleStorageError, match=r"'main_9999', which this code does not know"):
        backend_class.migrate(profile)
    with pytest.raises(IncompatibleStorageError, match='main_9999'):
        backend_class(profile)
    assert backend_class.version_profile(profile) == 'main_9999'


def test_initialise_refuses_foreign_tables(profile: Profile, dialect: str) -> None:
    """A database holding tables but no provstore schema is not initialised into, nor dropped by erase."""
    backend_class = _backend_class(profile)
    backend_class._create_database(profile)
    engine = backend_class._create_engine(profile, pooled=False)
    try:
        with transaction(engine, write=True) as connection:
            connection.execute(text('CREATE TABLE precious (id INTEGER PRIMARY KEY)'))
        with pytest.raises(StorageError, match=r'holds tables \(precious\) but no provstore schema'):
            backend_class.initialise(profile)
        assert backend_class.version_profile(profile) is None
        assert inspect(engine).get_table_names() == ['precious']
        assert not backend_class.make_repository(profile).is_initialised
        if dialect == 'postgresql':
            with pytest.raises(StorageError, match=r'holds 1 table.*refusing to drop it'):
                backend_class.erase(profile)
            assert database_exists(backend_class.parameters(profile).database)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


# -- types and constraints at work ----------------------------------------------------------------------------------


def test_values_round_trip(storage: DosStorageBackend, dialect: str) -> None:
    """uuids come back as dashed strings, times as aware UTC, JSON as JSON; SQLite stores 36 characters, naive UTC."""
    node_uuid = uuid.uuid4()
    local = datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    with storage.connection(write=True) as connection:
        user_id = connection.execute(insert(DbUser).values(email='a@b.c').returning(DbUser.id)).scalar_one()
        connection.execute(
            insert(DbNode).values(
                uuid=node_uuid, user_id=user_id, ctime=local, attributes={'a': [1, 2.5, 'x', None]}, extras=None
            )
        )
    with storage.connection() as connection:
        row = connection.execute(select(DbNode.uuid, DbNode.ctime, DbNode.mtime, DbNode.attributes)).one()
    assert row.uuid == str(node_uuid)
    assert row.ctime == local
    assert row.ctime.tzinfo == datetime.timezone.utc
    assert row.mtime.tzinfo == datetime.timezone.utc
    assert row.attributes == {'a': [1, 2.5, 'x', None]}
    if dialect == 'sqlite':
        path = SqliteDosStorageBackend.database_file(storage.profile)
        with sqlite3.connect(path) as raw:
            stored_uuid, stored_ctime = raw.execute('SELECT uuid, ctime FROM db_dbnode').fetchone()
        raw.close()
        assert stored_uuid == str(node_uuid)
        assert len(stored_uuid) == 36
        assert stored_ctime == '2024-01-02 01:04:05.000006'


def test_foreign_keys_are_enforced_at_commit(storage: DosStorageBackend) -> None:
    """A node of a user that does not exist is refused when the transaction commits (keys are deferred)."""
    with (
        pytest.raises(StorageError, match=r'was rolled back: .*(?i:foreign key)'),
        storage.connection(write=True) as connection,
    ):
        connection.execute(insert(DbNode).values(user_id=12345))
    with storage.connection() as connection:
        assert connection.execute(select(DbNode.id)).all() == []


def test_on_delete_actions(storage: DosStorageBackend) -> None:
    """Deleting an output node deletes its links; deleting a link's input node, or a user with nodes, is refused."""
    with storage.connection(write=True) as connection:
        user_id = connection.execute(insert(DbUser).values(email='a@b.c').returning(DbUser.id)).scalar_one()
        first, second, third = (
            connection.execute(insert(DbNode).values(user_id=user_id).returning(DbNode.id)).scalar_one()
            for _ in range(3)
        )
        connection.execute(insert(DbLink).values(input_id=first, output_id=second, label='x', type='create'))
        connection.execute(insert(DbLink).values(input_id=second, output_id=third, label='y', type='create'))
    with storage.connection(write=True) as connection:
        connection.execute(delete(DbNode).where(DbNode.id == third))
    with storage.connection() as connection:
        assert connection.execute(select(DbLink.label)).scalars().all() == ['x']
    with pytest.raises(StorageError, match=r'(?i:foreign key)'), storage.connection(write=True) as connection:
        connection.execute(delete(DbNode).where(DbNode.id == first))
    with pytest.raises(IntegrityError), storage.connection(write=True) as connection:
        connection.execute(delete(DbUser).where(DbUser.id == user_id))
    with storage.connection() as connection:
        assert sorted(connection.execute(select(DbNode.id)).scalars()) == [first, second]


def test_dropped_database_is_gone(postgres_server: Any, psql_options: dict[str, Any], make_profile: Any) -> None:
    """``erase`` of a ``psql_dos`` storage drops its database from the server."""
    profile = make_profile(PsqlDosStorageBackend, **psql_options)
    PsqlDosStorageBackend.initialise(profile)
    assert database_exists(psql_options['database_name'])
    PsqlDosStorageBackend.erase(profile)
    assert not database_exists(psql_options['database_name'])
