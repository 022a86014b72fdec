"""The file references of stored nodes (``provstore_node_file``), kept in step with their ``repository_metadata``.

Every statement of :class:`~provstore_psql_dos.entities.EntitySql` that writes nodes calls these functions in the
same transaction: inserts add the rows of the new nodes, an update of ``repository_metadata`` replaces a node's
rows, deletions remove them (the foreign key cascades too). Which objects the profile references is then one query
over this table, never a walk through every node's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from provstore.exceptions import StorageError
from provstore.repository import Repository
from provstore_psql_dos.dialects import Dialect
from provstore_psql_dos.models import Base, DbNodeFile

__all__ = ['NODE_FILE', 'add_node_files', 'file_rows', 'node_files_batch', 'referenced_keys_batch', 'remove_node_files']

NODE_FILE = Base.metadata.tables[DbNodeFile.__tablename__]
_EMPTY: tuple[Any, ...] = (None, {}, '{}', '')


def file_rows(node_id: int, metadata: Any) -> list[dict[str, Any]]:
    """Return the rows of one node's files, from its ``repository_metadata`` (a mapping, or JSON text).

    :raises StorageError: naming the node, for metadata that is not a repository tree.
    """
    if metadata in _EMPTY:
        return []
    try:
        tree = json.loads(metadata) if isinstance(metadata, str) else metadata
        references = Repository.file_references(tree)
    except ValueError as exc:  # NOTE: InvalidPathError and JSONDecodeError are ValueErrors
        raise StorageError(f'The repository_metadata of node {node_id} is not a repository tree: {exc}') from None
    return [{'node_id': node_id, 'path': path, 'key': key} for path, key in references]


def add_node_files(connection: Connection, nodes: Iterable[tuple[int, Any]]) -> None:
    """Add the file rows of new nodes, given as ``(id, repository_metadata)``."""
    rows = [row for node_id, metadata in nodes for row in file_rows(node_id, metadata)]
    if rows:
        connection.execute(insert(NODE_FILE), rows)


def remove_node_files(connection: Connection, dialect: Dialect, node_ids: Sequence[int]) -> None:
    """Remove the file rows of ``node_ids``."""
    if node_ids:
        connection.execute(delete(NODE_FILE).where(dialect.in_values(NODE_FILE.c.node_id, 'int', node_ids)))


def node_files_batch(connection: Connection, after: tuple[int, str], batch_size: int) -> list[tuple[int, str, str]]:
    """Return up to ``batch_size`` ``(node_id, path, key)`` after ``(node_id, path)`` ``after``, by node and path."""
    table = NODE_FILE
    node_id, path = after
    statement = (
        select(table.c.node_id, table.c.path, table.c.key)
        .where((table.c.node_id > node_id) | ((table.c.node_id == node_id) & (table.c.path > path)))
        .order_by(table.c.node_id, table.c.path)
        .limit(batch_size)
    )
    return [(int(node), str(name), str(key)) for node, name, key in connection.execute(statement)]


def referenced_keys_batch(connection: Connection, after: str, batch_size: int) -> list[str]:
    """Return up to ``batch_size`` distinct referenced keys above ``after``, ascending."""
    key = NODE_FILE.c.key
    statement = select(key).where(key > after).group_by(key).order_by(key).limit(batch_size)
    return [str(value) for value in connection.execute(statement).scalars()]
