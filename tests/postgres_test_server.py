"""The test PostgreSQL server (``$PGHOST:$PGPORT``, role ``$PGUSER``), reached directly through psycopg."""

from __future__ import annotations

import os
import uuid
from typing import Any

PG_HOST = os.environ.get('PGHOST', '127.0.0.1')
PG_PORT = int(os.environ.get('PGPORT', '5432'))
PG_USER = os.environ.get('PGUSER', 'postgres')


def connect(database: str = 'postgres') -> Any:
    """Return an autocommit psycopg connection to ``database`` on the test server."""
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5, autocommit=True
    )


def create_database(name: str) -> None:
    """Create the empty database ``name`` on the test server."""
    from psycopg import sql

    with connect() as connection:
        connection.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    """Drop the database ``name`` on the test server, whoever is connected to it."""
    from psycopg import sql

    with connect() as connection:
        connection.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(name)))


def database_exists(name: str) -> bool:
    """Return whether the database ``name`` exists on the test server."""
    with connect() as connection:
        return connection.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone() is not None


def new_database_name() -> str:
    """Return a fresh name for a test database (whoever creates it drops it)."""
    return f'provstore_test_{uuid.uuid4().hex[:16]}'
