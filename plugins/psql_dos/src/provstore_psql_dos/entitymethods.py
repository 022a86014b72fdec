"""The :class:`~provstore.storage.EntityStorage` methods of ``psql_dos`` and ``sqlite_dos``: each checks what it is
given, then runs the entity statements (:mod:`provstore_psql_dos.entities`) in this thread's transaction block.

This module is light, as :mod:`provstore_psql_dos.base` is: SQLAlchemy is imported when a storage opens.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from provstore.exceptions import StorageError
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from provstore.storage.entities import Direction
    from provstore_psql_dos.dialects import Dialect
    from provstore_psql_dos.entities import EntitySql

__all__ = ['EntityMethods']

_Item = TypeVar('_Item')
_Position = TypeVar('_Position')


class EntityMethods(EntityStorage):
    """The entity methods of a storage whose :meth:`_run` gives a connection and the entity statements."""

    _dialect: Dialect

    @abc.abstractmethod
    def _run(
        self, write: bool, what: str, single: bool = False
    ) -> contextlib.AbstractContextManager[tuple[Connection, EntitySql]]:
        """A connection (a savepoint of the thread's block, else a transaction of its own) and the statements.

        :param what: what is done, for the message of a :class:`StorageError` a database error becomes.
        :param single: the work is one statement.
        """

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise unless the storage is open and writable."""

    # -- rows ---------------------------------------------------------------------------------------------

    def insert_rows(self, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        """Insert rows (without ``id``) and return their new ids, in order.

        Columns a row omits get aiida-core's defaults (:data:`provstore_psql_dos.entities.INSERT_DEFAULTS`). Rows go
        10,000 to a statement (fewer on SQLite when its limit of bind parameters says so).

        :raises StorageError: for an unknown entity or column, a missing or unsuitable value, or if the database
            refuses the rows (a uuid already there, say).
        """
        return self._insert(entity, rows, text=False)

    def _insert(self, entity: EntityType, rows: Sequence[Row], *, text: bool) -> list[int]:
        entity = _entity(entity)
        if not rows:
            self.check_writable()
            return []
        single = self._dialect.one_insert_statement(entity, len(rows))
        with self._run(True, f'insert {len(rows)} rows into {entity.value}', single) as (connection, sql):
            return sql.insert_rows(connection, entity, rows, text=text)

    def update_rows(self, entity: EntityType, rows: Sequence[Row]) -> None:
        """Set the given columns of rows identified by their ``id``; ``mtime`` (nodes, comments) is now unless given.

        :raises StorageError: for an unknown entity or column, an unsuitable value, or an id with no row (then
            nothing is updated).
        """
        entity = _entity(entity)
        with self._run(True, f'update {len(rows)} rows of {entity.value}') as (connection, sql):
            sql.update_rows(connection, entity, rows)

    def get_rows(self, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        """Return every row whose ``column`` is one of ``values`` (in no particular order), with one query.

        :raises StorageError: for an unknown entity or column, a JSON column, or a value that does not suit it.
        """
        entity = _entity(entity)
        with self._run(False, f'look up rows of {entity.value} by {column!r}', single=True) as (connection, sql):
            return sql.get_rows(connection, entity, column, values)

    def find_rows(
        self,
        entity: EntityType,
        column: str,
        prefix: str,
        limit: int | None = None,
        equal: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """Return the rows whose ``column`` starts with ``prefix``, highest id first, with one indexed query.

        A uuid prefix is hex digits (case and dashes ignored); a text prefix is compared exactly. ``''`` matches all.

        :param limit: at most this many rows; ``None`` for all.
        :param equal: also require these columns to equal these values.
        :raises StorageError: for an unknown entity or column, a column that is neither text nor uuid, a bad prefix,
            value or limit.
        """
        entity = _entity(entity)
        with self._run(False, f'find rows of {entity.value} by a prefix of {column!r}') as (connection, sql):
            return sql.find_rows(connection, entity, column, prefix, limit=limit, equal=equal)

    def iter_rows(self, entity: EntityType, batch_size: int = 1000) -> Iterator[Row]:
        """Iterate over every row of an entity table by ascending id, one query per batch (keyset pagination).

        Outside a transaction block each batch is read in a short transaction of its own.

        :raises StorageError: for an unknown entity or a batch size that is not a positive integer.
        """
        entity = _entity(entity)
        _check_batch_size(batch_size)
        return self._paged(
            entity, batch_size, lambda connection, sql, after: sql.iter_batch(connection, entity, after, batch_size)
        )

    def _paged(
        self, entity: EntityType, batch_size: int, read: Callable[[Connection, EntitySql, int], list[Row]]
    ) -> Iterator[Row]:
        """Yield the rows ``read(connection, statements, after)`` gives, batch after batch, by ascending id."""
        return self._keyset(f'read rows of {entity.value}', batch_size, 0, read, lambda row: row['id'])

    def _keyset(
        self,
        what: str,
        batch_size: int,
        start: _Position,
        read: Callable[[Connection, EntitySql, _Position], list[_Item]],
        position: Callable[[_Item], _Position],
    ) -> Iterator[_Item]:
        """Yield what ``read(connection, statements, after)`` gives, a query per batch, each batch starting after the
        ``position`` of the last item of the one before (``start`` first), until a batch is short."""
        after = start
        while True:
            with self._run(False, what, single=True) as (connection, sql):
                batch = read(connection, sql, after)
            yield from batch
            if len(batch) < batch_size:
                return
            after = position(batch[-1])

    def insert_text_rows(self, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        """Insert rows in text form (without ``id``) and return their new ids, in order, as :meth:`insert_rows`.

        JSON texts go to the database as they are and are checked there; times must be UTC.

        :raises StorageError: as :meth:`insert_rows`, and for a JSON text that is not JSON.
        """
        return self._insert(entity, rows, text=True)

    def iter_text_rows(
        self, entity: EntityType, batch_size: int = 1000, ids: Sequence[int] | None = None
    ) -> Iterator[Row]:
        """Iterate over the rows (of ``ids``, when given) by ascending id in text form, one query per batch.

        :raises StorageError: for an unknown entity, a batch size that is not a positive integer, or an id that is
            not an integer.
        """
        from provstore_psql_dos.tables import check_ids  # noqa: PLC0415 - SQLAlchemy only once a storage is open

        entity = _entity(entity)
        _check_batch_size(batch_size)
        if ids is None:
            return self._paged(
                entity,
                batch_size,
                lambda connection, sql, after: sql.iter_text_batch(connection, entity, after, batch_size),
            )
        wanted = sorted(set(check_ids(ids, f'The ids of rows of {entity.value} to read')))
        return self._text_rows_of(entity, batch_size, wanted)

    def _text_rows_of(self, entity: EntityType, batch_size: int, ids: list[int]) -> Iterator[Row]:
        for start in range(0, len(ids), batch_size):
            with self._run(False, f'read rows of {entity.value}', single=True) as (connection, sql):
                batch = sql.iter_text_batch(connection, entity, 0, batch_size, ids[start : start + batch_size])
            yield from batch

    def iter_file_references(self, batch_size: int = 10_000) -> Iterator[tuple[int, str, str]]:
        """Iterate over ``(node id, path, key)`` of every file of every stored node, from ``provstore_node_file``,
        a batch per query."""
        return self._keyset(
            'read file references',
            batch_size,
            (0, ''),
            lambda connection, sql, after: sql.node_files_batch(connection, after, batch_size),
            lambda reference: (reference[0], reference[1]),
        )

    def iter_referenced_keys(self, batch_size: int = 10_000) -> Iterator[str]:
        """Iterate over the keys some stored node refers to, once each, ascending, from ``provstore_node_file``."""
        return self._keyset(
            'read referenced object keys',
            batch_size,
            '',
            lambda connection, sql, after: sql.referenced_keys_batch(connection, after, batch_size),
            lambda key: key,
        )

    def count_rows(self, entity: EntityType) -> int:
        """Return the number of rows of an entity table."""
        entity = _entity(entity)
        with self._run(False, f'count rows of {entity.value}', single=True) as (connection, sql):
            return sql.count_rows(connection, entity)

    def delete_rows(self, entity: EntityType, ids: Sequence[int]) -> None:
        """Delete rows by id in one statement; rows that refer to them go as the schema's ON DELETE rules say.

        :raises StorageError: for an unknown entity, an id that is not an integer, or if the database refuses (a
            node still linked as an input, say: then when the transaction commits).
        """
        entity = _entity(entity)
        with self._run(True, f'delete rows of {entity.value}') as (connection, sql):
            sql.delete_rows(connection, entity, ids)

    def patch_node_json(
        self,
        node_id: int,
        column: Literal['attributes', 'extras'],
        set_keys: Mapping[str, Any],
        delete_keys: Sequence[str],
    ) -> None:
        """Delete ``delete_keys``, then set ``set_keys``, of a node's JSON column in one UPDATE; set its ``mtime`` now.

        Keys other processes set meanwhile are kept. A key both deleted and set ends up set; values are stored as
        given (``None`` as JSON null; a dict replaces the value that was there, nothing is merged).

        :raises StorageError: for another column, a key that is not a string, a value that is not JSON, a node that
            does not exist or whose column holds something else than a JSON object.
        """
        with self._run(True, f'change the {column} of node {node_id}', single=True) as (connection, sql):
            sql.patch_node_json(connection, node_id, column, set_keys, delete_keys)

    def get_links(
        self, node_ids: Sequence[int], direction: Direction, link_types: Sequence[str] | None = None
    ) -> list[Row]:
        """Return the link rows ending at (``incoming``) or starting from (``outgoing``) any of ``node_ids``.

        :param link_types: only links of these types; ``None`` for every type.
        :raises StorageError: for a direction that is neither ``incoming`` nor ``outgoing``.
        """
        if direction not in ('incoming', 'outgoing'):
            raise StorageError(f"The direction of links must be 'incoming' or 'outgoing', not {direction!r}")
        with self._run(False, f'read {direction} links', single=True) as (connection, sql):
            return sql.get_links(connection, node_ids, direction == 'incoming', link_types)

    def add_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        """Add nodes to a group in one statement; nodes already in it are skipped.

        :raises StorageError: if the group or one of the nodes does not exist (then nothing is added).
        """
        with self._run(True, f'add nodes to group {group_id}') as (connection, sql):
            sql.add_group_nodes(connection, group_id, node_ids)

    def remove_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        """Remove nodes from a group in one statement; nodes not in it are ignored.

        :raises StorageError: if the group does not exist.
        """
        with self._run(True, f'remove nodes from group {group_id}') as (connection, sql):
            sql.remove_group_nodes(connection, group_id, node_ids)

    def traverse(
        self,
        start: Sequence[int],
        forward: Sequence[str],
        backward: Sequence[str],
        max_depth: int | None = None,
    ) -> set[int]:
        """Return every node reachable from ``start`` (included, if it exists), with one recursive query.

        :param forward: link types followed from source to target.
        :param backward: link types followed from target to source.
        :param max_depth: stop after this many steps; ``None`` for no limit.
        """
        with self._run(False, 'traverse the graph', single=True) as (connection, sql):
            return sql.traverse(connection, start, forward, backward, max_depth)

    def delete_nodes(self, node_ids: Sequence[int]) -> None:
        """Delete nodes with their group memberships, links in and out, comments and logs, in one transaction.

        Inside a transaction block this is part of it (a savepoint). Repository objects are left for maintenance.
        """
        with self._run(True, f'delete {len(node_ids)} nodes') as (connection, sql):
            sql.delete_nodes(connection, node_ids)


def _check_batch_size(batch_size: object) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise StorageError(f'The batch size must be a positive integer, got {batch_size!r}')


def _entity(entity: Any) -> EntityType:
    """Return ``entity`` as an :class:`EntityType`, or raise :class:`StorageError` naming it and the known ones."""
    try:
        return EntityType(entity)
    except ValueError:
        known = ', '.join(member.value for member in EntityType)
        raise StorageError(f'Unknown entity type {entity!r}; the entity types are: {known}') from None
