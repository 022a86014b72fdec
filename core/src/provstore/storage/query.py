"""A query as plain data: what the QueryBuilder asks a storage backend, checked before any backend sees it.

The QueryBuilder (:mod:`provstore.orm.querybuilder`) turns aiida-core's query language into a :class:`Query`; a
storage backend compiles that to its own query language (:meth:`~provstore.storage.EntityStorage.run_query`). Every
name, operator and value in a :class:`Query` has been checked against :data:`FIELDS` and :data:`OPERATORS`, so a
backend only decides *how* to answer, never *whether* the query makes sense.

Filters on JSON are typed: a number matches JSON numbers only (``1 == 1.0``, ``true`` is not ``1``), a string
strings only, ``None`` JSON null only. A :class:`Negation` matches exactly the rows its filter does not match,
rows where a key is missing or NULL included.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from provstore.exceptions import QueryError
from provstore.storage.entities import EntityType

__all__ = [
    'AGGREGATES',
    'CASTS',
    'DEFAULT_TRAVERSAL_LINK_TYPES',
    'EDGE_FIELDS',
    'FIELDS',
    'JSON_OPERATORS',
    'LINK_TYPES',
    'OPERATORS',
    'RELATIONSHIPS',
    'Condition',
    'Edge',
    'FieldKind',
    'Filter',
    'Join',
    'Junction',
    'Negation',
    'OrderBy',
    'PathEntry',
    'Projection',
    'Query',
    'QueryError',
    'check_condition',
]

FieldKind = Literal['int', 'bool', 'str', 'uuid', 'time', 'json']
"""What a field holds."""

_NODE: dict[str, FieldKind] = {
    'id': 'int',
    'uuid': 'uuid',
    'node_type': 'str',
    'process_type': 'str',
    'label': 'str',
    'description': 'str',
    'ctime': 'time',
    'mtime': 'time',
    'attributes': 'json',
    'extras': 'json',
    'repository_metadata': 'json',
    'user_id': 'int',
    'dbcomputer_id': 'int',
}

FIELDS: dict[EntityType, dict[str, FieldKind]] = {
    EntityType.NODE: _NODE,
    EntityType.GROUP: {
        'id': 'int',
        'uuid': 'uuid',
        'label': 'str',
        'type_string': 'str',
        'time': 'time',
        'description': 'str',
        'extras': 'json',
        'user_id': 'int',
    },
    EntityType.USER: {'id': 'int', 'email': 'str', 'first_name': 'str', 'last_name': 'str', 'institution': 'str'},
    EntityType.COMPUTER: {
        'id': 'int',
        'uuid': 'uuid',
        'label': 'str',
        'hostname': 'str',
        'description': 'str',
        'scheduler_type': 'str',
        'transport_type': 'str',
        'metadata': 'json',
    },
    EntityType.AUTHINFO: {
        'id': 'int',
        'aiidauser_id': 'int',
        'dbcomputer_id': 'int',
        'metadata': 'json',
        'auth_params': 'json',
        'enabled': 'bool',
    },
    EntityType.COMMENT: {
        'id': 'int',
        'uuid': 'uuid',
        'ctime': 'time',
        'mtime': 'time',
        'content': 'str',
        'user_id': 'int',
        'dbnode_id': 'int',
    },
    EntityType.LOG: {
        'id': 'int',
        'uuid': 'uuid',
        'time': 'time',
        'loggername': 'str',
        'levelname': 'str',
        'message': 'str',
        'metadata': 'json',
        'dbnode_id': 'int',
    },
    EntityType.LINK: {'id': 'int', 'input_id': 'int', 'output_id': 'int', 'label': 'str', 'type': 'str'},
}
"""The fields of each entity a query may use: aiida-core's column names, with what they hold. Links are entities
too (``entity_type='link'``), queried on their own: nothing joins them, as in aiida-core."""

EDGE_FIELDS: dict[str, dict[str, FieldKind]] = {
    'link': {'id': 'int', 'input_id': 'int', 'output_id': 'int', 'label': 'str', 'type': 'str'},
    'group_node': {'id': 'int', 'dbnode_id': 'int', 'dbgroup_id': 'int'},
    'traversal': {'depth': 'int', 'ancestor_id': 'int', 'descendant_id': 'int'},
}
"""The fields of the edges between joined entities: a link, a group membership, a path through the graph."""

RELATIONSHIPS: dict[tuple[EntityType, str], tuple[EntityType, str | None]] = {
    (EntityType.NODE, 'with_incoming'): (EntityType.NODE, 'link'),
    (EntityType.NODE, 'with_outgoing'): (EntityType.NODE, 'link'),
    (EntityType.NODE, 'with_ancestors'): (EntityType.NODE, 'traversal'),
    (EntityType.NODE, 'with_descendants'): (EntityType.NODE, 'traversal'),
    (EntityType.NODE, 'with_group'): (EntityType.GROUP, 'group_node'),
    (EntityType.GROUP, 'with_node'): (EntityType.NODE, 'group_node'),
    (EntityType.NODE, 'with_user'): (EntityType.USER, None),
    (EntityType.USER, 'with_node'): (EntityType.NODE, None),
    (EntityType.GROUP, 'with_user'): (EntityType.USER, None),
    (EntityType.USER, 'with_group'): (EntityType.GROUP, None),
    (EntityType.NODE, 'with_computer'): (EntityType.COMPUTER, None),
    (EntityType.COMPUTER, 'with_node'): (EntityType.NODE, None),
    (EntityType.COMMENT, 'with_node'): (EntityType.NODE, None),
    (EntityType.NODE, 'with_comment'): (EntityType.COMMENT, None),
    (EntityType.COMMENT, 'with_user'): (EntityType.USER, None),
    (EntityType.USER, 'with_comment'): (EntityType.COMMENT, None),
    (EntityType.LOG, 'with_node'): (EntityType.NODE, None),
    (EntityType.NODE, 'with_log'): (EntityType.LOG, None),
    (EntityType.AUTHINFO, 'with_user'): (EntityType.USER, None),
    (EntityType.USER, 'with_authinfo'): (EntityType.AUTHINFO, None),
    (EntityType.AUTHINFO, 'with_computer'): (EntityType.COMPUTER, None),
    (EntityType.COMPUTER, 'with_authinfo'): (EntityType.AUTHINFO, None),
}
"""``(entity, relationship) -> (the entity it relates to, the kind of edge between them or None)``."""

LINK_TYPES = ('create', 'return', 'input_calc', 'input_work', 'call_calc', 'call_work')
"""The six link types."""

DEFAULT_TRAVERSAL_LINK_TYPES = ('create', 'input_calc')
"""What ``with_ancestors`` and ``with_descendants`` follow unless told otherwise: data provenance, as aiida-core."""

OPERATORS = frozenset(
    {'==', 'in', '>', '<', '>=', '<=', 'like', 'ilike', 'of_type', 'of_length', 'longer', 'shorter', 'contains',
     'has_key', 'startswith'}
)  # fmt: skip
"""Every filter operator; ``!`` before one negates it. ``startswith`` is a literal prefix (no wildcards)."""

JSON_OPERATORS = frozenset({'of_type', 'of_length', 'longer', 'shorter', 'contains', 'has_key'})
"""Operators that apply to JSON values only."""

JSON_TYPES = ('object', 'array', 'string', 'number', 'boolean', 'null')
"""The names ``of_type`` accepts."""

CASTS = {'f': 'float', 'i': 'int', 't': 'text', 'b': 'bool', 'd': 'datetime', 'j': 'json'}
"""Casts of projections and orderings, by aiida-core's one-letter names."""

AGGREGATES = frozenset({'count', 'min', 'max', 'sum'})
"""Aggregate functions of projections."""


@dataclass(frozen=True)
class Condition:
    """One comparison: ``field`` (with a JSON ``path`` into it, or ``()``) ``operator`` ``value``."""

    field: str
    path: tuple[str, ...]
    operator: str
    value: Any


@dataclass(frozen=True)
class Junction:
    """All (``and``) or any (``or``) of several filters; an empty ``and`` is true, an empty ``or`` false."""

    kind: Literal['and', 'or']
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Negation:
    """The rows a filter does not match."""

    item: Filter


Filter = Union[Condition, Junction, Negation]  # noqa: UP007 - a runtime alias on Python 3.10


@dataclass(frozen=True)
class Projection:
    """What to return of an entity or edge: ``*`` (the entity), ``**`` (its columns), a field, or a JSON path.

    The storage returns the row as a dict of column values for both ``*`` and ``**``.

    :param cast: one of :data:`CASTS`' keys, or ``None``.
    :param func: one of :data:`AGGREGATES`, or ``None``.
    """

    field: str
    path: tuple[str, ...] = ()
    cast: str | None = None
    func: str | None = None


@dataclass(frozen=True)
class Edge:
    """The edge of a join (a link, a membership, a path): its filter and projections."""

    kind: str
    filter: Filter | None = None
    projections: tuple[Projection, ...] = ()


@dataclass(frozen=True)
class Join:
    """How a path entry joins an earlier one: ``relationship`` to entry number ``target``.

    :param outer: a left outer join: a row of the earlier entries with no match is kept, with ``None`` for this
        entry and its edge. The entry's ``filter`` and the edge's filter still select rows, as aiida-core's do
        (a row without a match passes a filter only as NULL would); ``on`` decides what joins.
    :param on: what an entity must be to join at all (for an outer join, its class); ``None`` for anything.
    :param link_types: the link types a traversal follows (``with_ancestors``/``with_descendants`` only).
    :param max_depth: the most steps a traversal takes; ``None`` for no limit.
    """

    relationship: str
    target: int
    edge: Edge | None = None
    outer: bool = False
    link_types: tuple[str, ...] = ()
    max_depth: int | None = None
    on: Filter | None = None


@dataclass(frozen=True)
class PathEntry:
    """One entity of a query: its kind, the filter it must pass (including its type), what to return of it."""

    entity: EntityType
    filter: Filter | None = None
    projections: tuple[Projection, ...] = ()
    join: Join | None = None


@dataclass(frozen=True)
class OrderBy:
    """Order the rows by a field (or JSON path) of entry number ``entry``."""

    entry: int
    field: str
    path: tuple[str, ...] = ()
    cast: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A whole query. Rows have one value per projection: the entries' projections in path order, then the edges'.

    A ``*`` projection gives the row as a dict of column values; a JSON path gives the JSON value (``None`` when the
    key is missing); aggregates mixed with plain projections group by the plain ones.
    """

    entries: tuple[PathEntry, ...]
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int | None = None
    distinct: bool = False
    projections: tuple[tuple[int, bool, Projection], ...] = field(default=())
    """Every projection in result order: ``(entry number, of its edge?, projection)``; set by :meth:`build`."""

    @classmethod
    def build(
        cls,
        entries: tuple[PathEntry, ...],
        order_by: tuple[OrderBy, ...] = (),
        limit: int | None = None,
        offset: int | None = None,
        distinct: bool = False,
    ) -> Query:
        """Return the query with its projections listed in result order."""
        projections = [
            (index, False, projection) for index, entry in enumerate(entries) for projection in entry.projections
        ]
        projections += [
            (index, True, projection)
            for index, entry in enumerate(entries)
            if entry.join is not None and entry.join.edge is not None
            for projection in entry.join.edge.projections
        ]
        return cls(entries, order_by, limit, offset, distinct, tuple(projections))


_SCALARS = (str, int, float, bool, type(None))


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, _SCALARS):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _is_json(item, depth + 1) for key, item in value.items())
    return False


def _scalar_of_kind(kind: FieldKind, value: Any) -> bool:
    """Whether ``value`` may be compared with a column holding ``kind``."""
    if kind == 'int':
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == 'bool':
        return isinstance(value, bool)
    if kind == 'str':
        return isinstance(value, str)
    if kind == 'uuid':
        return isinstance(value, (str, uuid.UUID))
    if kind == 'time':
        return isinstance(value, datetime.datetime)
    return _is_json(value)


def check_condition(kind: FieldKind, condition: Condition, where: str) -> None:  # noqa: PLR0912 - a branch per operator
    """Raise :class:`QueryError` naming ``where`` unless ``condition`` suits a field holding ``kind``."""
    operator, value, on_json = condition.operator, condition.value, kind == 'json'
    described = f'{where}: operator {operator!r}'
    if operator not in OPERATORS:
        raise QueryError(f'{where}: unknown operator {operator!r}; the operators are {", ".join(sorted(OPERATORS))}')
    if operator in JSON_OPERATORS and not on_json:
        raise QueryError(f'{described} applies to JSON values only (attributes.<key>, extras.<key>, ...)')
    if operator == 'in':
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise QueryError(f'{described} needs a list of values, got {type(value).__name__}')
        bad = next((item for item in value if not _scalar_of_kind(kind, item) or isinstance(item, (list, dict))), ...)
        if bad is not ...:
            raise QueryError(f'{described}: {bad!r} is not a value a {kind} field can hold')
    elif operator in ('like', 'ilike', 'startswith'):
        if not isinstance(value, str):
            raise QueryError(f'{described} needs a string pattern, got {type(value).__name__}')
        if kind not in ('str', 'uuid', 'json'):
            raise QueryError(f'{described} applies to text, not to a {kind} field')
    elif operator in ('of_length', 'longer', 'shorter'):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise QueryError(f'{described} needs a non-negative integer, got {value!r}')
    elif operator == 'of_type':
        if value not in JSON_TYPES:
            raise QueryError(f'{described} needs one of {", ".join(JSON_TYPES)}, got {value!r}')
    elif operator == 'has_key':
        if not isinstance(value, str):
            raise QueryError(f'{described} needs a string key, got {type(value).__name__}')
    elif operator == 'contains':
        if not isinstance(value, (list, tuple, dict)) or not _is_json(value):
            raise QueryError(f'{described} needs a JSON list or object, got {value!r}')
    elif operator in ('>', '<', '>=', '<='):
        if value is None or isinstance(value, (bool, list, tuple, dict)) or not _scalar_of_kind(kind, value):
            raise QueryError(f'{described} cannot compare a {kind} field with {value!r}')
    elif operator == '==':
        if value is not None and not _scalar_of_kind(kind, value):
            raise QueryError(f'{described} cannot compare a {kind} field with {value!r}')
