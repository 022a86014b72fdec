"""Rows in *text form*: the form an archive's SQLite database stores them in, and the cheapest to move in bulk.

A text row is a :data:`~provstore.storage.Row` whose JSON columns hold JSON text (``None`` for SQL NULL) and whose
time columns hold UTC times as ``'YYYY-MM-DD HH:MM:SS.ffffff'`` (:data:`TIME_TEXT`); every other value is as in a
row. Copying rows between a profile and an archive in this form skips decoding and re-encoding every JSON document
and time, which is most of the cost of moving rows through Python.
"""

from __future__ import annotations

import datetime
import json
import re
from functools import cache
from typing import Any

from provstore.exceptions import StorageError
from provstore.storage.entities import EntityType, Row
from provstore.storage.query import FIELDS

__all__ = [
    'JSON_MAX_DEPTH',
    'TIME_TEXT',
    'canonical_time_text',
    'from_text_row',
    'json_depth',
    'text_columns',
    'time_from_text',
    'time_to_text',
    'to_text_row',
]

TIME_TEXT = '%Y-%m-%d %H:%M:%S.%f'
"""The text form of a time: naive UTC with microseconds, as SQLAlchemy's SQLite ``DATETIME`` (and aiida-core's
archives) store it."""

_TIME_TEXT = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}')

JSON_MAX_DEPTH = 400
"""The deepest nesting of arrays and objects a JSON text from outside (an archive) may have: Python's JSON decoder
fails somewhat below its recursion limit (1000), and no provenance needs more."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r'[\[\]{}]')


@cache
def text_columns(entity: EntityType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the JSON columns and the time columns of ``entity``'s table."""
    fields = FIELDS.get(EntityType(entity), {})
    return (
        tuple(column for column, kind in fields.items() if kind == 'json'),
        tuple(column for column, kind in fields.items() if kind == 'time'),
    )


def time_to_text(value: datetime.datetime) -> str:
    """Return the text form of a time (a naive time is taken to be UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime(TIME_TEXT)


def time_from_text(text: str) -> datetime.datetime:
    """Return the timezone-aware UTC time of a text form (also ISO forms with ``T``, an offset, or no fraction).

    :raises ValueError: if ``text`` is not a time.
    """
    value = datetime.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def canonical_time_text(text: Any) -> str:
    """Return ``text`` as :data:`TIME_TEXT` exactly (it is already, almost always).

    :raises ValueError: if ``text`` is not a string holding a time.
    """
    if not isinstance(text, str):
        raise ValueError(f'a time in text form must be a string, not {type(text).__name__}')
    if _TIME_TEXT.fullmatch(text):
        return text
    return time_to_text(time_from_text(text))


def json_depth(text: str) -> int:
    """Return the deepest nesting of arrays and objects in a JSON text (0 for a scalar), without decoding it."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub('', text)):
        if bracket in '[{':
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def to_text_row(entity: EntityType, row: Row) -> Row:
    """Return ``row`` in text form."""
    json_columns, time_columns = text_columns(entity)
    text = dict(row)
    for column in json_columns:
        if text.get(column) is not None:
            text[column] = json.dumps(text[column], ensure_ascii=False, allow_nan=False)
    for column in time_columns:
        if text.get(column) is not None:
            text[column] = time_to_text(text[column])
    return text


def from_text_row(entity: EntityType, row: Row) -> Row:
    """Return the row of a text row.

    :raises StorageError: naming the column, for JSON text that is not JSON or a time that is not one.
    """
    json_columns, time_columns = text_columns(entity)
    plain = dict(row)
    for column in json_columns:
        if plain.get(column) is not None:
            try:
                plain[column] = json.loads(plain[column])
            except (TypeError, ValueError, RecursionError) as exc:
                raise StorageError(
                    f'column {column!r} of a {entity.value} row does not hold JSON text: {exc}'
                ) from None
    for column in time_columns:
        if plain.get(column) is not None:
            try:
                plain[column] = time_from_text(plain[column])
            except (TypeError, ValueError) as exc:
                raise StorageError(f'column {column!r} of a {entity.value} row does not hold a time: {exc}') from None
    return plain
