"""PostgreSQL's ``jsonb`` equality and containment, in Python, for SQLite (registered as SQL functions).

SQLite has no JSON equality that ignores key order, nor a containment operator; queries on ``sqlite_dos`` call
these two functions so that ``==`` on a JSON list or object and ``contains`` give what PostgreSQL gives. They run
only where such a filter is used, never for plain comparisons.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ['INTEGER_TEXT', 'NUMBER_TEXT', 'SQLITE_FUNCTIONS', 'json_contains', 'json_equal', 'number']

INTEGER_TEXT = '^[-+]?[0-9]{1,18}$'
"""A string that the cast ``i`` reads as a number: an integer that fits 64 bits (the same on both databases)."""

NUMBER_TEXT = '^[-+]?([0-9]{1,300}([.][0-9]{0,300})?|[.][0-9]{1,300})([eE][-+]?[0-9]{1,2})?$'
"""A string that the cast ``f`` reads as a number: decimal, with an exponent of at most two digits."""


def _same(left: Any, right: Any) -> bool:
    """Whether two JSON values are equal as ``jsonb`` values are: numbers by value, objects by keys, types strict."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    return type(left) is type(right) and left == right


def _contains(container: Any, contained: Any, top: bool = True) -> bool:
    """``container @> contained`` as PostgreSQL decides it."""
    if isinstance(container, dict):
        return isinstance(contained, dict) and all(
            key in container and _contains(container[key], value, False) for key, value in contained.items()
        )
    if isinstance(container, list):
        if isinstance(contained, list):
            return all(any(_contains(item, wanted, False) for item in container) for wanted in contained)
        # NOTE: only at the top level does an array contain a bare scalar (PostgreSQL's documented exception).
        return top and not isinstance(contained, dict) and any(_same(item, contained) for item in container)
    return not isinstance(contained, (dict, list)) and _same(container, contained)


def _load(text: Any) -> tuple[bool, Any]:
    if not isinstance(text, str):
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def json_equal(left: Any, right: Any) -> int:
    """SQL function: 1 if the JSON texts ``left`` and ``right`` hold equal values, else 0 (NULL gives 0)."""
    ok_left, value_left = _load(left)
    ok_right, value_right = _load(right)
    return int(ok_left and ok_right and _same(value_left, value_right))


def json_contains(container: Any, contained: Any) -> int:
    """SQL function: 1 if the JSON text ``container`` contains the JSON text ``contained``, else 0."""
    ok_left, value_left = _load(container)
    ok_right, value_right = _load(contained)
    return int(ok_left and ok_right and _contains(value_left, value_right))


_INTEGER = re.compile(INTEGER_TEXT)
_NUMBER = re.compile(NUMBER_TEXT)


def number(value: Any, integral: Any) -> Any:
    """SQL function: the number a string holds (see :data:`INTEGER_TEXT`, :data:`NUMBER_TEXT`), else NULL."""
    if not isinstance(value, str):
        return None
    if integral:
        return int(value) if _INTEGER.fullmatch(value) else None
    return float(value) if _NUMBER.fullmatch(value) else None


def lower(value: Any) -> Any:
    """SQL function: ``value`` in lower case (all of Unicode, not only ASCII as SQLite's ``lower``)."""
    return value.lower() if isinstance(value, str) else value


SQLITE_FUNCTIONS = {
    'provstore_json_equal': (2, json_equal),
    'provstore_json_contains': (2, json_contains),
    'provstore_lower': (1, lower),
    'provstore_number': (2, number),
}
"""The functions every SQLite connection gets: name -> (number of arguments, function)."""
