"""What ``psql_dos`` and ``sqlite_dos`` do inside, beyond the entity-storage contract they pass.

The behaviour any :class:`provstore.storage.EntityStorage` shows is checked by
:class:`provstore.testing.EntityStorageContract` (``test_contracts.py``). The tests here need the plugin's own
internals: the statements sent to the database, its query plans, its connections and SQLite's write lock. Every
test runs on SQLite and on PostgreSQL (the ``storage`` fixture) unless it is about SQLite alone.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from provstore.config import Profile
from provstore.exceptions import StorageError
from provstore.storage import EntityStorage, EntityType
from provstore_psql_dos.base import DosStorageBackend
from provstore_psql_dos.dialects import dialect_of
from provstore_psql_dos.entities import INSERT_DEFAULTS, ROWS_PER_STATEMENT, TABLES
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend

E = EntityType
UTC = datetime.timezone.utc

# -- fixtures and helpers -------------------------------------------------------------------------------------------


@pytest.fixture(params=('sqlite', 'postgresql'))
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


def _open(profile: Profile) -> Iterator[DosStorageBackend]:
    backend_class = PsqlDosStorageBackend if profile.storage_backend == 'psql_dos' else SqliteDosStorageBackend
    backend_class.initialise(profile)
    storage = backend_class(profile)
    yield storage
    storage.close()
    backend_class.erase(profile)


@pytest.fixture
def storage(profile: Profile) -> Iterator[DosStorageBackend]:
    """The profile's storage, initialised and open; closed and erased after the test."""
    yield from _open(profile)


@pytest.fixture
def sqlite_storage(make_profile: Callable[..., Profile]) -> Iterator[DosStorageBackend]:
    """A ``sqlite_dos`` storage, initialised and open; closed and erased after the test."""
    yield from _open(make_profile(SqliteDosStorageBackend))


@pytest.fixture
def user(storage: DosStorageBackend) -> int:
    """The id of a user of ``storage``."""
    return storage.insert_rows(E.USER, [{'email': 'user@example.org'}])[0]


@pytest.fixture
def statements(storage: DosStorageBackend) -> Iterator[list[tuple[Any, str, Any]]]:
    """The statements ``storage`` sends from now on: (DBAPI connection, SQL, parameters) each."""
    sent: list[tuple[Any, str, Any]] = []

    def record(connection: Any, *arguments: Any) -> None:
        _, statement, parameters = arguments[:3]
        sent.append((connection.connection.dbapi_connection, statement, parameters))

    event.listen(storage.engine, 'before_cursor_execute', record)
    yield sent
    event.remove(storage.engine, 'before_cursor_execute', record)


def nodes(storage: DosStorageBackend, user: int, count: int, **columns: Any) -> list[int]:
    """Insert ``count`` nodes of ``user`` with the given columns; return their ids."""
    return storage.insert_rows(E.NODE, [{'user_id': user, **columns} for _ in range(count)])


def link(storage: DosStorageBackend, edges: list[tuple[int, int, str]]) -> None:
    """Insert links ``(input, output, type)``, labelled ``link``."""
    storage.insert_rows(E.LINK, [{'input_id': i, 'output_id': o, 'type': t, 'label': 'link'} for i, o, t in edges])


def node_row(storage: DosStorageBackend, node_id: int) -> dict[str, Any]:
    """Return the row of one node."""
    [row] = storage.get_rows(E.NODE, 'id', [node_id])
    return row


# -- the tests that need the plugin's internals -------------------------------------------------------------------


def test_both_backends_are_entity_storage(storage: DosStorageBackend) -> None:
    """Both backends implement every method of EntityStorage: nothing is left abstract."""
    assert isinstance(storage, EntityStorage)
    assert not PsqlDosStorageBackend.__abstractmethods__
    assert not SqliteDosStorageBackend.__abstractmethods__
    assert storage.get_repository() is storage.get_repository()
    assert sorted(TABLES.values()) == sorted(INSERT_DEFAULTS)


def test_old_sqlite_is_refused(sqlite_storage: DosStorageBackend) -> None:
    """An SQLite library older than 3.35 (no RETURNING) is refused with a message naming both versions."""
    dialect = sqlite_storage.engine.dialect
    old = types.SimpleNamespace(name='sqlite', dbapi=types.SimpleNamespace(sqlite_version_info=(3, 31, 1)))
    with pytest.raises(StorageError, match=r'sqlite_dos needs SQLite 3\.35\.0 or newer .* Python uses SQLite 3\.31\.1'):
        dialect_of(old)
    assert dialect_of(dialect).name == 'sqlite'


def test_insert_takes_one_statement_per_batch(
    storage: DosStorageBackend, statements: list[tuple[Any, str, Any]], dialect: str
) -> None:
    """25,000 rows take one INSERT per 10,000 (on SQLite: per as many as its limit of bind parameters allows)."""
    count = 25_000
    ids = storage.insert_rows(E.USER, [{'email': f'{index}@x'} for index in range(count)])
    assert len(ids) == len(set(ids)) == count
    inserts = [sql for _, sql, _ in statements if sql.lstrip().upper().startswith('INSERT')]
    if dialect == 'postgresql':
        per_statement = ROWS_PER_STATEMENT
    else:
        per_statement = min(ROWS_PER_STATEMENT, storage.engine.dialect.insertmanyvalues_max_parameters // 4)
    assert len(inserts) == math.ceil(count / per_statement)
    assert storage.count_rows(E.USER) == count


def test_lists_are_one_parameter(storage: DosStorageBackend, user: int, statements: list[tuple[Any, str, Any]]) -> None:
    """100,000 values (SQLite allows 32,766 parameters) go to the database as one parameter, in one statement."""
    ids = nodes(storage, user, 50)
    statements.clear()
    values = list(range(1, 100_001))
    assert sorted(row['id'] for row in storage.get_rows(E.NODE, 'id', values)) == ids
    uuids = [str(uuid.uuid4()) for _ in range(100_000)]
    assert storage.get_rows(E.NODE, 'uuid', uuids) == []
    assert storage.get_links(values, 'incoming') == []
    storage.delete_rows(E.COMMENT, values)
    queries = [(sql, parameters) for _, sql, parameters in statements if 'db_db' in sql]
    assert len(queries) == 4
    assert all(len(parameters) == 1 for _, parameters in queries)


def test_iter_rows_by_ascending_id_in_batches(
    storage: DosStorageBackend, user: int, statements: list[tuple[Any, str, Any]]
) -> None:
    """iter_rows yields every row by ascending id, one query per batch; each batch outside a block on its own."""
    ids = nodes(storage, user, 25)
    storage.delete_rows(E.NODE, ids[3:5])
    statements.clear()
    rows = list(storage.iter_rows(E.NODE, batch_size=4))
    assert [row['id'] for row in rows] == ids[:3] + ids[5:]
    assert all(row['user_id'] == user for row in rows)
    assert len([sql for _, sql, _ in statements if 'FROM db_dbnode' in sql]) == math.ceil(23 / 4)
    assert list(storage.iter_rows(E.COMMENT)) == []
    with pytest.raises(StorageError, match=r'The batch size must be a positive integer, got 0'):
        storage.iter_rows(E.NODE, batch_size=0)


def test_find_rows_is_answered_by_an_index(
    storage: DosStorageBackend, user: int, statements: list[tuple[Any, str, Any]]
) -> None:
    """The database plans each prefix query on an index of the column (uuid: a range on the unique index)."""
    nodes(storage, user, 20, node_type='data.core.int.Int.')
    statements.clear()
    storage.find_rows(E.NODE, 'uuid', 'abcd', limit=5)
    storage.find_rows(E.NODE, 'node_type', 'data.a_b%', limit=5)
    storage.find_rows(E.NODE, 'label', 'relax')
    queries = [(sql, parameters) for _, sql, parameters in statements if 'db_dbnode' in sql]
    assert len(queries) == 3
    with storage.connection() as connection:
        if storage.name == 'psql_dos':
            connection.exec_driver_sql('SET LOCAL enable_seqscan = off')
            plans = [
                '\n'.join(row[0] for row in connection.exec_driver_sql(f'EXPLAIN {sql}', parameters))
                for sql, parameters in queries
            ]
            expected = ['Index Cond: ((uuid >= ', 'ix_pat_db_dbnode_node_type', 'ix_pat_db_dbnode_label']
        else:
            plans = [
                str(connection.exec_driver_sql(f'EXPLAIN QUERY PLAN {sql}', parameters).fetchall())
                for sql, parameters in queries
            ]
            expected = ['(uuid>? AND uuid<?)', '(node_type>? AND node_type<?)', '(label>? AND label<?)']
    for plan, wanted in zip(plans, expected, strict=True):
        assert wanted in plan, plan


def test_block_holds_one_connection_for_its_thread(
    storage: DosStorageBackend, statements: list[tuple[Any, str, Any]]
) -> None:
    """Inside a block every method of this thread runs on one connection; other threads neither see nor join it."""
    seen_from_other: list[Any] = []

    def other() -> None:
        seen_from_other.append((storage.in_transaction, storage.get_rows(E.USER, 'email', ['inside@x'])))

    with storage.transaction():
        [user] = storage.insert_rows(E.USER, [{'email': 'inside@x'}])
        assert storage.get_rows(E.USER, 'id', [user])[0]['email'] == 'inside@x'
        nodes(storage, user, 2)
        storage.count_rows(E.NODE)
        list(storage.iter_rows(E.NODE, batch_size=1))
        inside = {id(connection) for connection, _, _ in statements}
        count = len(statements)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        from_other = {id(connection) for connection, _, _ in statements[count:]}
    assert seen_from_other == [(False, [])]
    assert count > 5
    assert len(inside) == 1
    assert from_other
    assert not from_other & inside
    other()
    assert seen_from_other[1][1][0]['id'] == user


def test_connection_block_shares_the_open_block(storage: DosStorageBackend) -> None:
    """connection() inside a transaction gives the same connection; a write inside a read-only block is refused."""
    with storage.transaction():
        [user] = storage.insert_rows(E.USER, [{'email': 'x@x'}])
        with storage.connection() as connection:
            assert connection.exec_driver_sql('SELECT email FROM db_dbuser').scalar_one() == 'x@x'
    with storage.connection():
        assert storage.get_rows(E.USER, 'id', [user])
        with pytest.raises(StorageError, match=r'Cannot write to the storage .* inside a transaction block that was'):
            storage.insert_rows(E.USER, [{'email': 'y@x'}])
        with pytest.raises(StorageError, match=r'opened to read only'), storage.transaction():
            pass
    assert storage.count_rows(E.USER) == 1


def test_snapshot_reads_one_state_while_others_write(storage: DosStorageBackend, user: int) -> None:
    """Inside snapshot() every read sees the rows as they were at its first read, while another thread writes
    without waiting; writes inside are refused; after the block the new rows are seen."""

    written: list[int] = []

    def write_elsewhere() -> None:
        written.extend(nodes(storage, user, 2))

    first = nodes(storage, user, 1)
    with storage.snapshot():
        assert storage.count_rows(E.NODE) == 1
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        thread.join()
        assert storage.count_rows(E.NODE) == 1
        assert len(list(storage.iter_rows(E.NODE, batch_size=1))) == 1
        assert storage.traverse([*first, *written], [], []) == set(first)
        with pytest.raises(StorageError, match=r'inside a transaction block that was opened to read only'):
            nodes(storage, user, 1)
    assert storage.count_rows(E.NODE) == 3
    with storage.transaction(), storage.snapshot():  # NOTE: inside a block, the block itself
        nodes(storage, user, 1)
        assert storage.count_rows(E.NODE) == 4


def test_sqlite_block_takes_the_write_lock_first(sqlite_storage: DosStorageBackend) -> None:
    """On SQLite a block is a write transaction from its start: another thread's write waits until it commits."""
    events: list[str] = []
    started = threading.Event()

    def writer() -> None:
        started.wait()
        sqlite_storage.insert_rows(E.USER, [{'email': 'other@x'}])
        events.append('other wrote')

    thread = threading.Thread(target=writer)
    thread.start()
    with sqlite_storage.transaction():
        assert sqlite_storage.count_rows(E.USER) == 0
        started.set()
        time.sleep(0.3)
        events.append('block ends')
        sqlite_storage.insert_rows(E.USER, [{'email': 'block@x'}])
    thread.join()
    assert events == ['block ends', 'other wrote']
    assert sqlite_storage.count_rows(E.USER) == 2


def test_group_membership_is_set_based(
    storage: DosStorageBackend, user: int, statements: list[tuple[Any, str, Any]]
) -> None:
    """Nodes are added in one INSERT that skips members and repeats, and removed in one DELETE."""
    ids = nodes(storage, user, 6)
    [group, other] = storage.insert_rows(E.GROUP, [{'label': 'g', 'user_id': user}, {'label': 'h', 'user_id': user}])
    storage.add_group_nodes(group, ids[:3])
    statements.clear()
    storage.add_group_nodes(group, ids + ids[:2])
    assert len([sql for _, sql, _ in statements if sql.lstrip().startswith('INSERT')]) == 1
    storage.add_group_nodes(other, ids[:1])
    members = storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [group])
    assert sorted(row['dbnode_id'] for row in members) == ids
    statements.clear()
    storage.remove_group_nodes(group, [*ids[:4], 10**6])
    assert len([sql for _, sql, _ in statements if sql.lstrip().startswith('DELETE')]) == 1
    assert sorted(row['dbnode_id'] for row in storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [group])) == ids[4:]
    assert len(storage.get_rows(E.GROUP_NODE, 'dbgroup_id', [other])) == 1
    storage.add_group_nodes(group, [])
    storage.remove_group_nodes(group, [])


@pytest.mark.parametrize(
    ('call', 'message'),
    [
        (lambda storage: storage.get_rows(E.NODE, 'colour', [1]), r"Table db_dbnode \(node\) has no column 'colour'"),
        (lambda storage: storage.insert_rows(E.USER, [{}]), r'Row 0 to insert into db_dbuser has no value for column'),
        (lambda storage: storage.find_rows(E.NODE, 'uuid', 'abcg'), r'A uuid prefix of db_dbnode\.uuid must be'),
    ],
    ids=['get_rows', 'insert_rows', 'find_rows'],
)
def test_messages_name_the_aiida_table(
    storage: DosStorageBackend, call: Callable[[DosStorageBackend], Any], message: str
) -> None:
    """The contract leaves the table in a message to the backend: these name aiida-core's table."""
    with pytest.raises(StorageError, match=message):
        call(storage)
