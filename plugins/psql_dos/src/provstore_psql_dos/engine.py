"""SQLAlchemy engines for both backends: PostgreSQL through psycopg 3, and SQLite set up for concurrent use.

This module imports SQLAlchemy: import it only where a database is used.

SQLite is set up on every new connection (an event listener): write-ahead logging, so readers never block the
writer nor the writer the readers; a busy timeout, so a writer waits for another's lock instead of failing at
once; and foreign keys enforced. Transactions are started by provstore, not by the driver: a read transaction
with ``BEGIN`` and a write transaction (``execution_options(provstore_write=True)``) with ``BEGIN IMMEDIATE``,
which takes the write lock before anything is read. A deferred transaction that reads and then writes fails with
"database is locked", whatever the timeout, as soon as another writer committed in between: this is how aiida-core's
``sqlite_dos`` failed under several daemon workers, and what ``BEGIN IMMEDIATE`` prevents.
"""

from __future__ import annotations

import select
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from provstore_psql_dos.dialects.jsonsemantics import SQLITE_FUNCTIONS

__all__ = [
    'BUSY_TIMEOUT',
    'POOL_MAX_OVERFLOW',
    'POOL_SIZE',
    'WRITE_OPTION',
    'create_postgresql_engine',
    'create_sqlite_engine',
]

BUSY_TIMEOUT = 30.0
"""Seconds an SQLite connection waits for another connection's lock before failing."""

POOL_SIZE = 5
"""Connections a PostgreSQL engine keeps open."""

POOL_MAX_OVERFLOW = 5
"""Connections a PostgreSQL engine opens beyond :data:`POOL_SIZE` under load, and closes when returned."""

CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL server to accept a connection."""

WRITE_OPTION = 'provstore_write'
"""The execution option marking a connection whose next transaction writes (``BEGIN IMMEDIATE`` on SQLite)."""


def create_postgresql_engine(
    *, hostname: str, port: int, username: str, password: str, database: str, pooled: bool = True
) -> Engine:
    """Return an engine on a PostgreSQL database, through psycopg 3.

    :param pooled: keep a small pool of connections (:data:`POOL_SIZE` plus :data:`POOL_MAX_OVERFLOW`), each
        checked before use (:func:`_refuse_closed_connection`), so that a restarted server is reconnected to
        transparently; otherwise open a connection for each use.
    """
    url = URL.create(
        'postgresql+psycopg',
        username=username,
        password=password or None,
        host=hostname,
        port=port,
        database=database,
    )
    # NOTE: no JIT: the planner's cost of a recursive traversal is huge by nature, so PostgreSQL would JIT-compile
    # it, which took 208 of 382 ms when exporting the 20,000 nodes of 500 workflows; provstore's queries are short.
    connect_args = {'connect_timeout': CONNECT_TIMEOUT, 'application_name': 'provstore', 'options': '-c jit=off'}
    if pooled:
        engine = create_engine(url, connect_args=connect_args, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW)
        event.listen(engine, 'checkout', _refuse_closed_connection)
        return engine
    return create_engine(url, connect_args=connect_args, poolclass=NullPool)


def _refuse_closed_connection(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Refuse a pooled connection that the server has closed; the pool then replaces it with a new one.

    A server ending a connection (restarting, or ``pg_terminate_backend``) sends a last message and closes the
    socket, so the socket of the idle connection turns readable: a poll of it, without a round trip, does what a
    ``SELECT 1`` per checkout (SQLAlchemy's ``pool_pre_ping``) would, at a fraction of a millisecond less per
    transaction.

    :raises DisconnectionError: for a closed connection, or one with something to read while idle.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError('the connection is closed')
    if _readable(dbapi_connection.fileno()):
        raise DisconnectionError('the server sent something to an idle connection: it has closed it')


def _readable(descriptor: int) -> bool:
    """Return whether the socket ``descriptor`` has something to read, or is closed, without waiting."""
    if hasattr(select, 'poll'):
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([descriptor], [], [], 0)[0])  # pragma: no cover - Windows has no poll


def create_sqlite_engine(path: Path, pooled: bool = True, durable: bool = True, immutable: bool = False) -> Engine:
    """Return an engine on the SQLite database file at ``path`` (created on first connection).

    :param pooled: keep connections open for reuse; otherwise open one for each use.
    :param durable: sync the write-ahead log at every commit (``synchronous = FULL``), so a commit that returned
        survives a power loss; ``False`` syncs it only at checkpoints (``NORMAL``): the last commits before a power
        loss or an operating-system crash may be lost, the database stays consistent.
    :param immutable: open an existing file that nobody changes (an archive's database) read-only, without locks,
        journal or write-ahead log: SQLite refuses every write, and creates no file beside it.
    """
    if immutable:
        return _create_immutable_sqlite_engine(path, pooled)
    url = URL.create('sqlite+pysqlite', database=str(path))
    kwargs: dict[str, Any] = {} if pooled else {'poolclass': NullPool}
    engine = create_engine(url, connect_args={'timeout': BUSY_TIMEOUT}, **kwargs)
    synchronous = 'FULL' if durable else 'NORMAL'
    event.listen(engine, 'connect', lambda dbapi, record: _set_up_sqlite_connection(dbapi, record, synchronous))
    event.listen(engine, 'begin', _begin_sqlite_transaction)
    return engine


def _create_immutable_sqlite_engine(path: Path, pooled: bool) -> Engine:
    """Return an engine on the SQLite file at ``path``, read-only and immutable (see :func:`create_sqlite_engine`)."""
    import sqlite3  # noqa: PLC0415 - the driver, only when a database is used
    from urllib.parse import quote  # noqa: PLC0415

    from sqlalchemy.pool import QueuePool  # noqa: PLC0415

    uri = f'file:{quote(str(path))}?mode=ro&immutable=1'

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)

    engine = create_engine('sqlite+pysqlite://', creator=connect, poolclass=QueuePool if pooled else NullPool)
    event.listen(engine, 'connect', lambda dbapi, record: _set_up_sqlite_connection(dbapi, record, None))
    event.listen(engine, 'begin', _begin_sqlite_transaction)
    return engine


def _set_up_sqlite_connection(dbapi_connection: Any, connection_record: Any, synchronous: str | None = 'FULL') -> None:
    """Set the pragmas of a new SQLite connection and take transaction control away from the driver.

    :param synchronous: how commits are synced; ``None`` for a read-only file, which keeps no journal.
    """
    # NOTE: with isolation_level None the sqlite3 module never issues BEGIN itself; _begin_sqlite_transaction does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f'PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}')
        if synchronous is None:
            cursor.execute('PRAGMA query_only = ON')
        else:
            _set_up_journal(cursor, synchronous)
        cursor.execute('PRAGMA foreign_keys = ON')
    finally:
        cursor.close()
    for name, (arguments, function) in SQLITE_FUNCTIONS.items():
        dbapi_connection.create_function(name, arguments, function, deterministic=True)


def _set_up_journal(cursor: Any, synchronous: str) -> None:
    """Put a writable database in write-ahead-log mode with ``synchronous``."""
    cursor.execute('PRAGMA journal_mode = WAL')
    # NOTE: FULL (the default, as aiida-core) syncs the write-ahead log at every commit: a store that returned
    # survives a power loss. NORMAL (the profile option durability=relaxed) syncs it at checkpoints only: about
    # 1 ms less per commit, but the last commits before a power loss may be lost (never half-applied).
    cursor.execute(f'PRAGMA synchronous = {synchronous}')


def _begin_sqlite_transaction(connection: Connection) -> None:
    """Start a transaction: ``BEGIN IMMEDIATE`` if the connection is marked to write, else a deferred ``BEGIN``."""
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql('BEGIN IMMEDIATE' if write else 'BEGIN')
