"""The rules every stored value follows on every backend, checked by the ORM before anything is written.

aiida-core's PostgreSQL schema is the common ground: an archive made on one backend must import into the other and
into aiida-core. So, whatever the backend:

- no string (column, JSON string or JSON key) holds a NUL character: PostgreSQL's ``text`` and ``jsonb`` refuse it;
- no integer in JSON lies outside the signed 64-bit range: SQLite cannot compare such a number and PostgreSQL's
  JSON comparisons would treat it unlike SQLite's;
- no text is longer than its column in aiida-core's schema (``varchar(255)`` for labels, ...), which SQLite would
  not enforce.

A value breaking a rule raises :class:`~provstore.exceptions.ValidationError` naming the entity, the field and the
path inside JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provstore.exceptions import ValidationError
from provstore.storage import EntityType

__all__ = ['COLUMN_LENGTHS', 'MAX_INT64', 'MIN_INT64', 'check_json_value', 'check_rows', 'describe_int']

MIN_INT64 = -(2**63)
"""The smallest integer both databases store and compare."""

MAX_INT64 = 2**63 - 1
"""The largest integer both databases store and compare."""

COLUMN_LENGTHS: dict[EntityType, dict[str, int]] = {
    EntityType.USER: {'email': 254, 'first_name': 254, 'last_name': 254, 'institution': 254},
    EntityType.COMPUTER: {'label': 255, 'hostname': 255, 'scheduler_type': 255, 'transport_type': 255},
    EntityType.NODE: {'node_type': 255, 'process_type': 255, 'label': 255},
    EntityType.LINK: {'label': 255, 'type': 255},
    EntityType.GROUP: {'label': 255, 'type_string': 255},
    EntityType.LOG: {'loggername': 255, 'levelname': 50},
}
"""The most characters each limited text column holds, as aiida-core 2.x's schema declares them."""


def describe_int(value: int) -> str:
    """Return ``value`` for a message: itself when short, else its size (Python refuses to print huge integers)."""
    if value.bit_length() <= 128:
        return str(value)
    return f'an integer of {value.bit_length()} bits'


def check_rows(entity: EntityType, rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise :class:`ValidationError` for the first value of ``rows`` (of table ``entity``) that breaks a rule.

    Text columns are checked for NUL characters and their length, integers for the 64-bit range, JSON columns
    (dicts and lists) throughout.
    """
    limits = COLUMN_LENGTHS.get(entity, {})
    for row in rows:
        for column, value in row.items():
            kind = type(value)
            if kind is str:
                limit = limits.get(column)
                if '\x00' in value or (limit is not None and len(value) > limit):
                    _refuse_text(_subject(entity, row), column, value, limit)
            elif kind is int or kind is dict or kind is list:
                if not _json_ok(value):
                    check_json_value(value, f'{_subject(entity, row)}: {column}')
            elif kind is not bool and isinstance(value, (str, int, Mapping, list, tuple)):
                check_json_value(value, f'{_subject(entity, row)}: {column}')


def check_json_value(value: Any, where: str) -> None:
    """Raise :class:`ValidationError` naming ``where`` and the path of the first value that breaks a rule."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return
    if isinstance(value, str):
        if '\x00' in value:
            raise ValidationError(f'{where} contains a NUL character (\\x00), which PostgreSQL cannot store')
        return
    if isinstance(value, int):
        if not MIN_INT64 <= value <= MAX_INT64:
            raise ValidationError(
                f'{where} is {describe_int(value)}, outside the signed 64-bit range that every backend stores and '
                'queries alike'
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and '\x00' in key:
                raise ValidationError(
                    f'{where}: the key {key!r} contains a NUL character (\\x00), which PostgreSQL cannot store'
                )
            check_json_value(item, f'{where}.{key}')
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json_value(item, f'{where}[{index}]')


def _json_ok(value: Any) -> bool:
    """Whether the JSON ``value`` follows every rule: the fast path, which says nothing about where it does not."""
    kind = type(value)
    if kind is str:
        return '\x00' not in value
    if kind is int:
        return bool(MIN_INT64 <= value <= MAX_INT64)
    if kind is dict:
        return all(type(key) is str and '\x00' not in key and _json_ok(item) for key, item in value.items())
    if kind is list:
        return all(_json_ok(item) for item in value)
    return kind is bool or kind is float or value is None


def _subject(entity: EntityType, row: Mapping[str, Any]) -> str:
    """Name the entity of ``row`` in a message: its kind and uuid (or pk) when the row has them."""
    for column in ('uuid', 'id'):
        identity = row.get(column)
        if isinstance(identity, str) or (type(identity) is int and MIN_INT64 <= identity <= MAX_INT64):
            return f'{entity.value} {identity}'
    return entity.value


def _refuse_text(subject: str, column: str, value: str, limit: int | None) -> None:
    if '\x00' in value:
        raise ValidationError(f'{subject}: {column} contains a NUL character (\\x00), which PostgreSQL cannot store')
    raise ValidationError(
        f"{subject}: {column} has {len(value)} characters, more than the {limit} its column holds (aiida-core's schema)"
    )
