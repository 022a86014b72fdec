"""Declared JSON indexes of an open storage: building them without blocking writers, recording them in the database,
and telling the query compiler which paths have one.

What each database builds is its dialect's (:meth:`~provstore_psql_dos.dialects.base.Dialect.index_statements`); the
paths are recorded in ``db_dbsetting``, once all is built, so that every process knows them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, insert, select

from provstore.exceptions import QueryError
from provstore.storage import EntityType
from provstore.storage.query import FIELDS
from provstore_psql_dos.jsonindex import NODE_TABLE, NumberTable, index_name
from provstore_psql_dos.models import DbSetting
from provstore_psql_dos.tables import TABLES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from provstore_psql_dos.dialects.base import Dialect

__all__ = ['JSON_INDEXES_KEY', 'DeclaredIndexes', 'JsonIndexes']

JSON_INDEXES_KEY = 'provstore|json_indexes'
"""The ``db_dbsetting`` row listing the JSON paths with an index: ``[[entity, field, [keys...]], ...]``."""

DeclaredIndexes = tuple[frozenset[tuple[str, str, tuple[str, ...]]], frozenset[NumberTable]]
"""The declared JSON paths, as ``(table, field, keys)``, and the number tables there are for them."""


class _Storage(Protocol):
    """What the JSON indexes ask of the storage they belong to: its checks and its transaction blocks."""

    def check_writable(self) -> None: ...

    def connection(self, write: bool = False) -> contextlib.AbstractContextManager[Connection]: ...


class JsonIndexes:
    """The declared JSON indexes of one open storage."""

    FILL_BATCH = 50_000
    """Node ids per transaction when a number table is filled."""

    def __init__(self, storage: _Storage, engine: Engine, dialect: Dialect, changed: Callable[[], None]) -> None:
        """:param changed: called whenever the declared indexes may have changed (statements made before are stale)."""
        self._storage = storage
        self._engine = engine
        self._dialect = dialect
        self._changed = changed

    def add(self, entity: EntityType, field: str, path: Sequence[str]) -> str:
        """Make the index serving filters on a JSON path (nothing happens if it is there) and return its name.

        :raises QueryError: for an entity without that JSON field, or a key that cannot be queried.
        """
        table, field, path = _json_path(entity, field, path)
        self._storage.check_writable()
        name = index_name(table, field, path)
        item = [EntityType(entity).value, field, list(path)]
        with self._storage.connection() as connection:
            declared = item in _recorded_json_indexes(connection)
        numbers = self._dialect.number_table(table, field, path)
        names = [name, numbers.name] if numbers is not None else [name]
        kinds = self.relation_kinds(names)
        rebuild = numbers is not None and not (declared and kinds.get(numbers.name) == 'table')
        statements = self._dialect.index_statements(table, field, path, numbers=rebuild)
        if kinds.get(name) not in (None, 'hash'):
            self._run_alone([f'DROP INDEX CONCURRENTLY IF EXISTS {name}'])  # the btree of an earlier provstore
        self._run_alone(statements.before)
        try:
            with self._storage.connection(write=True) as connection:
                for statement in statements.transaction:
                    connection.exec_driver_sql(statement)
                if statements.fill is not None:
                    # NOTE: forgotten until the number table is full, so that no process reads it half filled.
                    _forget_json_index(connection, item)
            if statements.fill is not None:
                self._fill(statements.fill)
            with self._storage.connection(write=True) as connection:
                recorded = _recorded_json_indexes(connection)
                if item not in recorded:
                    _record_json_indexes(connection, [*recorded, item])
        except BaseException:
            if rebuild and numbers is not None:
                with self._storage.connection(write=True) as connection:
                    for statement in numbers.drop_statements():
                        connection.exec_driver_sql(statement)
            raise
        finally:
            self._changed()
        self._run_alone(statements.after)
        return name

    def _fill(self, statement: str) -> None:
        """Run a number table's fill statement over every node id, :attr:`FILL_BATCH` ids at a time."""
        with self._storage.connection() as connection:
            low, high = connection.exec_driver_sql(f'SELECT min(id), max(id) FROM {NODE_TABLE}').one()
        if low is None:
            return
        for after in range(low - 1, high, self.FILL_BATCH):
            with self._storage.connection(write=True) as connection:
                connection.exec_driver_sql(statement, {'after': after, 'upto': after + self.FILL_BATCH})

    def relation_kinds(self, names: Sequence[str]) -> dict[str, str]:
        """Of the relations ``names`` that exist, ``table`` for a table and the access method for an index (where
        the database tells)."""
        with self._storage.connection() as connection:
            return self._dialect.relation_kinds(connection, names)

    def _run_alone(self, statements: Sequence[str]) -> None:
        """Run ``statements`` each by itself, outside any transaction (PostgreSQL's VACUUM and CONCURRENTLY)."""
        if statements:
            with self._engine.connect() as plain:
                autocommit = plain.execution_options(isolation_level='AUTOCOMMIT')
                for statement in statements:
                    autocommit.exec_driver_sql(statement)

    def paths(self) -> list[tuple[EntityType, str, tuple[str, ...]]]:
        """Return the JSON paths that have an index, as ``(entity, field, path)``."""
        with self._storage.connection() as connection:
            recorded = _recorded_json_indexes(connection)
        return [(EntityType(entity), field, tuple(path)) for entity, field, path in recorded]

    def drop(self, entity: EntityType, field: str, path: Sequence[str]) -> None:
        """Drop the index of a JSON path and forget it (nothing happens if there is none)."""
        table, field, path = _json_path(entity, field, path)
        with self._storage.connection(write=True) as connection:
            for statement in self._dialect.drop_index_statements(table, field, path):
                connection.exec_driver_sql(statement)
            _forget_json_index(connection, [EntityType(entity).value, field, list(path)])
        self._changed()

    def declared(self) -> DeclaredIndexes:
        """The declared JSON paths, as ``(table, field, keys)``, and the number tables there are for them.

        A path declared by an earlier provstore has no number table until it is declared again (:meth:`add`):
        queries on it are answered without one.
        """
        declared = frozenset((TABLES[entity], field, path) for entity, field, path in self.paths())
        wanted = [table for table in (self._dialect.number_table(*path) for path in declared) if table]
        if not wanted:
            return declared, frozenset()
        kinds = self.relation_kinds([table.name for table in wanted])
        return declared, frozenset(table for table in wanted if kinds.get(table.name) == 'table')


def _json_path(entity: Any, field: str, path: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """Return the table, field and keys of a JSON path to index, checked.

    :raises QueryError: for an entity without that JSON field, an empty path, or a key that cannot be queried.
    """
    try:
        entity = EntityType(entity)
    except ValueError:
        raise QueryError(f'Unknown entity {entity!r}') from None
    if FIELDS.get(entity, {}).get(field) != 'json':
        raise QueryError(f'{entity.value} has no JSON field {field!r}')
    keys = tuple(path)
    if not keys or not all(isinstance(key, str) and key and '"' not in key and '\x00' not in key for key in keys):
        raise QueryError(
            f'Cannot index the JSON path {field}.{".".join(map(str, keys))}: give non-empty keys without "'
        )
    return TABLES[entity], field, keys


def _recorded_json_indexes(connection: Connection) -> list[Any]:
    value = connection.execute(select(DbSetting.val).where(DbSetting.key == JSON_INDEXES_KEY)).scalar_one_or_none()
    return list(value) if isinstance(value, list) else []


def _forget_json_index(connection: Connection, item: list[Any]) -> None:
    """Remove ``item`` from the recorded JSON indexes, if it is there."""
    recorded = _recorded_json_indexes(connection)
    if item in recorded:
        _record_json_indexes(connection, [other for other in recorded if other != item])


def _record_json_indexes(connection: Connection, items: list[Any]) -> None:
    connection.execute(delete(DbSetting).where(DbSetting.key == JSON_INDEXES_KEY))
    connection.execute(
        insert(DbSetting).values(key=JSON_INDEXES_KEY, val=items, description='JSON paths with an index (provstore)')
    )
