"""The tables of the entities and the checks of their values: what the entity statements of both dialects share.

Rows are checked and completed (defaults) here, in Python, the same way for both dialects, before any SQL runs: the
same rows give the same errors and store the same values on both.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnDefault,
    Integer,
    String,
    Table,
)
from sqlalchemy.types import TypeEngine

from provstore.exceptions import StorageError
from provstore.storage import EntityType
from provstore_psql_dos.models import Base, TZDateTime, UUIDString

__all__ = [
    'BYTES_PER_STATEMENT',
    'CHECKS',
    'INSERT_DEFAULTS',
    'JSON_COLUMNS',
    'ROWS_PER_STATEMENT',
    'TABLES',
    'UPDATE_DEFAULTS',
    'BadValueError',
    'Kind',
    'TableInfo',
    'as_time',
    'check_ids',
    'check_strings',
    'check_value',
    'chunks',
    'dump_json',
    'prefix_successor',
    'shown',
    'table_info',
    'uuid_bounds',
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


class BadValueError(Exception):
    """A value does not suit its column (the message says why); turned into a StorageError naming row and column."""


def _as_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadValueError(f'must be an integer, got {type(value).__name__} {value!r}')
    if not INTEGER_MIN <= value <= INTEGER_MAX:
        raise BadValueError(f'must be an integer from {INTEGER_MIN} to {INTEGER_MAX}, got {value}')
    return value


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadValueError(f'must be a boolean, got {type(value).__name__} {value!r}')
    return value


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValueError(f'must be a string, got {type(value).__name__} {value!r}')
    return value


def _as_uuid(value: Any) -> str:
    if isinstance(value, str) and _UUID_PATTERN.fullmatch(value):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise BadValueError(f'must be a uuid, got {type(value).__name__} {value!r}') from None


def as_time(value: Any) -> datetime.datetime:
    if type(value) is datetime.datetime and value.tzinfo is datetime.timezone.utc:
        return value
    if not isinstance(value, datetime.datetime):
        raise BadValueError(f'must be a datetime, got {type(value).__name__} {value!r}')
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


CHECKS: dict[Kind, Callable[[Any], Any]] = {
    'int': _as_int,
    'bool': _as_bool,
    'str': _as_str,
    'uuid': _as_uuid,
    'time': as_time,
    'json': lambda value: value,
}
"""Per kind of column: a function returning a value in the form the column stores (a dashed lower-case uuid, an
aware UTC time), raising :class:`BadValueError` with the reason if the value does not suit the column. A naive
time is taken to be UTC."""


def check_value(kind: Kind, value: Any) -> Any:
    """Return ``value`` checked and converted for a column of ``kind`` (see :data:`CHECKS`)."""
    return CHECKS[kind](value)


def dump_json(value: Any) -> str:
    """Return ``value`` as JSON text, the way SQLAlchemy writes JSON columns.

    :raises BadValueError: if it is not JSON (NaN and infinities are not).
    """
    if type(value) is dict and not value:
        return '{}'  # NOTE: most extras and repository_metadata: not worth the encoder
    try:
        return _JSON_ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise BadValueError(f'is not JSON: {exc}') from None


def check_ids(ids: Iterable[Any], what: str) -> list[int]:
    """Return ``ids`` as a list, after checking that each is an integer.

    :raises StorageError: naming ``what`` and the first value that is not an integer.
    """
    checked = list(ids)
    for value in checked:
        try:
            _as_int(value)
        except BadValueError as exc:
            raise StorageError(f'{what} {str(exc).replace("must be an integer", "must be integers", 1)}') from None
    return checked


def check_strings(values: Iterable[Any], what: str) -> list[str]:
    """Return ``values`` as a list, after checking that each is a string.

    :raises StorageError: naming ``what`` and the first value that is not a string.
    """
    checked = list(values)
    for value in checked:
        if not isinstance(value, str):
            raise StorageError(f'{what} must be strings, got {type(value).__name__} {value!r}')
    return checked


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Yield consecutive slices of ``items`` of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def shown(values: Sequence[Any], limit: int = 10) -> str:
    """Return the first ``limit`` values, comma separated, with ``...`` when there are more."""
    return ', '.join(str(value) for value in values[:limit]) + (', ...' if len(values) > limit else '')


_HEX_DIGITS = frozenset('0123456789abcdef')


def uuid_bounds(prefix: str, where: str) -> tuple[str, str]:
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


def prefix_successor(prefix: str) -> str | None:
    """Return the smallest string above every string starting with ``prefix`` (by code point), ``None`` if none is."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000  # surrogates are not characters of stored text
    return stripped[:-1] + chr(following)
