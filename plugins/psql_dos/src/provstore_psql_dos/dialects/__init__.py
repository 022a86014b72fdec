"""One class per database, owning every difference between their SQL: :class:`~.base.Dialect` and its subclasses.

This package imports SQLAlchemy: a storage imports it when it opens.
"""

from __future__ import annotations

from typing import Any

from provstore.exceptions import StorageError
from provstore_psql_dos.dialects.base import Dialect
from provstore_psql_dos.dialects.postgresql import PostgresqlDialect
from provstore_psql_dos.dialects.sqlite import SqliteDialect

__all__ = ['Dialect', 'PostgresqlDialect', 'SqliteDialect', 'dialect_of']


def dialect_of(engine_dialect: Any) -> Dialect:
    """The dialect of an SQLAlchemy engine (``engine.dialect``), chosen once when a storage opens.

    :raises StorageError: for a database that is not one of these, or an SQLite too old for the statements.
    """
    if engine_dialect.name == PostgresqlDialect.name:
        return PostgresqlDialect()
    if engine_dialect.name == SqliteDialect.name:
        return SqliteDialect.of_engine(engine_dialect)
    raise StorageError(f'No SQL dialect for the {engine_dialect.name} database')  # pragma: no cover
