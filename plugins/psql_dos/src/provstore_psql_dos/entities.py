"""The SQL behind :class:`~provstore.storage.EntityStorage` for both dialects: rows in, rows out, set-based.

This module imports SQLAlchemy: :class:`~provstore_psql_dos.base.DosStorageBackend` imports it on first use.

Every list of values (ids, uuids, link types) goes to the database as *one* bind parameter: a PostgreSQL array
(``column = ANY(CAST(:values AS integer[]))``) or, on SQLite, a JSON document read with ``json_each``
(``column IN (SELECT value FROM json_each(:values))``), so that no list is limited by the number of bind
parameters a statement may have. Rows are checked and completed (defaults) here, in Python, the same way for both
dialects, before any SQL runs: the same rows give the same errors and store the same values on both.
"""

from __future__ import annotations

import abc
import datetime
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnDefault,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from provstore.exceptions import StorageError
from provstore.storage import EntityType, Row
from provstore_psql_dos.models import Base, TZDateTime, UUIDString, utc_now

__all__ = [
    'BYTES_PER_STATEMENT',
    'INSERT_DEFAULTS',
    'ROWS_PER_STATEMENT',
    'SQLITE_MINIMUM',
    'TABLES',
    'UPDATE_DEFAULTS',
    'EntitySql',
    'entity_sql',
]

TABLES: dict[EntityType, str] = {
    EntityType.USER: 'db_dbuser',
    EntityType.COMPUTER: 'db_dbcomputer',
    EntityType.AUTHINFO: 'db_dbauthinfo',
    EntityType.NODE: 'db_dbnode',
    EntityType.LINK: 'db_dblink',
    EntityType.GROUP: 'db_dbgroup',
    EntityType.GROUP_NODE: 'db_dbgroup_dbnodes',
    EntityType.COMMENT: 'db_dbcomment',
    EntityType.LOG: 'db_dblog',
}
"""The table of each entity type."""

ROWS_PER_STATEMENT = 10_000
"""The most rows one INSERT or UPDATE statement carries; larger batches take several statements."""

BYTES_PER_STATEMENT = 32 * 1024 * 1024
"""On PostgreSQL rows travel as one JSON document per statement; a statement is closed once its document is this big."""

INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
"""The range of the integer columns (``integer`` on PostgreSQL; SQLite's are wider, but values must suit both)."""

SQLITE_MINIMUM = (3, 35, 0)
"""The oldest SQLite the statements work with: RETURNING (3.35), several recursive SELECTs in one query (3.34)."""

JSON_COLUMNS = ('attributes', 'extras')
"""The JSON columns of a node that :meth:`EntitySql.patch_node_json` changes."""

Kind = Literal['int', 'bool', 'str', 'uuid', 'time', 'json']
"""What a column holds: ``int``, ``bool``, ``str``, ``uuid`` (a string), ``time`` (a datetime) or ``json``."""


def _kind(type_: TypeEngine[Any]) -> Kind:
    """Return the kind of values a column of type ``type_`` holds."""
    if isinstance(type_, UUIDString):
        return 'uuid'
    if isinstance(type_, TZDateTime):
        return 'time'
    if isinstance(type_, Boolean):
        return 'bool'
    if isinstance(type_, Integer):
        return 'int'
    if isinstance(type_, String):
        return 'str'
    if isinstance(type_, JSON):
        return 'json'
    raise TypeError(f'No kind for column type {type_!r}')  # pragma: no cover - every model column has one


def _default_factory(default: ColumnDefault) -> Callable[[], Any]:
    """Return a function of no argument giving the value of a model's client-side column default."""
    argument = default.arg
    if default.is_callable:
        # NOTE: SQLAlchemy wraps a default callable to take an execution context; the models' defaults ignore it.
        return functools.partial(argument, None)
    return lambda: argument


def _client_defaults(table: Table, on_update: bool) -> dict[str, Callable[[], Any]]:
    """Return the client-side defaults (``on_update``: on-update values) the models declare for ``table``."""
    defaults: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        default = column.onupdate if on_update else column.default
        if not column.primary_key and isinstance(default, ColumnDefault):
            defaults[column.name] = _default_factory(default)
    return defaults


INSERT_DEFAULTS: dict[str, dict[str, Callable[[], Any]]] = {
    name: _client_defaults(Base.metadata.tables[name], on_update=False) for name in TABLES.values()
}
"""The value of each column a row to insert may omit, per table: a function giving it.

Taken from the models, the one place where the defaults of aiida-core live (``{}`` for the JSON columns of nodes,
groups, computers, authinfos and logs; ``''`` for labels, descriptions and user names; now for times; a new uuid).
One insert gives all its rows the same time.
"""

UPDATE_DEFAULTS: dict[str, dict[str, Callable[[], Any]]] = {
    name: _client_defaults(Base.metadata.tables[name], on_update=True) for name in TABLES.values()
}
"""The columns an update sets when its rows do not (the ``mtime`` of nodes and comments: now), per table."""


@dataclass(frozen=True)
class TableInfo:
    """What the entity methods need to know about one table."""

    entity: EntityType
    table: Table
    kinds: dict[str, Kind]
    """The kind of every column but ``id``, in the table's order."""
    nullable: frozenset[str]
    defaults: dict[str, Callable[[], Any]]
    on_update: dict[str, Callable[[], Any]]

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    def check_column(self, column: str) -> Kind:
        """Return the kind of ``column`` (``id`` included).

        :raises StorageError: naming the column and the table, if the table has no such column.
        """
        if column == 'id':
            return 'int'
        try:
            return self.kinds[column]
        except (KeyError, TypeError):
            raise StorageError(
                f'Table {self.name} ({self.entity.value}) has no column {column!r}; its columns are: id, '
                f'{", ".join(self.kinds)}'
            ) from None


@functools.cache
def table_info(entity: EntityType) -> TableInfo:
    """Return what the entity methods need to know about the table of ``entity``."""
    table = Base.metadata.tables[TABLES[entity]]
    columns = [column for column in table.columns if column.name != 'id']
    return TableInfo(
        entity=entity,
        table=table,
        kinds={column.name: _kind(column.type) for column in columns},
        nullable=frozenset(column.name for column in columns if column.nullable),
        defaults=INSERT_DEFAULTS[table.name],
        on_update=UPDATE_DEFAULTS[table.name],
    )


# -- values ---------------------------------------------------------------------------------------------------------


_UUID_PATTERN = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
"""A uuid as the columns store it: dashed, lower case."""

_JSON_ENCODER = json.JSONEncoder(allow_nan=False)
"""The JSON encoder of values written to JSON columns: ``json.dumps``'s settings, without NaN and infinities."""


class _BadValueError(Exception):
    """A value does not suit its column (the message says why); turned into a StorageError naming row and column."""


def _as_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadValueError(f'must be an integer, got {type(value).__name__} {value!r}')
    if not INTEGER_MIN <= value <= INTEGER_MAX:
        raise _BadValueError(f'must be an integer from {INTEGER_MIN} to {INTEGER_MAX}, got {value}')
    return value


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadValueError(f'must be a boolean, got {type(value).__name__} {value!r}')
    return value


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _BadValueError(f'must be a string, got {type(value).__name__} {value!r}')
    return value


def _as_uuid(value: Any) -> str:
    if isinstance(value, str) and _UUID_PATTERN.fullmatch(value):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise _BadValueError(f'must be a uuid, got {type(value).__name__} {value!r}') from None


def _as_time(value: Any) -> datetime.datetime:
    if type(value) is datetime.datetime and value.tzinfo is datetime.timezone.utc:
        return value
    if not isinstance(value, datetime.datetime):
        raise _BadValueError(f'must be a datetime, got {type(value).__name__} {value!r}')
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


_CHECKS: dict[Kind, Callable[[Any], Any]] = {
    'int': _as_int,
    'bool': _as_bool,
    'str': _as_str,
    'uuid': _as_uuid,
    'time': _as_time,
    'json': lambda value: value,
}
"""Per kind of column: a function returning a value in the form the column stores (a dashed lower-case uuid, an
aware UTC time), raising :class:`_BadValueError` with the reason if the value does not suit the column. A naive
time is taken to be UTC."""


def _check_value(kind: Kind, value: Any) -> Any:
    """Return ``value`` checked and converted for a column of ``kind`` (see :data:`_CHECKS`)."""
    return _CHECKS[kind](value)


def _dump_json(value: Any) -> str:
    """Return ``value`` as JSON text, the way SQLAlchemy writes JSON columns.

    :raises _BadValueError: if it is not JSON (NaN and infinities are not).
    """
    if type(value) is dict and not value:
        return '{}'  # NOTE: most extras and repository_metadata: not worth the encoder
    try:
        return _JSON_ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise _BadValueError(f'is not JSON: {exc}') from None


def _check_ids(ids: Iterable[Any], what: str) -> list[int]:
    """Return ``ids`` as a list, after checking that each is an integer.

    :raises StorageError: naming ``what`` and the first value that is not an integer.
    """
    checked = list(ids)
    for value in checked:
        try:
            _as_int(value)
        except _BadValueError as exc:
            raise StorageError(f'{what} {str(exc).replace("must be an integer", "must be integers", 1)}') from None
    return checked


def _check_strings(values: Iterable[Any], what: str) -> list[str]:
    """Return ``values`` as a list, after checking that each is a string.

    :raises StorageError: naming ``what`` and the first value that is not a string.
    """
    checked = list(values)
    for value in checked:
        if not isinstance(value, str):
            raise StorageError(f'{what} must be strings, got {type(value).__name__} {value!r}')
    return checked


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield consecutive slices of ``items`` of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _shown(values: Sequence[Any], limit: int = 10) -> str:
    """Return the first ``limit`` values, comma separated, with ``...`` when there are more."""
    return ', '.join(str(value) for value in values[:limit]) + (', ...' if len(values) > limit else '')


_HEX_DIGITS = frozenset('0123456789abcdef')


def _uuid_bounds(prefix: str, where: str) -> tuple[str, str]:
    """Return the lowest and highest dashed uuids starting with the hex digits of ``prefix`` (dashes ignored).

    :raises StorageError: naming ``where``, if ``prefix`` has characters other than hex digits and dashes, or more
        than 32 digits.
    """
    digits = prefix.replace('-', '').lower()
    if not _HEX_DIGITS.issuperset(digits) or len(digits) > 32:
        raise StorageError(f'A uuid prefix of {where} must be at most 32 hex digits (dashes allowed), got {prefix!r}')

    def dashed(value: str) -> str:
        return f'{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}'

    return dashed(digits.ljust(32, '0')), dashed(digits.ljust(32, 'f'))


def _successor(prefix: str) -> str | None:
    """Return the smallest string above every string starting with ``prefix`` (by code point), ``None`` if none is."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000  # surrogates are not characters of stored text
    return stripped[:-1] + chr(following)


# -- the statements -------------------------------------------------------------------------------------------------


class EntitySql(abc.ABC):
    """The statements of the entity methods for one dialect; every method runs on a connection it is given.

    The caller (the storage backend) owns transactions: these methods neither begin nor commit.
    """

    dialect: ClassVar[str]

    def __init__(self) -> None:
        self._convert = {**_CHECKS, **self._bind_forms()}
        self._plans: dict[EntityType, list[tuple[str, Callable[[Any], Any], Callable[[], Any] | None, bool]]] = {}

    # -- what differs between dialects ----------------------------------------------------------------------------

    @abc.abstractmethod
    def in_values(self, column: ColumnElement[Any], kind: Kind, values: Sequence[Any]) -> ColumnElement[bool]:
        """Return the condition ``column`` is one of ``values`` (checked values of ``kind``), with one parameter."""

    @abc.abstractmethod
    def id_set(self, name: str) -> str:
        """Return SQL selecting the integers of the list parameter ``name`` as one column ``id``."""

    @abc.abstractmethod
    def list_parameter(self, values: Sequence[Any]) -> Any:
        """Return the value of a list parameter used by :meth:`id_set`."""

    @abc.abstractmethod
    def starts_with(self, column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        """Return the condition the text ``column`` starts with ``prefix`` (non-empty), exactly, using its index."""

    def _bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        """Return, for the kinds the dialect's statements bind differently, a function checking and converting."""
        return {}

    @abc.abstractmethod
    def _insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        """Insert checked rows holding every column but ``id`` in one statement; return their ids in order."""

    @abc.abstractmethod
    def _update_group(
        self, connection: Connection, info: TableInfo, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> int:
        """Set ``columns`` of checked rows (each with ``id`` and ``columns``); return how many rows were found."""

    @abc.abstractmethod
    def _patch_statement(self, column: str, has_sets: bool) -> str:
        """Return the UPDATE patching JSON column ``column`` of node ``:id`` (parameters ``:remove``, ``:set``)."""

    @abc.abstractmethod
    def _patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        """Return the ``:remove`` and ``:set`` parameters of :meth:`_patch_statement` for JSON-encoded values."""

    @abc.abstractmethod
    def _add_group_nodes_statement(self) -> str:
        """Return the INSERT adding nodes ``:ids`` to group ``:group_id``, skipping those already in it."""

    # -- rows -----------------------------------------------------------------------------------------------------

    def insert_rows(self, connection: Connection, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        """Insert rows (defaults filled in) in one statement per :data:`ROWS_PER_STATEMENT`; return ids in order."""
        info = table_info(entity)
        now = utc_now()
        ids: list[int] = []
        for chunk in _chunks(rows, self._rows_per_insert(info)):
            checked = [self._complete_row(info, row, index, now) for index, row in enumerate(chunk, start=len(ids))]
            ids.extend(self._insert_chunk(connection, info, checked))
        return ids

    def _rows_per_insert(self, info: TableInfo) -> int:
        """Return how many rows of ``info``'s table one INSERT statement carries."""
        return ROWS_PER_STATEMENT

    def one_insert_statement(self, entity: EntityType, count: int) -> bool:
        """Return whether :meth:`insert_rows` surely inserts ``count`` rows of ``entity`` with one statement."""
        return count == 1

    def _plan(self, info: TableInfo) -> list[tuple[str, Callable[[Any], Any], Callable[[], Any] | None, bool]]:
        """Return, per column but ``id``: its name, its converter, its default (or ``None``), whether it is nullable.

        The default of a time column is ``None`` here: :meth:`_complete_row` gives the time of the insert instead.
        """
        plan = self._plans.get(info.entity)
        if plan is None:
            plan = [
                (
                    column,
                    self._convert[kind],
                    None if kind == 'time' else info.defaults.get(column),
                    column in info.nullable,
                )
                for column, kind in info.kinds.items()
            ]
            self._plans[info.entity] = plan
        return plan

    def _complete_row(self, info: TableInfo, row: Row, index: int, now: datetime.datetime) -> dict[str, Any]:
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
        for column, convert, default, nullable in self._plan(info):
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
            except _BadValueError as exc:
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
        except _BadValueError as exc:
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
            row_id = _check_ids([row['id']], f'The ids of rows to update in {info.name}')[0]
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
            for chunk in _chunks(group, ROWS_PER_STATEMENT):
                found += self._update_group(connection, info, group_columns, list(chunk))
        wanted = sum(len(group) for group in groups.values())
        if found != wanted:
            ids = [row['id'] for group in groups.values() for row in group]
            existing = {row['id'] for row in self.get_rows(connection, entity, 'id', ids)}
            missing = sorted(set(ids) - existing)
            raise StorageError(f'No {entity.value} with id {_shown(missing)} in {info.name}: nothing was updated')

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
                checked.append(_check_value(kind, value))
            except _BadValueError as exc:
                raise StorageError(f'Looking up rows of {info.name} by {column!r}: a value {exc}') from None
        if not checked:
            return []
        table = info.table
        statement = select(table).where(self.in_values(table.c[column], kind, checked))
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
            low, high = _uuid_bounds(prefix, f'{info.name}.{column}')
            conditions.append(table.c[column].between(low, high))
        elif kind != 'str':
            raise StorageError(
                f'Column {column!r} of {info.name} is not text or a uuid: rows cannot be found by a prefix of it'
            )
        elif prefix:
            conditions.append(self.starts_with(table.c[column], prefix))
        for name, value in (equal or {}).items():
            equal_kind = info.check_column(name)
            if equal_kind == 'json':
                raise StorageError(f'Column {name!r} of {info.name} holds JSON: rows cannot be looked up by it')
            if value is None:
                conditions.append(table.c[name].is_(None))
                continue
            try:
                conditions.append(table.c[name] == _check_value(equal_kind, value))
            except _BadValueError as exc:
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

    def count_rows(self, connection: Connection, entity: EntityType) -> int:
        """Return the number of rows of the entity's table."""
        table = table_info(entity).table
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    def delete_rows(self, connection: Connection, entity: EntityType, ids: Sequence[Any]) -> None:
        """Delete rows by id, in one statement."""
        info = table_info(entity)
        checked = _check_ids(ids, f'The ids of rows to delete from {info.name}')
        if checked:
            connection.execute(delete(info.table).where(self.in_values(info.table.c.id, 'int', checked)))

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
        node_id = _check_ids([node_id], 'Node ids')[0]
        deleted = _check_strings(delete_keys, f'Keys of {column} to delete')
        encoded: dict[str, str] = {}
        for key, value in set_keys.items():
            if not isinstance(key, str):
                raise StorageError(f'Keys of {column} to set must be strings, got {type(key).__name__} {key!r}')
            try:
                encoded[key] = _dump_json(value)
            except _BadValueError as exc:
                raise StorageError(f'The value of {column} key {key!r} of node {node_id} {exc}') from None
        if not encoded and not deleted:
            return
        parameters = {'id': node_id, **self._patch_parameters(encoded, deleted)}
        statement = text(self._patch_statement(column, bool(encoded))).bindparams(
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
        ids = _check_ids(node_ids, 'Node ids')
        types = None if link_types is None else _check_strings(link_types, 'Link types')
        if not ids or types == []:
            return []
        table = Base.metadata.tables['db_dblink']
        end = table.c.output_id if incoming else table.c.input_id
        statement = select(table).where(self.in_values(end, 'int', ids))
        if types is not None:
            statement = statement.where(self.in_values(table.c.type, 'str', types))
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
                    f'SELECT id FROM ({self.id_set("ids")}) AS given '
                    'WHERE NOT EXISTS (SELECT 1 FROM db_dbnode WHERE db_dbnode.id = given.id)'
                ),
                {'ids': self.list_parameter(ids)},
            ).scalars()
        )
        if missing:
            raise StorageError(f'No node with id {_shown(sorted(missing))}: no node was added to group {group_id}')
        connection.execute(
            text(self._add_group_nodes_statement()), {'group_id': group_id, 'ids': self.list_parameter(ids)}
        )

    def remove_group_nodes(self, connection: Connection, group_id: int, node_ids: Sequence[Any]) -> None:
        """Remove nodes from a group in one statement; nodes not in it are ignored.

        :raises StorageError: if the group does not exist.
        """
        group_id, ids = self._check_group(connection, group_id, node_ids)
        if ids:
            table = Base.metadata.tables['db_dbgroup_dbnodes']
            connection.execute(
                delete(table).where(table.c.dbgroup_id == group_id, self.in_values(table.c.dbnode_id, 'int', ids))
            )

    def _check_group(self, connection: Connection, group_id: Any, node_ids: Sequence[Any]) -> tuple[int, list[int]]:
        """Return the group id and the node ids, checked.

        :raises StorageError: if the group does not exist or an id is not an integer.
        """
        group_id = _check_ids([group_id], 'Group ids')[0]
        ids = _check_ids(node_ids, 'Node ids')
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
        ids = _check_ids(start, 'Start node ids')
        forward = _check_strings(forward, 'Forward link types')
        backward = _check_strings(backward, 'Backward link types')
        if max_depth is not None and (not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0):
            raise StorageError(
                f'The maximum depth of a traversal must be a non-negative integer or None: {max_depth!r}'
            )
        if not ids:
            return set()
        from provstore_psql_dos.traversal import reach, seed  # noqa: PLC0415 - the traversal imports this module

        node = Base.metadata.tables['db_dbnode']
        limited = max_depth is not None
        seeds = select(*seed(literal(0, Integer()), node.c.id, limited)).where(self.in_values(node.c.id, 'int', ids))
        reached = reach(self, seeds, forward=forward, backward=backward, max_depth=max_depth)
        return set(connection.execute(select(reached.c.reached_id).distinct()).scalars())

    def delete_nodes(self, connection: Connection, node_ids: Sequence[Any]) -> None:
        """Delete nodes, their group memberships, links in and out, comments and logs: one statement per table.

        What refers to the nodes goes first, so the order is right whether foreign keys are checked at once or at
        commit (they are deferred on both dialects).
        """
        ids = _check_ids(node_ids, 'Node ids')
        if not ids:
            return
        tables = Base.metadata.tables
        references = [
            tables['db_dbgroup_dbnodes'].c.dbnode_id,
            tables['db_dblink'].c.input_id,
            tables['db_dblink'].c.output_id,
            tables['db_dbcomment'].c.dbnode_id,
            tables['db_dblog'].c.dbnode_id,
            tables['db_dbnode'].c.id,
        ]
        for column in references:
            connection.execute(delete(column.table).where(self.in_values(column, 'int', ids)))


class PostgresEntitySql(EntitySql):
    """PostgreSQL: lists as typed arrays, rows as one JSON document per statement (``json_populate_recordset``)."""

    dialect = 'postgresql'

    def in_values(self, column: ColumnElement[Any], kind: Kind, values: Sequence[Any]) -> ColumnElement[bool]:
        # NOTE: strings are compared as text: a cast to varchar(255) would cut a longer value and find its prefix.
        item_type: TypeEngine[Any] = Text() if kind == 'str' else column.type
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(item_type)))

    def id_set(self, name: str) -> str:
        return f'SELECT unnest(CAST(:{name} AS integer[])) AS id'

    def list_parameter(self, values: Sequence[Any]) -> Any:
        return list(values)

    def starts_with(self, column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        # NOTE: LIKE with its wildcards (and the escape character, PostgreSQL's default backslash) escaped: a fixed
        # prefix, which the ix_pat_* indexes (varchar_pattern_ops) answer whatever the database's collation.
        escaped = prefix.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
        return column.like(bindparam(None, escaped + '%', type_=Text()))

    def _bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        # NOTE: a time goes into the JSON document in ISO form, with its UTC offset: the server reads it exactly.
        return {'time': lambda value: _as_time(value).isoformat()}

    def _documents(self, info: TableInfo, rows: list[dict[str, Any]]) -> Iterator[str]:
        """Yield the rows as JSON documents (arrays of objects) of at most :data:`BYTES_PER_STATEMENT`."""
        parts: list[str] = []
        size = 0
        for index, row in enumerate(rows):
            try:
                part = _dump_json(row)
            except _BadValueError as exc:
                raise StorageError(f'Row {index} of {info.name}: a value {exc}') from None
            if parts and size + len(part) > BYTES_PER_STATEMENT:
                yield '[' + ','.join(parts) + ']'
                parts, size = [], 0
            parts.append(part)
            size += len(part) + 1
        if parts:
            yield '[' + ','.join(parts) + ']'

    def _insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        # NOTE: one parameter per statement, so no limit on bind parameters; ORDER BY the ordinality makes the
        # sequence give ids in the order of the rows (the assumption SQLAlchemy's own "insertmanyvalues" makes),
        # and sorting the returned ids restores that order.
        quote = connection.dialect.identifier_preparer.quote
        columns = ', '.join(quote(column) for column in info.kinds)
        selected = ', '.join(f'r.{quote(column)}' for column in info.kinds)
        statement = text(
            f'INSERT INTO {info.name} ({columns}) SELECT {selected} FROM json_populate_recordset(NULL::{info.name}, '
            'CAST(:rows AS json)) WITH ORDINALITY AS r ORDER BY r.ordinality RETURNING id'
        )
        ids: list[int] = []
        for document in self._documents(info, rows):
            ids.extend(sorted(connection.execute(statement, {'rows': document}).scalars()))
        return ids

    def _update_group(
        self, connection: Connection, info: TableInfo, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> int:
        quote = connection.dialect.identifier_preparer.quote
        assignments = ', '.join(f'{quote(column)} = r.{quote(column)}' for column in columns)
        statement = text(
            f'UPDATE {info.name} AS t SET {assignments} FROM json_populate_recordset(NULL::{info.name}, '
            'CAST(:rows AS json)) AS r WHERE t.id = r.id'
        )
        found = 0
        for document in self._documents(info, rows):
            found += connection.execute(statement, {'rows': document}).rowcount
        return found

    def _patch_statement(self, column: str, has_sets: bool) -> str:
        value = f"coalesce(nullif({column}, CAST('null' AS jsonb)), CAST('{{}}' AS jsonb)) - CAST(:remove AS text[])"
        if has_sets:
            value = f'({value}) || CAST(:set AS jsonb)'
        return (
            f'UPDATE db_dbnode SET {column} = {value}, mtime = :now '
            f"WHERE id = :id AND ({column} IS NULL OR jsonb_typeof({column}) IN ('object', 'null'))"
        )

    def _patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        members = ', '.join(f'{json.dumps(key)}: {value}' for key, value in set_keys.items())
        return {'remove': list(delete_keys), 'set': '{' + members + '}'}

    def _add_group_nodes_statement(self) -> str:
        return (
            f'INSERT INTO db_dbgroup_dbnodes (dbgroup_id, dbnode_id) SELECT DISTINCT :group_id, id FROM '
            f'({self.id_set("ids")}) AS given ON CONFLICT (dbgroup_id, dbnode_id) DO NOTHING'
        )


class SqliteEntitySql(EntitySql):
    """SQLite (3.35 or newer): lists as JSON documents read with ``json_each``, rows as multi-row VALUES."""

    dialect = 'sqlite'

    def __init__(self, max_parameters: int) -> None:
        """:param max_parameters: the most bind parameters one statement may have."""
        super().__init__()
        self.max_parameters = max_parameters
        self._processors: dict[str, list[tuple[str, Callable[[Any], Any] | None]]] = {}
        self._statements: dict[tuple[str, int], str] = {}

    def in_values(self, column: ColumnElement[Any], kind: Kind, values: Sequence[Any]) -> ColumnElement[bool]:
        # NOTE: values go through the column type's own conversion (a time becomes the text SQLite stores).
        dialect = _sqlite_dialect()
        processor = column.type.dialect_impl(dialect).bind_processor(dialect) if kind in ('time', 'bool') else None
        document = json.dumps([processor(value) for value in values] if processor else list(values))
        items = func.json_each(bindparam(None, document, type_=Text())).table_valued('value')
        return column.in_(select(items.c.value))

    def id_set(self, name: str) -> str:
        return f'SELECT value AS id FROM json_each(:{name})'

    def list_parameter(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    def starts_with(self, column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        # NOTE: a range, not LIKE: SQLite's LIKE ignores the case of ASCII letters and then cannot use the index;
        # text compares by code point (BINARY collation), so the range holds exactly the strings with the prefix.
        successor = _successor(prefix)
        at_least = column >= bindparam(None, prefix, type_=Text())
        return at_least if successor is None else at_least & (column < bindparam(None, successor, type_=Text()))

    def _bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        # NOTE: JSON is written as text here (bound as text below), so that None stays SQL NULL as on PostgreSQL.
        return {'json': _dump_json}

    def _bind_types(self, info: TableInfo, columns: Iterable[str]) -> dict[str, Any]:
        """Return a typed bind parameter per column: JSON columns take JSON text (see :meth:`_bind_forms`)."""
        table = info.table
        return {
            column: bindparam(column, type_=Text() if info.kinds[column] == 'json' else table.c[column].type)
            for column in columns
        }

    def _rows_per_insert(self, info: TableInfo) -> int:
        # NOTE: one bind parameter per value: a statement carries at most max_parameters of them.
        return max(1, min(ROWS_PER_STATEMENT, self.max_parameters // len(info.kinds)))

    def one_insert_statement(self, entity: EntityType, count: int) -> bool:
        return count <= self._rows_per_insert(table_info(entity))

    def _insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        # NOTE: one multi-row INSERT ... RETURNING, the values converted by the column types' own bind processors:
        # what SQLAlchemy's "insertmanyvalues" sends, without its work per row (a third of the time of a batch). In
        # the write transaction, SQLite gives each row max(id) + 1 in turn: the ids, sorted, are in row order.
        processors = self._insert_processors(info)
        parameters: list[Any] = []
        append = parameters.append
        for row in rows:
            for column, process in processors:
                value = row[column]
                append(value if process is None or value is None else process(value))
        result = connection.exec_driver_sql(self._insert_statement(info, len(rows)), tuple(parameters))
        return sorted(result.scalars())

    def _insert_processors(self, info: TableInfo) -> list[tuple[str, Callable[[Any], Any] | None]]:
        """Return each column but ``id`` with the function converting its values for the driver (JSON is text)."""
        processors = self._processors.get(info.name)
        if processors is None:
            dialect = _sqlite_dialect()
            processors = [
                (
                    column,
                    None if kind == 'json' else info.table.c[column].type.dialect_impl(dialect).bind_processor(dialect),
                )
                for column, kind in info.kinds.items()
            ]
            self._processors[info.name] = processors
        return processors

    def _insert_statement(self, info: TableInfo, count: int) -> str:
        """Return the INSERT of ``count`` rows of every column but ``id`` of ``info``'s table, returning the ids."""
        statement = self._statements.get((info.name, count))
        if statement is None:
            quote = _sqlite_dialect().identifier_preparer.quote
            row = '(' + ', '.join('?' for _ in info.kinds) + ')'
            statement = (
                f'INSERT INTO {info.name} ({", ".join(quote(column) for column in info.kinds)}) VALUES '
                f'{", ".join([row] * count)} RETURNING id'
            )
            if len(self._statements) >= 256:
                self._statements.clear()
            self._statements[(info.name, count)] = statement
        return statement

    def _update_group(
        self, connection: Connection, info: TableInfo, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> int:
        table = info.table
        statement = update(table).where(table.c.id == bindparam('id_')).values(self._bind_types(info, columns))
        parameters = [{**{column: row[column] for column in columns}, 'id_': row['id']} for row in rows]
        return int(connection.execute(statement, parameters).rowcount)

    def _patch_statement(self, column: str, has_sets: bool) -> str:
        # NOTE: keys are never written into JSON paths (SQLite before 3.45 cannot quote every key in a path, and
        # compares keys in their escaped form). json_patch removes the deleted and the set keys: a patch whose
        # values are null removes those keys (RFC 7396), whatever the characters in them; the set members, JSON text
        # made by Python, are then spliced into the object json_patch returns (compact, without those keys), and
        # json() checks the result. Null values and nested objects are kept exactly as given.
        patched = f"json_patch(coalesce(nullif(db_dbnode.{column}, 'null'), '{{}}'), :remove)"
        if has_sets:
            value = (
                f"(SELECT json(CASE WHEN p = '{{}}' THEN '{{' || :set || '}}' "
                f"ELSE substr(p, 1, length(p) - 1) || ',' || :set || '}}' END) FROM (SELECT {patched} AS p))"
            )
        else:
            value = patched
        return (
            f'UPDATE db_dbnode SET {column} = {value}, mtime = :now '
            f"WHERE id = :id AND ({column} IS NULL OR json_type({column}) IN ('object', 'null'))"
        )

    def _patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        removed = dict.fromkeys([*delete_keys, *set_keys])
        members = ', '.join(f'{json.dumps(key)}: {value}' for key, value in set_keys.items())
        return {'remove': json.dumps(removed), 'set': members}

    def _add_group_nodes_statement(self) -> str:
        # NOTE: "WHERE true" keeps SQLite from reading ON CONFLICT as the ON of a join.
        return (
            'INSERT INTO db_dbgroup_dbnodes (dbgroup_id, dbnode_id) SELECT DISTINCT :group_id, value FROM '
            'json_each(:ids) WHERE true ON CONFLICT (dbgroup_id, dbnode_id) DO NOTHING'
        )


@functools.cache
def _sqlite_dialect() -> Any:
    """Return an SQLite dialect, for the bind processors of column types."""
    from sqlalchemy.dialects.sqlite import dialect  # noqa: PLC0415 - only for SQLite

    return dialect()


def entity_sql(connection_dialect: Any) -> EntitySql:
    """Return the statements for the dialect of an engine (``engine.dialect``).

    :raises StorageError: if the SQLite library is older than :data:`SQLITE_MINIMUM` (it lacks what they use).
    """
    if connection_dialect.name == 'postgresql':
        return PostgresEntitySql()
    if connection_dialect.name == 'sqlite':
        version = tuple(connection_dialect.dbapi.sqlite_version_info)
        if version < SQLITE_MINIMUM:
            raise StorageError(
                f'sqlite_dos needs SQLite {".".join(map(str, SQLITE_MINIMUM))} or newer (RETURNING, JSON functions, '
                f'recursive queries with several steps), but Python uses SQLite {".".join(map(str, version))}: use a '
                'Python built with a newer SQLite'
            )
        return SqliteEntitySql(int(connection_dialect.insertmanyvalues_max_parameters))
    raise StorageError(f'No entity statements for the {connection_dialect.name} dialect')  # pragma: no cover
