"""What a storage backend offers the ORM: rows of the entity tables, transactions and graph operations.

The ORM (``provstore.orm``) never speaks SQL: it reads and writes *rows* — plain dicts keyed by the column names
of aiida-core's tables (``db_dbnode``, ``db_dblink``, ...) — through the methods below, in batches. A backend
that stores entities subclasses :class:`EntityStorage` next to :class:`~provstore.storage.StorageBackend`.

Row values: ``uuid`` as a 36-character dashed string, times as timezone-aware ``datetime`` in UTC, JSON columns
as Python objects (``dict``/``list``/...), ``id`` as ``int``.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from provstore.repository import AbstractRepositoryBackend
    from provstore.storage.query import Query
    from provstore.storage.statistics import StorageQueries

__all__ = ['Direction', 'EntityStorage', 'EntityType', 'Row']

Row = dict[str, Any]
"""One row of an entity table, keyed by column name."""

Direction = Literal['incoming', 'outgoing']


class EntityType(str, enum.Enum):
    """The entity tables, with the names aiida-core uses for them."""

    USER = 'user'
    COMPUTER = 'computer'
    AUTHINFO = 'authinfo'
    NODE = 'node'
    LINK = 'link'
    GROUP = 'group'
    GROUP_NODE = 'group_node'
    COMMENT = 'comment'
    LOG = 'log'


class EntityStorage(abc.ABC):
    """The entity side of a storage backend. Every method works on many rows at once.

    Lists of values (ids, uuids) may be of any length: backends must never expand them into one bind parameter
    each (pass them as an array or a JSON document instead).
    """

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Run the block in a transaction: committed when the outermost block ends, rolled back on an exception.

        Nested blocks are savepoints: an exception inside one undoes only that block.
        """

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` block is open."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Run the block's reads in this thread on one consistent state of the stored rows, where the backend can,
        however long the block lasts and whatever other processes write meanwhile; writes inside may be refused.

        The default gives no such guarantee (each read sees the rows of its moment); a backend overrides it with a
        read transaction of its database. Inside an open :meth:`transaction` block, that block's state is used.
        """
        return contextlib.nullcontext()

    @abc.abstractmethod
    def get_repository(self) -> AbstractRepositoryBackend:
        """The repository backend holding the files of stored nodes."""

    # -- rows -------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def insert_rows(self, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        """Insert rows (without ``id``) and return their new ids, in order. One statement per batch, not per row."""

    @abc.abstractmethod
    def update_rows(self, entity: EntityType, rows: Sequence[Row]) -> None:
        """Update the given columns of rows identified by their ``id``."""

    @abc.abstractmethod
    def get_rows(self, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        """Return every row whose ``column`` is one of ``values`` (in no particular order)."""

    @abc.abstractmethod
    def find_rows(
        self,
        entity: EntityType,
        column: str,
        prefix: str,
        limit: int | None = None,
        equal: Mapping[str, Any] | None = None,
    ) -> list[Row]:
        """Return the rows whose ``column`` starts with ``prefix``, newest (highest id) first, found through an index.

        For a uuid column ``prefix`` is leading hex digits of the uuid (case and dashes ignored); for a text column
        it is compared exactly (case-sensitive; ``%`` and ``_`` are plain characters). ``''`` matches every row.

        :param limit: return at most this many rows; ``None`` for all.
        :param equal: also require these (non-JSON) columns to equal these values, e.g. ``{'label': 'relax'}``.
        :raises StorageError: for an unknown column, a column that is neither text nor uuid, a uuid prefix that is
            not hex digits, or a limit that is not a non-negative integer.
        """

    @abc.abstractmethod
    def iter_rows(self, entity: EntityType, batch_size: int = 1000) -> Iterator[Row]:
        """Iterate over every row of an entity table by ascending id, in batches: constant memory."""

    def iter_text_rows(
        self, entity: EntityType, batch_size: int = 1000, ids: Sequence[int] | None = None
    ) -> Iterator[Row]:
        """Iterate over the rows of an entity table (only those of ``ids``, when given) by ascending id, in
        :mod:`text form <provstore.storage.textrows>`, in batches.

        The default converts :meth:`iter_rows` and :meth:`get_rows`; backends that store text override it.
        """
        from provstore.storage.textrows import to_text_row  # noqa: PLC0415 - a cycle: textrows imports this module

        if ids is None:
            for row in self.iter_rows(entity, batch_size):
                yield to_text_row(entity, row)
            return
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), batch_size):
            rows = self.get_rows(entity, 'id', ordered[start : start + batch_size])
            for row in sorted(rows, key=lambda row: row['id']):
                yield to_text_row(entity, row)

    def insert_text_rows(self, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        """Insert rows in :mod:`text form <provstore.storage.textrows>` (without ``id``) and return their new ids,
        in order, as :meth:`insert_rows` does.

        :raises StorageError: as :meth:`insert_rows`, and for JSON text that is not JSON or a time that is not one.
        """
        from provstore.storage.textrows import from_text_row  # noqa: PLC0415

        return self.insert_rows(entity, [from_text_row(entity, row) for row in rows])

    @abc.abstractmethod
    def count_rows(self, entity: EntityType) -> int:
        """Return the number of rows of an entity table."""

    @abc.abstractmethod
    def delete_rows(self, entity: EntityType, ids: Sequence[int]) -> None:
        """Delete rows by id (rows that refer to them go as the schema's ON DELETE rules say)."""

    def object_writes(self) -> AbstractContextManager[None]:
        """A block in which objects are written (or found already stored) and the rows that refer to them
        committed: live maintenance deletes none of them meanwhile (:mod:`provstore.storage.objectguard`).

        The default does nothing: a storage that deletes no object while others write needs nothing more.
        """
        return contextlib.nullcontext()

    # -- file references ----------------------------------------------------------------------------------

    def iter_file_references(self, batch_size: int = 10_000) -> Iterator[tuple[int, str, str]]:
        """Iterate over ``(node id, path, object key)`` of every file of every stored node, by node id then path.

        The default reads every node's ``repository_metadata``; backends that keep the references as rows
        (``psql_dos``, ``sqlite_dos``) read those instead.
        """
        from provstore.repository import Repository  # noqa: PLC0415

        for row in self.iter_rows(EntityType.NODE, min(batch_size, 1000)):
            for path, key in sorted(Repository.file_references(row['repository_metadata'])):
                yield row['id'], path, key

    def iter_referenced_keys(self, batch_size: int = 10_000) -> Iterator[str]:
        """Iterate over the object keys some stored node refers to, each once, in ascending order.

        The default gathers them from :meth:`iter_file_references` in memory; backends with the references as rows
        ask the database, in batches.
        """
        yield from sorted({key for _, _, key in self.iter_file_references(batch_size)})

    # -- nodes, links, groups ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def patch_node_json(
        self,
        node_id: int,
        column: Literal['attributes', 'extras'],
        set_keys: Mapping[str, Any],
        delete_keys: Sequence[str],
    ) -> None:
        """Set and delete top-level keys of a node's JSON column atomically, on the server.

        Keys other processes set meanwhile are kept: the whole column is never read, changed and written back.
        """

    @abc.abstractmethod
    def get_links(
        self, node_ids: Sequence[int], direction: Direction, link_types: Sequence[str] | None = None
    ) -> list[Row]:
        """Return the link rows ending at (``incoming``) or starting from (``outgoing``) any of ``node_ids``."""

    @abc.abstractmethod
    def add_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        """Add nodes to a group in one set-based statement; nodes already in it are skipped."""

    @abc.abstractmethod
    def remove_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        """Remove nodes from a group in one set-based statement."""

    @abc.abstractmethod
    def traverse(
        self,
        start: Sequence[int],
        forward: Sequence[str],
        backward: Sequence[str],
        max_depth: int | None = None,
    ) -> set[int]:
        """Return every node reachable from ``start`` (included), computed in the database.

        :param forward: link types followed from source to target.
        :param backward: link types followed from target to source.
        :param max_depth: stop after this many steps; ``None`` for no limit.
        """

    @abc.abstractmethod
    def delete_nodes(self, node_ids: Sequence[int]) -> None:
        """Delete nodes with their links, group memberships, comments and logs, in the current transaction.

        Repository objects are left for maintenance.
        """

    # -- queries ----------------------------------------------------------------------------------------------

    def query(self) -> StorageQueries:
        """aiida-core's summaries of the whole storage (``storage.query().get_creation_statistics()``)."""
        from provstore.storage.statistics import StorageQueries  # noqa: PLC0415 - it builds on this module

        return StorageQueries(self)

    @abc.abstractmethod
    def run_query(self, query: Query, batch_size: int | None = None) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of ``query``, one value per projection (see :class:`~provstore.storage.query.Query`).

        :param batch_size: rows fetched from the database at a time; ``None`` for all at once. Iterating holds a
            connection of its own (or the thread's open transaction): writes in the loop are allowed.
        :raises QueryError: for what the backend cannot answer, with a message naming it.
        """

    @abc.abstractmethod
    def count_query(self, query: Query) -> int:
        """Return the number of rows ``query`` gives."""

    @abc.abstractmethod
    def query_sql(self, query: Query, inline: bool = False) -> str:
        """Return the SQL of ``query`` (``inline``: with the values written in, for reading only)."""

    @abc.abstractmethod
    def explain_query(self, query: Query) -> str:
        """Return the database's plan for ``query``."""

    @abc.abstractmethod
    def add_json_index(self, entity: EntityType, field: str, path: Sequence[str]) -> str:
        """Make the index that serves filters on a JSON path, e.g. ``node``, ``attributes``, ``('a',)``; making it
        again leaves the same index.

        :return: the name of the index.
        """

    @abc.abstractmethod
    def list_json_indexes(self) -> list[tuple[EntityType, str, tuple[str, ...]]]:
        """Return the JSON paths with an index, as ``(entity, field, path)``."""

    @abc.abstractmethod
    def drop_json_index(self, entity: EntityType, field: str, path: Sequence[str]) -> None:
        """Drop the index of a JSON path (nothing happens if there is none)."""
