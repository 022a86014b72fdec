"""The SQL behind :class:`~provstore.storage.EntityStorage`: rows in, rows out, set-based, the same on both dialects.

This module imports SQLAlchemy: :class:`~provstore_psql_dos.base.DosStorageBackend` imports it on first use.

Every list of values (ids, uuids, link types) goes to the database as *one* bind parameter (how, the dialect says:
:mod:`provstore_psql_dos.dialects`), so that no list is limited by the number of bind parameters a statement may
have. Rows are checked and completed here (:mod:`provstore_psql_dos.tables`), before any SQL runs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, delete, func, literal, select, text
from sqlalchemy.sql.elements import ColumnElement

from provstore.exceptions import StorageError
from provstore.storage import EntityType, Row
from provstore.storage.textrows import canonical_time_text, time_to_text
from provstore_psql_dos.models import Base, TZDateTime, utc_now
from provstore_psql_dos.nodefiles import (
    NODE_FILE,
    add_node_files,
    node_files_batch,
    referenced_keys_batch,
    remove_node_files,
)
from provstore_psql_dos.tables import (
    CHECKS,
    INSERT_DEFAULTS,
    JSON_COLUMNS,
    ROWS_PER_STATEMENT,
    TABLES,
    BadValueError,
    Kind,
    TableInfo,
    check_ids,
    check_strings,
    check_value,
    chunks,
    dump_json,
    shown,
    table_info,
    uuid_bounds,
)
from provstore_psql_dos.traversal import reach, seed

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from provstore_psql_dos.dialects.base import Dialect

__all__ = ['INSERT_DEFAULTS', 'ROWS_PER_STATEMENT', 'TABLES', 'EntitySql']


# -- the statements -------------------------------------------------------------------------------------------------


class EntitySql:
    """The statements of the entity methods, asking the dialect for what differs; every method runs on a connection it
    is given.

    The caller (the storage backend) owns transactions: these methods neither begin nor commit.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._convert = {**CHECKS, **dialect.bind_forms()}
        self._plans: dict[
            tuple[EntityType, bool], list[tuple[str, Callable[[Any], Any], Callable[[], Any] | None, bool]]
        ] = {}

    # -- rows -----------------------------------------------------------------------------------------------------

    def insert_rows(
        self, connection: Connection, entity: EntityType, rows: Sequence[Row], *, text: bool = False
    ) -> list[int]:
        """Insert rows (defaults filled in) in one statement per :data:`ROWS_PER_STATEMENT`; return ids in order.

        :param text: the rows are in text form (JSON texts are then checked by the database).
        """
        info = table_info(entity)
        now: datetime.datetime | str = time_to_text(utc_now()) if text else utc_now()
        insert_chunk = self.dialect.insert_text_chunk if text else self.dialect.insert_chunk
        ids: list[int] = []
        for chunk in chunks(rows, self.dialect.rows_per_insert(info)):
            checked = [
                self._complete_row(info, row, index, now, text=text) for index, row in enumerate(chunk, start=len(ids))
            ]
            chunk_ids = insert_chunk(connection, info, checked)
            if entity is EntityType.NODE:
                add_node_files(
                    connection,
                    ((node_id, row['repository_metadata']) for node_id, row in zip(chunk_ids, checked, strict=True)),
                )
            ids.extend(chunk_ids)
        return ids

    def _plan(
        self, info: TableInfo, text: bool = False
    ) -> list[tuple[str, Callable[[Any], Any], Callable[[], Any] | None, bool]]:
        """Return, per column but ``id``: its name, its converter, its default (or ``None``), whether it is nullable
        (``text``: for rows in text form).

        The default of a time column is ``None`` here: :meth:`_complete_row` gives the time of the insert instead.
        """
        plan = self._plans.get((info.entity, text))
        if plan is None:
            convert = _TEXT_CHECKS if text else self._convert
            plan = []
            for column, kind in info.kinds.items():
                default = None if kind == 'time' else info.defaults.get(column)
                if text and kind == 'json' and default is not None:
                    default = _as_json_text_default(default)
                plan.append((column, convert[kind], default, column in info.nullable))
            self._plans[info.entity, text] = plan
        return plan

    def _complete_row(
        self, info: TableInfo, row: Row, index: int, now: datetime.datetime | str, text: bool = False
    ) -> dict[str, Any]:
        """Return the row with every column but ``id``: its values checked, defaults for those it omits.

        A time column the row omits gets ``now`` (one time for every row of an insert: ``ctime`` equals ``mtime``).

        :raises StorageError: naming the row and the column, for an unknown column, an ``id``, a missing required
            value or a value that does not suit its column.
        """
        if not isinstance(row, Mapping):
            raise StorageError(f'Row {index} to insert into {info.name} is not a mapping: {type(row).__name__}')
        if not info.kinds.keys() >= row.keys():
            if 'id' in row:
                raise StorageError(f'Row {index} to insert into {info.name} has an id: ids are given by the database')
            info.check_column(next(key for key in row if key not in info.kinds))
        complete: dict[str, Any] = {}
        for column, convert, default, nullable in self._plan(info, text):
            if column in row:
                value = row[column]
            elif default is not None:
                value = default()
            elif column in info.defaults:
                value = now
            elif nullable:
                value = None
            else:
                raise StorageError(f'Row {index} to insert into {info.name} has no value for column {column!r}')
            if value is None:
                if not nullable:
                    raise StorageError(f'Row {index} of {info.name}: column {column!r} cannot be None')
                complete[column] = None
                continue
            try:
                complete[column] = convert(value)
            except BadValueError as exc:
                raise StorageError(f'Row {index} of {info.name}: column {column!r} {exc}') from None
        return complete

    def _checked(self, info: TableInfo, column: str, kind: Kind, value: Any, index: int) -> Any:
        """Return ``value`` checked and converted for ``column``, in the form the dialect's statements bind it.

        :raises StorageError: naming the row and the column.
        """
        if value is None:
            if column not in info.nullable:
                raise StorageError(f'Row {index} of {info.name}: column {column!r} cannot be None')
            return None
        try:
            return self._convert[kind](value)
        except BadValueError as exc:
            raise StorageError(f'Row {index} of {info.name}: column {column!r} {exc}') from None

    def update_rows(self, connection: Connection, entity: EntityType, rows: Sequence[Row]) -> None:
        """Set the given columns of rows identified by ``id``; on-update columns (``mtime``) are now unless given.

        Rows with the same columns go together, :data:`ROWS_PER_STATEMENT` to a statement.

        :raises StorageError: for an unknown column, a bad value, a repeated id, or ids with no row.
        """
        info = table_info(entity)
        now = utc_now()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        seen: set[int] = set()
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping) or 'id' not in row:
                raise StorageError(f'Row {index} to update in {info.name} has no id')
            row_id = check_ids([row['id']], f'The ids of rows to update in {info.name}')[0]
            if row_id in seen:
                raise StorageError(f'Row {index} to update in {info.name}: id {row_id} appears more than once')
            seen.add(row_id)
            columns = [key for key in row if key != 'id']
            if not columns:
                continue
            for column in columns:
                info.check_column(column)
            checked = {
                column: self._checked(info, column, info.kinds[column], row[column], index) for column in columns
            }
            for column, factory in info.on_update.items():
                if column not in checked:
                    kind = info.kinds[column]
                    checked[column] = self._checked(info, column, kind, now if kind == 'time' else factory(), index)
            checked['id'] = row_id
            groups.setdefault(tuple(sorted(key for key in checked if key != 'id')), []).append(checked)
        found = 0
        for group_columns, group in groups.items():
            for chunk in chunks(group, ROWS_PER_STATEMENT):
                found += self.dialect.update_group(connection, info, group_columns, list(chunk))
                if entity is EntityType.NODE and 'repository_metadata' in group_columns:
                    remove_node_files(connection, self.dialect, [row['id'] for row in chunk])
                    add_node_files(connection, ((row['id'], row['repository_metadata']) for row in chunk))
        wanted = sum(len(group) for group in groups.values())
        if found != wanted:
            ids = [row['id'] for group in groups.values() for row in group]
            existing = {row['id'] for row in self.get_rows(connection, entity, 'id', ids)}
            missing = sorted(set(ids) - existing)
            raise StorageError(f'No {entity.value} with id {shown(missing)} in {info.name}: nothing was updated')

    def get_rows(self, connection: Connection, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        """Return the rows whose ``column`` is one of ``values``.

        :raises StorageError: if the table has no such column, it is a JSON column, or a value does not suit it.
        """
        info = table_info(entity)
        kind = info.check_column(column)
        if kind == 'json':
            raise StorageError(f'Column {column!r} of {info.name} holds JSON: rows cannot be looked up by it')
        checked = []
        for value in values:
            try:
                checked.append(check_value(kind, value))
            except BadValueError as exc:
                raise StorageError(f'Looking up rows of {info.name} by {column!r}: a value {exc}') from None
        if not checked:
            return []
        table = info.table
        statement = select(table).where(self.dialect.in_values(table.c[column], kind, checked))
        return [dict(row._mapping) for row in connection.execute(statement)]

    def find_rows(
        self,
        connection: Connection,
        entity: EntityType,
        column: str,
        prefix: str,
        *,
        limit: int | None,
        equal: Mapping[str, Any] | None,
    ) -> list[Row]:
        """Return the rows whose ``column`` starts with ``prefix`` and whose ``equal`` columns match, by descending id.

        A uuid prefix becomes a range of uuids (the unique index on the column answers it on both dialects); a text
        prefix becomes :meth:`starts_with`.

        :raises StorageError: for an unknown column, a column that is neither text nor uuid, a JSON column in
            ``equal``, a value that does not suit its column, or a bad ``limit``.
        """
        info = table_info(entity)
        table = info.table
        kind = info.check_column(column)
        if not isinstance(prefix, str):
            raise StorageError(f'A prefix of {info.name}.{column} must be a string, got {type(prefix).__name__}')
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise StorageError(f'The limit of rows must be a non-negative integer or None, got {limit!r}')
        conditions: list[ColumnElement[bool]] = []
        if kind == 'uuid':
            low, high = uuid_bounds(prefix, f'{info.name}.{column}')
            conditions.append(table.c[column].between(low, high))
        elif kind != 'str':
            raise StorageError(
                f'Column {column!r} of {info.name} is not text or a uuid: rows cannot be found by a prefix of it'
            )
        elif prefix:
            conditions.append(self.dialect.starts_with(table.c[column], prefix))
        for name, value in (equal or {}).items():
            equal_kind = info.check_column(name)
            if equal_kind == 'json':
                raise StorageError(f'Column {name!r} of {info.name} holds JSON: rows cannot be looked up by it')
            if value is None:
                conditions.append(table.c[name].is_(None))
                continue
            try:
                conditions.append(table.c[name] == check_value(equal_kind, value))
            except BadValueError as exc:
                raise StorageError(f'Finding rows of {info.name} where {name!r} is a value: it {exc}') from None
        if limit == 0:
            return []
        statement = select(table).where(*conditions).order_by(table.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in connection.execute(statement)]

    def iter_batch(self, connection: Connection, entity: EntityType, after: int, batch_size: int) -> list[Row]:
        """Return up to ``batch_size`` rows whose id is above ``after``, by ascending id."""
        table = table_info(entity).table
        statement = select(table).where(table.c.id > after).order_by(table.c.id).limit(batch_size)
        return [dict(row._mapping) for row in connection.execute(statement)]

    def iter_text_batch(
        self,
        connection: Connection,
        entity: EntityType,
        after: int,
        batch_size: int,
        ids: Sequence[int] | None = None,
    ) -> list[Row]:
        """Return up to ``batch_size`` rows in text form whose id is above ``after`` (and one of ``ids``, when
        given), by ascending id."""
        info = table_info(entity)
        table = info.table
        kinds: dict[str, Kind] = {'id': 'int', **info.kinds}
        statement = select(
            *(self.dialect.text_column(table.c[column], kind).label(column) for column, kind in kinds.items())
        ).where(table.c.id > after)
        if ids is not None:
            statement = statement.where(self.dialect.in_values(table.c.id, 'int', ids))
        result = connection.execute(statement.order_by(table.c.id).limit(batch_size))
        return [dict(zip(kinds, row, strict=True)) for row in result]

    def node_files_batch(
        self, connection: Connection, after: tuple[int, str], batch_size: int
    ) -> list[tuple[int, str, str]]:
        """Return the next ``(node_id, path, key)`` of the file references, after ``(node_id, path)``."""
        return node_files_batch(connection, after, batch_size)

    def referenced_keys_batch(self, connection: Connection, after: str, batch_size: int) -> list[str]:
        """Return the next distinct referenced object keys, above ``after``."""
        return referenced_keys_batch(connection, after, batch_size)

    def count_rows(self, connection: Connection, entity: EntityType) -> int:
        """Return the number of rows of the entity's table."""
        table = table_info(entity).table
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    def delete_rows(self, connection: Connection, entity: EntityType, ids: Sequence[Any]) -> None:
        """Delete rows by id, in one statement."""
        info = table_info(entity)
        checked = check_ids(ids, f'The ids of rows to delete from {info.name}')
        if checked:
            if entity is EntityType.NODE:
                remove_node_files(connection, self.dialect, checked)
            connection.execute(delete(info.table).where(self.dialect.in_values(info.table.c.id, 'int', checked)))

    # -- nodes, links, groups ---------------------------------------------------------------------------------

    def patch_node_json(
        self,
        connection: Connection,
        node_id: int,
        column: str,
        set_keys: Mapping[str, Any],
        delete_keys: Sequence[str],
    ) -> None:
        """Delete ``delete_keys``, then set ``set_keys``, of a node's JSON column, in one UPDATE; bump ``mtime``.

        A key both deleted and set ends up set. Values are stored as given: ``None`` as JSON null, a dict replaces
        the dict that was there (nothing is merged).

        :raises StorageError: for a column that is not ``attributes`` or ``extras``, a key that is not a string,
            a value that is not JSON, a node that does not exist or whose column holds something else than an object.
        """
        if column not in JSON_COLUMNS:
            raise StorageError(f'Only the columns {" and ".join(JSON_COLUMNS)} of nodes can be patched, not {column!r}')
        node_id = check_ids([node_id], 'Node ids')[0]
        deleted = check_strings(delete_keys, f'Keys of {column} to delete')
        encoded: dict[str, str] = {}
        for key, value in set_keys.items():
            if not isinstance(key, str):
                raise StorageError(f'Keys of {column} to set must be strings, got {type(key).__name__} {key!r}')
            try:
                encoded[key] = dump_json(value)
            except BadValueError as exc:
                raise StorageError(f'The value of {column} key {key!r} of node {node_id} {exc}') from None
        if not encoded and not deleted:
            return
        parameters = {'id': node_id, **self.dialect.patch_parameters(encoded, deleted)}
        statement = text(self.dialect.patch_statement(column, bool(encoded))).bindparams(
            bindparam('now', utc_now(), type_=TZDateTime())
        )
        if connection.execute(statement, parameters).rowcount == 1:
            return
        table = Base.metadata.tables['db_dbnode']
        found = connection.execute(select(table.c[column]).where(table.c.id == node_id)).first()
        if found is None:
            raise StorageError(f'No node with id {node_id}: its {column} were not changed')
        raise StorageError(f'The {column} of node {node_id} are not a JSON object: {type(found[0]).__name__}')

    def get_links(
        self, connection: Connection, node_ids: Sequence[Any], incoming: bool, link_types: Sequence[str] | None
    ) -> list[Row]:
        """Return the links ending at (``incoming``) or starting from any of ``node_ids``, of the given types."""
        ids = check_ids(node_ids, 'Node ids')
        types = None if link_types is None else check_strings(link_types, 'Link types')
        if not ids or types == []:
            return []
        table = Base.metadata.tables['db_dblink']
        end = table.c.output_id if incoming else table.c.input_id
        statement = select(table).where(self.dialect.in_values(end, 'int', ids))
        if types is not None:
            statement = statement.where(self.dialect.in_values(table.c.type, 'str', types))
        return [dict(row._mapping) for row in connection.execute(statement)]

    def add_group_nodes(self, connection: Connection, group_id: int, node_ids: Sequence[Any]) -> None:
        """Add nodes to a group in one statement; nodes already in it (or repeated) are skipped.

        :raises StorageError: if the group or any of the nodes does not exist (nothing is added).
        """
        group_id, ids = self._check_group(connection, group_id, node_ids)
        if not ids:
            return
        missing = list(
            connection.execute(
                text(
                    f'SELECT id FROM ({self.dialect.id_set("ids")}) AS given '
                    'WHERE NOT EXISTS (SELECT 1 FROM db_dbnode WHERE db_dbnode.id = given.id)'
                ),
                {'ids': self.dialect.list_parameter(ids)},
            ).scalars()
        )
        if missing:
            raise StorageError(f'No node with id {shown(sorted(missing))}: no node was added to group {group_id}')
        connection.execute(
            text(self.dialect.add_group_nodes_statement()),
            {'group_id': group_id, 'ids': self.dialect.list_parameter(ids)},
        )

    def remove_group_nodes(self, connection: Connection, group_id: int, node_ids: Sequence[Any]) -> None:
        """Remove nodes from a group in one statement; nodes not in it are ignored.

        :raises StorageError: if the group does not exist.
        """
        group_id, ids = self._check_group(connection, group_id, node_ids)
        if ids:
            table = Base.metadata.tables['db_dbgroup_dbnodes']
            connection.execute(
                delete(table).where(
                    table.c.dbgroup_id == group_id, self.dialect.in_values(table.c.dbnode_id, 'int', ids)
                )
            )

    def _check_group(self, connection: Connection, group_id: Any, node_ids: Sequence[Any]) -> tuple[int, list[int]]:
        """Return the group id and the node ids, checked.

        :raises StorageError: if the group does not exist or an id is not an integer.
        """
        group_id = check_ids([group_id], 'Group ids')[0]
        ids = check_ids(node_ids, 'Node ids')
        table = Base.metadata.tables['db_dbgroup']
        if connection.execute(select(table.c.id).where(table.c.id == group_id)).first() is None:
            raise StorageError(f'No group with id {group_id}')
        return group_id, ids

    def traverse(
        self,
        connection: Connection,
        start: Sequence[Any],
        forward: Sequence[str],
        backward: Sequence[str],
        max_depth: int | None,
    ) -> set[int]:
        """Return the nodes reachable from ``start`` (those that exist, included) in one recursive query."""
        ids = check_ids(start, 'Start node ids')
        forward = check_strings(forward, 'Forward link types')
        backward = check_strings(backward, 'Backward link types')
        if max_depth is not None and (not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0):
            raise StorageError(
                f'The maximum depth of a traversal must be a non-negative integer or None: {max_depth!r}'
            )
        if not ids:
            return set()
        node = Base.metadata.tables['db_dbnode']
        limited = max_depth is not None
        seeds = select(*seed(literal(0, Integer()), node.c.id, limited)).where(
            self.dialect.in_values(node.c.id, 'int', ids)
        )
        reached = reach(self.dialect, seeds, forward=forward, backward=backward, max_depth=max_depth)
        return set(connection.execute(select(reached.c.reached_id).distinct()).scalars())

    def delete_nodes(self, connection: Connection, node_ids: Sequence[Any]) -> None:
        """Delete nodes, their group memberships, links in and out, comments and logs: one statement per table.

        What refers to the nodes goes first, so the order is right whether foreign keys are checked at once or at
        commit (they are deferred on both dialects).
        """
        ids = check_ids(node_ids, 'Node ids')
        if not ids:
            return
        tables = Base.metadata.tables
        references = [
            NODE_FILE.c.node_id,
            tables['db_dbgroup_dbnodes'].c.dbnode_id,
            tables['db_dblink'].c.input_id,
            tables['db_dblink'].c.output_id,
            tables['db_dbcomment'].c.dbnode_id,
            tables['db_dblog'].c.dbnode_id,
            tables['db_dbnode'].c.id,
        ]
        for column in references:
            connection.execute(delete(column.table).where(self.dialect.in_values(column, 'int', ids)))


def _json_text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValueError(f'must be JSON text, got {type(value).__name__}')
    return value


def _time_text(value: Any) -> str:
    try:
        return canonical_time_text(value)
    except ValueError as exc:
        raise BadValueError(f'must be a time in text form: {exc}') from None


def _as_json_text_default(default: Callable[[], Any]) -> Callable[[], str]:
    return lambda: dump_json(default())


_TEXT_CHECKS: dict[Kind, Callable[[Any], Any]] = {**CHECKS, 'json': _json_text, 'time': _time_text}
"""The checks of :data:`~provstore_psql_dos.tables.CHECKS` for rows in text form."""
