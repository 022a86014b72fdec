"""The QueryBuilder: aiida-core's query language over any storage that stores entities.

A query is a path of entities, each appended with a relationship to an earlier one::

    qb = QueryBuilder()
    qb.append(CalcJobNode, tag='calc', filters={'attributes.x': 3})
    qb.append(Data, with_outgoing='calc', project=['id', 'attributes.value'])
    rows = qb.all()

The builder keeps what it was given (so :meth:`QueryBuilder.as_dict` gives it back) and checks it as it goes; the
storage compiles the checked query (:class:`provstore.storage.query.Query`) to its own SQL.

Where provstore differs from aiida-core, on purpose: ``{'attributes.x': None}`` matches JSON null; a negated filter
matches exactly what the filter does not (rows without the key included); comparisons on JSON are typed on every
backend; ``with_ancestors``/``with_descendants`` take ``link_types`` and ``max_depth`` and never repeat a row;
``min`` is the minimum.
"""

from __future__ import annotations

import copy
import datetime
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from provstore.exceptions import QueryError
from provstore.orm.entities import Entity, get_entity_storage
from provstore.orm.exceptions import MultipleObjectsError, NotExistentError
from provstore.orm.node_classes import load_node_class, node_type_path
from provstore.orm.validation import MAX_INT64, MIN_INT64, describe_int
from provstore.storage import EntityStorage, EntityType, Row
from provstore.storage.query import (
    AGGREGATES,
    CASTS,
    DEFAULT_TRAVERSAL_LINK_TYPES,
    EDGE_FIELDS,
    FIELDS,
    LINK_TYPES,
    OPERATORS,
    RELATIONSHIPS,
    Condition,
    Edge,
    Filter,
    Join,
    Junction,
    Negation,
    OrderBy,
    PathEntry,
    Projection,
    Query,
    check_condition,
)

__all__ = ['QueryBuilder', 'QueryError']

JsonObject = dict[str, Any]
"""A JSON object (named so, since ``QueryBuilder.dict`` hides the builtin inside the class)."""

MAX_FILTER_DEPTH = 128
"""The deepest nesting of and/or a filter may have: deeper ones are refused with a clear error, on every backend
(SQLite's parser gives up at about 170 levels)."""

EDGE_TAG_DELIMITER = '--'
"""What joins the two tags of a default edge tag (``'calc--data'``); entity tags may not contain it."""

_ENTITY_NAMES = {entity.value: entity for entity in EntityType if entity is not EntityType.GROUP_NODE}


def _entity_classes() -> dict[EntityType, type[Entity]]:
    from provstore.orm import AuthInfo, Comment, Computer, Group, Log, Node, User  # noqa: PLC0415 - import cycle

    return {
        EntityType.NODE: Node,
        EntityType.GROUP: Group,
        EntityType.USER: User,
        EntityType.COMPUTER: Computer,
        EntityType.AUTHINFO: AuthInfo,
        EntityType.COMMENT: Comment,
        EntityType.LOG: Log,
    }


@dataclass
class _Vertex:
    """What :meth:`QueryBuilder.append` was given for one entity, as data (the form :meth:`as_dict` gives)."""

    tag: str
    entity: EntityType
    node_types: list[str]
    subclassing: bool
    relationship: str | None = None
    target: str | None = None
    edge_tag: str | None = None
    outerjoin: bool = False
    link_types: list[str] | None = None
    max_depth: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    project: list[Any] = field(default_factory=list)
    edge_filters: dict[str, Any] = field(default_factory=dict)
    edge_project: list[Any] = field(default_factory=list)
    cls_key: Any = None


class QueryBuilder:
    """Build a query of the provenance graph, run it, and read its rows (see the module's documentation)."""

    def __init__(
        self,
        storage: EntityStorage | None = None,
        *,
        backend: EntityStorage | None = None,
        debug: bool | None = None,
        path: Sequence[Any] = (),
        filters: Mapping[str, Any] | None = None,
        project: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        order_by: Any = None,
        distinct: bool = False,
        project_map: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """:param storage: the storage to query (``backend`` is aiida-core's name for it); default: the loaded
            profile's storage, looked up each time the query runs.
        :param path: entities to :meth:`append`: classes, ``entity_type`` strings, or dicts of ``append``'s
            keywords; then ``filters`` and ``project`` (by tag), ``order_by``, ``limit``, ``offset`` and
            ``distinct`` as their methods take them.
        :param project_map: ``{tag: {projection: key}}``: the keys :meth:`dict` gives projections under.
        :param debug: accepted for aiida-core's sake; it changes nothing.
        """
        if storage is not None and backend is not None and storage is not backend:
            raise QueryError('Give the storage once: as storage or as backend')
        given = storage if storage is not None else backend
        self._storage = None if given is None else get_entity_storage(given)
        self._vertices: list[_Vertex] = []
        self._order_by: list[dict[str, Any]] = []
        self._limit: int | None = None
        self._offset: int | None = None
        self._distinct = False
        self._project_map: dict[str, dict[str, str]] = {}
        del debug
        if not isinstance(path, (list, tuple)):
            raise QueryError(f'path must be a list of classes, entity_type strings or dicts, got {path!r}')
        for item in path:
            if isinstance(item, Mapping):
                self.append(**item)
            elif isinstance(item, str):
                self.append(entity_type=item)
            else:
                self.append(cls=item)
        for name, given_map in (('project', project), ('filters', filters)):
            if given_map is not None and not isinstance(given_map, Mapping):
                raise QueryError(f'{name} must be a dict keyed by tag, got {given_map!r}')
        for tag, projection in (project or {}).items():
            self.add_projection(tag, projection)
        for tag, spec in (filters or {}).items():
            self.add_filter(tag, spec)
        self._set_project_map(project_map)
        self.limit(limit)
        self.offset(offset)
        self.distinct(distinct)
        if order_by:
            self.order_by(order_by)

    @property
    def storage(self) -> EntityStorage:
        """The storage the query runs on: the one it was given, else the loaded profile's at this moment."""
        if self._storage is not None:
            return self._storage
        return get_entity_storage()

    @property
    def backend(self) -> EntityStorage:
        """aiida-core's name of :attr:`storage`."""
        return self.storage

    def __deepcopy__(self, memo: dict[int, Any]) -> QueryBuilder:
        return type(self).from_dict(self.as_dict(), self._storage)

    def _set_project_map(self, project_map: Mapping[str, Mapping[str, str]] | None) -> None:
        if project_map is None:
            return
        if not isinstance(project_map, Mapping) or not all(
            isinstance(tag, str) and isinstance(keys, Mapping) for tag, keys in project_map.items()
        ):
            raise QueryError(f'project_map is {{tag: {{projection: key}}}}, got {project_map!r}')
        self._project_map = {tag: dict(keys) for tag, keys in project_map.items()}

    def __str__(self) -> str:
        """The query in full, as aiida-core writes it: ``QueryBuilder(path=[...], filters={...}, ...)``."""
        return f'QueryBuilder({", ".join(f"{key}={value!r}" for key, value in self.as_dict().items())})'

    def __repr__(self) -> str:
        return f'<QueryBuilder: {", ".join(vertex.tag for vertex in self._vertices) or "empty"}>'

    # -- building ---------------------------------------------------------------------------------------------

    def append(  # noqa: PLR0912, PLR0917 - aiida-core's signature, positional arguments included
        self,
        cls: type[Entity] | Sequence[type[Entity]] | None = None,
        entity_type: str | Sequence[str] | None = None,
        tag: str | None = None,
        filters: Mapping[str, Any] | None = None,
        project: Any = None,
        subclassing: bool = True,
        edge_tag: str | None = None,
        edge_filters: Mapping[str, Any] | None = None,
        edge_project: Any = None,
        outerjoin: bool = False,
        joining_keyword: str | None = None,
        joining_value: Any = None,
        orm_base: str | None = None,
        link_types: str | Sequence[str] | None = None,
        max_depth: int | None = None,
        **relationship: Any,
    ) -> QueryBuilder:
        """Add an entity to the path, related to an earlier one by one keyword (``with_incoming='calc'``, ...).

        Without a relationship, an entity after the first joins the one appended just before it: a node as its
        output (``with_incoming``), anything else ``with_node``. ``direction=n`` (nodes) joins the ``n``-th entity
        back: ``n > 0`` as its output, ``n < 0`` as its input. A relationship names the tag of an earlier entity,
        or the class it was appended with.

        :param cls: an entity class (``Dict``, ``Group``, ``User``...), or a tuple of node classes (any of them).
        :param entity_type: instead of ``cls``: ``'node'``, ``'group'``, ``'user'``, ``'computer'``, ``'authinfo'``,
            ``'comment'``, ``'log'``, or a node type string such as ``'data.core.dict.Dict.'`` (or a list of those).
        :param tag: the entity's name in the query; default: aiida-core's, the class name and a number
            (``Dict_1``, ``node_1``...).
        :param subclassing: for node classes, match subclasses too (by ``node_type`` prefix).
        :param edge_tag: the name of the edge to the entity it joins (default ``'<that tag>--<tag>'``).
        :param joining_keyword: with ``joining_value``, the relationship as aiida-core's ``as_dict()`` writes it.
        :param orm_base: the kind of entity, as aiida-core's ``as_dict()`` writes it; checked, else unused.
        :param link_types: what ``with_ancestors``/``with_descendants`` follow: link type names, or ``'all'``;
            default ``create`` and ``input_calc``.
        :param max_depth: the most steps ``with_ancestors``/``with_descendants`` take.
        :raises QueryError: naming what is wrong; the builder is unchanged then.
        """
        entity, node_types = self._classify(cls, entity_type, subclassing)
        if orm_base is not None and orm_base != entity.value:
            raise QueryError(f'orm_base {orm_base!r} does not match the entity, a {entity.value}')
        vertex = _Vertex(tag='', entity=entity, node_types=node_types, subclassing=bool(subclassing))
        vertex.cls_key = _class_key(cls)
        vertex.tag = self._new_tag(tag, cls, entity_type, entity, node_types)
        self._relate(vertex, relationship, joining_keyword, joining_value)
        traversal = vertex.relationship in ('with_ancestors', 'with_descendants')
        if (link_types is not None or max_depth is not None) and not traversal:
            raise QueryError('link_types and max_depth apply to with_ancestors and with_descendants only')
        if traversal:
            vertex.link_types = _link_types(link_types)
            vertex.max_depth = _max_depth(max_depth)
        edge_kind = self._edge_kind(vertex)
        if vertex.relationship is None and edge_tag is not None:
            raise QueryError(f'The first entity {vertex.tag!r} joins nothing, so it has no edge to tag')
        if edge_kind is None and (edge_filters or edge_project):
            what = vertex.relationship or 'the first entity'
            raise QueryError(f'{vertex.tag!r} joined by {what} has no edge to filter or project')
        if vertex.relationship is not None:
            if edge_tag is not None and (not isinstance(edge_tag, str) or not edge_tag):
                raise QueryError(f'An edge tag must be a non-empty string, got {edge_tag!r}')
            vertex.edge_tag = edge_tag or f'{vertex.target}{EDGE_TAG_DELIMITER}{vertex.tag}'
            if vertex.edge_tag in self._tags() or vertex.edge_tag == vertex.tag:
                raise QueryError(f'Tag {vertex.edge_tag!r} is already used')
        vertex.outerjoin = bool(outerjoin)
        self._vertices.append(vertex)
        try:
            if filters is not None:
                self.add_filter(vertex.tag, filters)
            if project is not None:
                self.add_projection(vertex.tag, project)
            if edge_filters is not None:
                self.add_filter(vertex.edge_tag or '', edge_filters)
            if edge_project is not None:
                self.add_projection(vertex.edge_tag or '', edge_project)
        except BaseException:
            self._vertices.pop()
            raise
        return self

    def inputs(self, **kwargs: Any) -> QueryBuilder:
        """Append the inputs of the last entity (``cls`` default ``Node``; other keywords as :meth:`append`)."""
        return self._append_related('with_outgoing', kwargs)

    def outputs(self, **kwargs: Any) -> QueryBuilder:
        """Append the outputs of the last entity."""
        return self._append_related('with_incoming', kwargs)

    def children(self, **kwargs: Any) -> QueryBuilder:
        """Append the descendants of the last entity."""
        return self._append_related('with_ancestors', kwargs)

    def parents(self, **kwargs: Any) -> QueryBuilder:
        """Append the ancestors of the last entity."""
        return self._append_related('with_descendants', kwargs)

    def _append_related(self, relationship: str, kwargs: dict[str, Any]) -> QueryBuilder:
        from provstore.orm.nodes import Node  # noqa: PLC0415 - import cycle

        if not self._vertices:
            raise QueryError(f'{relationship} needs an entity to relate to: append() one first')
        cls = kwargs.pop('cls', Node)
        options: dict[str, Any] = {relationship: self._vertices[-1].tag, **kwargs}
        return self.append(cls, **options)

    def get_used_tags(self, vertices: bool = True, edges: bool = True) -> list[str]:
        """Return the tags of the entities (``vertices``) and of the edges between them (``edges``), in order."""
        tags = []
        for vertex in self._vertices:
            if vertices:
                tags.append(vertex.tag)
            if edges and vertex.edge_tag is not None:
                tags.append(vertex.edge_tag)
        return tags

    def add_filter(self, tag: Any, filters: Mapping[str, Any]) -> QueryBuilder:
        """Add ``filters`` to what the entity (or edge) tagged ``tag`` (or appended as the class ``tag``) must pass.

        As aiida-core's: a key filtered before is replaced by the new filter of that key; other keys stay.

        :raises QueryError: for an unknown tag, field or operator, or a value that does not suit its field.
        """
        vertex, on_edge = self._find(tag, empty=isinstance(filters, Mapping) and not filters)
        tag = vertex.edge_tag if on_edge else vertex.tag
        if on_edge and self._edge_kind(vertex) is None:
            return self
        if not isinstance(filters, Mapping):
            raise QueryError(f'The filters of {tag!r} must be a dict, got {type(filters).__name__}')
        fields = self._fields_of(vertex, on_edge)
        # NOTE: as aiida-core, a stored entity filters the column that refers to it: {'user': u} is {'user_id': u.pk}.
        filters = {
            f'{key}_id' if isinstance(value, Entity) and f'{key}_id' in fields else key: value
            for key, value in filters.items()
        }
        filters = _plain(filters, f'the filters of {tag!r}')
        _parse_filters(filters, fields, tag, 0)
        (vertex.edge_filters if on_edge else vertex.filters).update(filters)
        return self

    def add_projection(self, tag: Any, project: Any) -> QueryBuilder:
        """Set what to return of the entity (or edge) tagged ``tag``: ``'*'``, ``'**'``, fields, JSON paths.

        As aiida-core's, it replaces what was projected of that tag before.

        :raises QueryError: for an unknown tag or field, an unknown cast or function.
        """
        vertex, on_edge = self._find(tag, empty=project == [])
        tag = vertex.edge_tag if on_edge else vertex.tag
        if on_edge and self._edge_kind(vertex) is None:
            return self
        items = project if isinstance(project, (list, tuple)) else [project]
        items = _plain(list(items), f'the projections of {tag!r}')
        fields = self._fields_of(vertex, on_edge)
        for item in items:
            _parse_projection(item, fields, tag, on_edge)
        if on_edge:
            vertex.edge_project = items
        else:
            vertex.project = items
        return self

    def order_by(self, order_by: Mapping[Any, Any] | Sequence[Mapping[Any, Any]]) -> QueryBuilder:
        """Order the rows: ``{tag: 'id'}``, ``{tag: ['id', {'attributes.a': {'order': 'desc', 'cast': 'f'}}]}``.

        A tag may be given as the class it was appended with. As aiida-core's, it replaces an earlier ordering.
        Ascending puts missing values last, descending first; text orders by code point.
        """
        specs = [order_by] if isinstance(order_by, Mapping) else list(order_by)
        parsed = []
        for spec in specs:
            if not isinstance(spec, Mapping):
                raise QueryError(f'order_by takes {{tag: fields}}, got {spec!r}')
            for tag, given in spec.items():
                vertex, on_edge = self._find(tag)
                if on_edge:
                    raise QueryError(f'Cannot order by the edge {tag!r}; order by an entity')
                items = given if isinstance(given, (list, tuple)) else [given]
                items = [_order_item(item, vertex.tag) for item in items]
                for item in items:
                    _parse_order(item, FIELDS[vertex.entity], vertex.tag)
                parsed.append({vertex.tag: items})
        self._order_by = parsed
        return self

    def limit(self, limit: int | None) -> QueryBuilder:
        """Return at most ``limit`` rows (``None``: all)."""
        self._limit = _count_or_none(limit, 'limit')
        return self

    def offset(self, offset: int | None) -> QueryBuilder:
        """Skip the first ``offset`` rows."""
        self._offset = _count_or_none(offset, 'offset')
        return self

    def distinct(self, value: bool = True) -> QueryBuilder:
        """Return each row once."""
        self._distinct = bool(value)
        return self

    # -- running ----------------------------------------------------------------------------------------------

    def count(self) -> int:
        """Return the number of rows the query gives."""
        return self.storage.count_query(self._query())

    def iterall(self, batch_size: int | None = 100) -> Iterator[list[Any]]:
        """Yield the rows one by one, fetching ``batch_size`` at a time: constant memory."""
        query = self._query()
        convert = self._converters(query)
        for row in self.storage.run_query(query, batch_size):
            yield [function(value) for function, value in zip(convert, row, strict=True)]

    def all(self, batch_size: int | None = None, flat: bool = False) -> list[Any]:
        """Return every row as a list of values (``flat``: one list of all values)."""
        rows = list(self.iterall(batch_size))
        if flat:
            return [value for row in rows for value in row]
        return rows

    def iterdict(self, batch_size: int | None = 100) -> Iterator[dict[str, dict[str, Any]]]:
        """Yield each row as ``{tag: {projection: value}}``; ``**`` gives every column under its name."""
        keys = [(tag, self._project_map.get(tag, {}).get(key, key)) for tag, key in self.result_keys()]
        for row in self.iterall(batch_size):
            result: dict[str, dict[str, Any]] = {}
            for (tag, key), value in zip(keys, row, strict=True):
                if key == '**':
                    result.setdefault(tag, {}).update(value)
                else:
                    result.setdefault(tag, {})[key] = value
            yield result

    def dict(self, batch_size: int | None = None) -> list[dict[str, dict[str, Any]]]:
        """Return every row as ``{tag: {projection: value}}``."""
        return list(self.iterdict(batch_size))

    def first(self, flat: bool = False) -> Any:
        """Return the first row (``flat`` with one projection: its value), or ``None`` when there is none."""
        limited = copy.copy(self)
        limited._limit = 1 if self._limit is None else min(self._limit, 1)
        rows = limited.all()
        if not rows:
            return None
        return rows[0][0] if flat and len(rows[0]) == 1 else rows[0]

    def one(self) -> list[Any]:
        """Return the only row.

        :raises NotExistentError: if there is none.
        :raises MultipleObjectsError: if there are several.
        """
        limited = copy.copy(self)
        limited._limit = 2 if self._limit is None else min(self._limit, 2)
        rows = limited.all()
        if not rows:
            raise NotExistentError(f'The query {self!r} has no result')
        if len(rows) > 1:
            raise MultipleObjectsError(f'The query {self!r} has more than one result')
        return list(rows[0])

    def as_sql(self, inline: bool = False) -> str:
        """Return the SQL the storage runs (``inline``: with the values written in, to read, not to run)."""
        return self.storage.query_sql(self._query(), inline)

    def explain(self) -> str:
        """Return the database's plan of the query (PostgreSQL's ``EXPLAIN``, SQLite's ``EXPLAIN QUERY PLAN``)."""
        return self.storage.explain_query(self._query())

    # -- serialising ------------------------------------------------------------------------------------------

    def as_dict(self, copy: bool = True) -> JsonObject:
        """Return the query as JSON-serialisable data in aiida-core's form; :meth:`from_dict` makes the same query
        of it, and so does aiida-core's ``QueryBuilder.from_dict`` (but for provstore's ``link_types`` and
        ``max_depth``, written only when given, and datetimes, written as ``{'$datetime': text}``).

        :param copy: accepted for aiida-core's sake: the data is always a copy.
        """
        del copy
        path = []
        filters: dict[str, Any] = {}
        project: dict[str, Any] = {}
        for vertex in self._vertices:
            entity_type: Any = vertex.entity.value
            if vertex.entity is EntityType.NODE:
                types = vertex.node_types or ['']
                entity_type = types[0] if len(types) == 1 else list(types)
            elif vertex.entity is EntityType.GROUP:
                entity_type = 'group.core'
            item: dict[str, Any] = {
                'entity_type': entity_type,
                'orm_base': vertex.entity.value,
                'tag': vertex.tag,
                'joining_keyword': vertex.relationship,
                'joining_value': vertex.target,
                'edge_tag': vertex.edge_tag,
                'outerjoin': vertex.outerjoin,
            }
            if not vertex.subclassing:
                item['subclassing'] = False
            if vertex.link_types is not None and tuple(vertex.link_types) != DEFAULT_TRAVERSAL_LINK_TYPES:
                item['link_types'] = list(vertex.link_types)
            if vertex.max_depth is not None:
                item['max_depth'] = vertex.max_depth
            path.append(item)
            filters[vertex.tag] = {**_aiida_type_filter(vertex), **vertex.filters}
            project[vertex.tag] = [_projection_item(item) for item in vertex.project]
            if vertex.edge_tag is not None:
                filters[vertex.edge_tag] = dict(vertex.edge_filters)
                project[vertex.edge_tag] = [_projection_item(item) for item in vertex.edge_project]
        encoded: JsonObject = _encode(
            {
                'path': path,
                'filters': filters,
                'project': project,
                'project_map': self._project_map,
                'order_by': self._order_by,
                'limit': self._limit,
                'offset': self._offset,
                'distinct': self._distinct,
            }
        )
        return encoded

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], storage: EntityStorage | None = None) -> QueryBuilder:
        """Return the query that :meth:`as_dict` described, or aiida-core's ``QueryBuilder.as_dict()``.

        :raises QueryError: for data that does not describe a query, naming the problem.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get('path'), list):
            raise QueryError('A serialised query is a dict with a "path" list')
        known = {'path', 'filters', 'project', 'project_map', 'order_by', 'limit', 'offset', 'distinct'}
        unknown = set(data) - known
        if unknown:
            raise QueryError(f'Unknown keys in a serialised query: {", ".join(sorted(map(str, unknown)))}')
        decoded = _decode(dict(data))
        for item in decoded['path']:
            if not isinstance(item, Mapping):
                raise QueryError(f'Each entry of "path" is a dict, got {item!r}')
        return cls(storage, **decoded)

    def analyze_query(self, execute: bool = True, verbose: bool = False) -> str:
        """Return the database's plan of the query, as :meth:`explain`.

        :param execute: accepted for aiida-core's sake; the plan is never made by running the query, so that
            asking for it neither takes the query's time nor writes.
        :param verbose: accepted for aiida-core's sake.
        """
        del execute, verbose
        return self.explain()

    # -- internals --------------------------------------------------------------------------------------------

    def _tags(self) -> set[str]:
        tags = {vertex.tag for vertex in self._vertices}
        return tags | {vertex.edge_tag for vertex in self._vertices if vertex.edge_tag}

    def _new_tag(self, tag: Any, cls: Any, entity_type: Any, entity: EntityType, node_types: list[str]) -> str:
        if tag is not None:
            if not isinstance(tag, str) or not tag:
                raise QueryError(f'A tag must be a non-empty string, got {tag!r}')
            if EDGE_TAG_DELIMITER in tag:
                raise QueryError(f'Tag {tag!r} contains {EDGE_TAG_DELIMITER!r}, which only edge tags may hold')
            if tag in self._tags():
                raise QueryError(f'Tag {tag!r} is already used')
            return tag
        if entity is EntityType.NODE:
            names = node_types or ['']
            base = '-'.join(name.rstrip('.').rsplit('.', 1)[-1] or 'node' for name in names)
        else:
            base = 'core' if entity is EntityType.GROUP else entity.value
        number = 1
        while f'{base}_{number}' in self._tags():
            number += 1
        return f'{base}_{number}'

    def _relate(
        self, vertex: _Vertex, relationship: JsonObject, joining_keyword: str | None, joining_value: Any
    ) -> None:
        """Set the relationship of a new entry: the one given (by keyword, ``direction`` or aiida-core's
        ``joining_keyword``), else aiida-core's default join to the entry before it."""
        entity = vertex.entity
        if joining_keyword is not None:
            if relationship:
                raise QueryError(
                    f'append() takes one relationship, got {joining_keyword} and {", ".join(relationship)}'
                )
            relationship = {joining_keyword: joining_value}
        if len(relationship) > 1:
            raise QueryError(f'append() takes one relationship, got {", ".join(sorted(relationship))}')
        if relationship:
            ((name, target),) = relationship.items()
            if name == 'direction':
                name, target = self._direction(entity, target)
            else:
                target = self._tag_of(target) if not isinstance(target, str) else target
            self._check_relationship(vertex, name, target)
            vertex.relationship, vertex.target = name, target
        elif self._vertices:
            name = 'with_incoming' if entity is EntityType.NODE else 'with_node'
            self._check_relationship(vertex, name, self._vertices[-1].tag)
            vertex.relationship, vertex.target = name, self._vertices[-1].tag

    def _tag_of(self, given: Any) -> str:
        """The tag of the entity appended with the class (or tuple of classes) ``given``."""
        key = _class_key(given)
        found = [vertex.tag for vertex in self._vertices if key is not None and vertex.cls_key == key]
        if len(found) == 1:
            return found[0]
        if found:
            raise QueryError(f'{given!r} was appended more than once ({", ".join(found)}): use a tag')
        raise QueryError(f'No entity was appended as {given!r}; the tags are: {", ".join(sorted(self._tags()))}')

    def _direction(self, entity: EntityType, value: Any) -> tuple[str, str]:
        """The relationship and target of ``direction=value``."""
        if entity is not EntityType.NODE:
            raise QueryError(f'direction= joins nodes only, not a {entity.value}')
        if not isinstance(value, int) or isinstance(value, bool):
            raise QueryError(f'direction= takes a non-zero integer, got {value!r}')
        if value == 0 or abs(value) > len(self._vertices):
            raise QueryError(f'direction={value} names no earlier entity (there are {len(self._vertices)})')
        target = self._vertices[-abs(value)].tag
        return ('with_incoming' if value > 0 else 'with_outgoing'), target

    @staticmethod
    def _classify(given: Any, entity_type: Any, subclassing: bool) -> tuple[EntityType, list[str]]:
        """Return the entity of the class(es) ``given`` or of ``entity_type``, and the node types it stands for."""
        cls = given
        if (cls is None) == (entity_type is None):
            raise QueryError('append() needs exactly one of cls and entity_type')
        from provstore.orm.nodes import Node  # noqa: PLC0415 - import cycle

        if cls is not None:
            classes = list(cls) if isinstance(cls, (list, tuple)) else [cls]
            if not classes or not all(isinstance(item, type) and issubclass(item, Entity) for item in classes):
                raise QueryError(f'cls must be an entity class or a tuple of node classes, got {cls!r}')
            if len(classes) == 1 and not issubclass(classes[0], Node):
                return classes[0]._entity_type, []
            if not all(issubclass(item, Node) for item in classes):
                raise QueryError('A tuple of classes may hold node classes only')
            types = [item.NODE_TYPE for item in classes]
            # NOTE: Node with subclassing is every node (no filter); without, only nodes whose type is Node's own.
            return EntityType.NODE, [] if types == [''] and subclassing else types
        names = [entity_type] if isinstance(entity_type, str) else entity_type
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(name, str) for name in names):
            raise QueryError(f'entity_type must be a string or a list of strings, got {entity_type!r}')
        if len(names) == 1 and names[0].lower() in _ENTITY_NAMES:
            return _ENTITY_NAMES[names[0].lower()], []
        if len(names) == 1 and names[0].lower().startswith('group.'):
            return EntityType.GROUP, []  # aiida-core's type string of Group and its subclasses
        for name in names:
            if name and not name.endswith('.'):  # '' is Node's own type string
                raise QueryError(
                    f'Unknown entity_type {name!r}: use one of {", ".join(sorted(_ENTITY_NAMES))} or a node type '
                    "string ending in '.' such as 'data.core.dict.Dict.'"
                )
        return EntityType.NODE, list(names)

    def _check_relationship(self, vertex: _Vertex, name: str, target: Any) -> None:
        related = RELATIONSHIPS.get((vertex.entity, name))
        if related is None:
            allowed = sorted(relationship for entity, relationship in RELATIONSHIPS if entity is vertex.entity)
            raise QueryError(
                f'{vertex.entity.value} {vertex.tag!r} has no relationship {name!r}; it has: {", ".join(allowed)}'
            )
        if not isinstance(target, str):
            raise QueryError(f'{name}= takes the tag of an earlier entity, got {target!r}')
        found = next((other for other in self._vertices if other.tag == target), None)
        if found is None:
            raise QueryError(f'{name}={target!r}: no entity has the tag {target!r}')
        if found.entity is not related[0]:
            raise QueryError(
                f'{name}={target!r}: {target!r} is a {found.entity.value}, but {name} of a {vertex.entity.value} '
                f'relates to a {related[0].value}'
            )

    @staticmethod
    def _edge_kind(vertex: _Vertex) -> str | None:
        if vertex.relationship is None:
            return None
        return RELATIONSHIPS[(vertex.entity, vertex.relationship)][1]

    def _find(self, tag: Any, empty: bool = False) -> tuple[_Vertex, bool]:
        """The entry tagged ``tag`` and whether the tag is its edge's (``empty``: for nothing to filter or project,
        which even an edge that is not in the database takes, as aiida-core's ``as_dict()`` writes one)."""
        if not isinstance(tag, str):
            tag = self._tag_of(tag)
        for vertex in self._vertices:
            if vertex.tag == tag:
                return vertex, False
            if vertex.edge_tag == tag:
                if self._edge_kind(vertex) is None and not empty:
                    raise QueryError(f'{tag!r} joins by {vertex.relationship}, which has no edge to filter or project')
                return vertex, True
        raise QueryError(f'No entity or edge has the tag {tag!r}; the tags are: {", ".join(sorted(self._tags()))}')

    def _fields_of(self, vertex: _Vertex, on_edge: bool) -> JsonObject:
        if on_edge:
            kind = self._edge_kind(vertex)
            assert kind is not None
            return EDGE_FIELDS[kind]
        return FIELDS[vertex.entity]

    def _query(self) -> Query:
        """Return the checked query for the storage."""
        if not self._vertices:
            raise QueryError('The query is empty: append() an entity first')
        index = {vertex.tag: number for number, vertex in enumerate(self._vertices)}
        projected = any(vertex.project or vertex.edge_project for vertex in self._vertices)
        entries = []
        for number, vertex in enumerate(self._vertices):
            fields = FIELDS[vertex.entity]
            filters = _user_filters(vertex)
            # NOTE: as aiida-core's, a filter on node_type replaces the one the class stands for.
            replaced = vertex.entity is EntityType.NODE and 'node_type' in filters
            class_filter = _type_filter(vertex) if vertex.node_types and not replaced else None
            # NOTE: an outer join joins by class only: the class decides what joins, the filters which rows
            # come back (aiida-core's semantics), so that a row without a match is kept with None.
            outer = vertex.outerjoin and vertex.relationship is not None
            items = [class_filter] if class_filter is not None and not outer else []
            if filters:
                items.append(_parse_filters(filters, fields, vertex.tag, 0))
            project = vertex.project or (['*'] if not projected and number == len(self._vertices) - 1 else [])
            join = None
            if vertex.relationship is not None:
                edge_kind = self._edge_kind(vertex)
                edge = None
                if edge_kind is not None:
                    edge_fields = EDGE_FIELDS[edge_kind]
                    edge = Edge(
                        edge_kind,
                        _parse_filters(vertex.edge_filters, edge_fields, vertex.edge_tag, 0)
                        if vertex.edge_filters
                        else None,
                        tuple(
                            _parse_projection(item, edge_fields, vertex.edge_tag or '', True)
                            for item in vertex.edge_project
                        ),
                    )
                join = Join(
                    vertex.relationship,
                    index[vertex.target or ''],
                    edge,
                    vertex.outerjoin,
                    tuple(vertex.link_types or ()),
                    vertex.max_depth,
                    class_filter if outer else None,
                )
            entries.append(
                PathEntry(
                    vertex.entity,
                    _and(items),
                    tuple(_parse_projection(item, fields, vertex.tag, False) for item in project),
                    join,
                )
            )
        order = [
            _parse_order(item, FIELDS[self._vertices[index[tag]].entity], tag, index[tag])
            for spec in self._order_by
            for tag, items in spec.items()
            for item in items
        ]
        return Query.build(tuple(entries), tuple(order), self._limit, self._offset, self._distinct)

    def result_keys(self) -> list[tuple[str, str]]:
        """Return ``(tag, projection)`` of each value of a row, in order (``'*'`` for an entity)."""
        query = self._query()
        keys = []
        for number, on_edge, projection in query.projections:
            vertex = self._vertices[number]
            tag = (vertex.edge_tag or '') if on_edge else vertex.tag
            keys.append((tag, _projection_key(projection)))
        return keys

    def _converters(self, query: Query) -> list[Any]:
        """One function per value of a row, turning what the storage returns into what the user gets."""
        storage = self.storage
        classes = _entity_classes()
        functions: list[Any] = []
        for number, on_edge, projection in query.projections:
            entity = query.entries[number].entity
            if projection.field == '*' and not on_edge and projection.func is None and entity in classes:
                functions.append(_entity_loader(storage, entity, classes[entity]))
            elif projection.cast == 'd':
                functions.append(_to_datetime)
            else:
                functions.append(_identity)
        return functions


# -- parsing ----------------------------------------------------------------------------------------------------


def _aiida_type_filter(vertex: _Vertex) -> dict[str, Any]:
    """The filter aiida-core's ``as_dict()`` writes for the classes of a node or group entry (``node_type``
    ``like`` a prefix); provstore applies the same from the path entry, so reading it back changes nothing."""
    if vertex.entity is EntityType.GROUP:
        return {'type_string': {'like': '%'}}
    if vertex.entity is not EntityType.NODE:
        return {}
    items = []
    for node_type in vertex.node_types or ['']:
        if vertex.subclassing:
            path = node_type_path(node_type)
            items.append({'like': _escape_like(f'{path}.' if path else '') + '%'})
        else:
            items.append({'==': node_type})
    return {'node_type': items[0] if len(items) == 1 else {'or': items}}


def _user_filters(vertex: _Vertex) -> dict[str, Any]:
    """The filters of ``vertex`` without the one its class stands for, as ``as_dict()`` writes it (read back by
    ``from_dict()``): the class is applied from the path entry, where an outer join needs it."""
    implied = _aiida_type_filter(vertex)
    return {key: value for key, value in vertex.filters.items() if key not in implied or implied[key] != value}


def _escape_like(text: str) -> str:
    return text.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')


def _projection_item(item: Any) -> Any:
    """An item of ``project`` in aiida-core's full form, ``{field: {options}}``."""
    return {item: {}} if isinstance(item, str) else item


def _class_key(cls: Any) -> Any:
    """What a class (or list of classes) given to ``append`` is found by later."""
    if isinstance(cls, (list, tuple)):
        return tuple(cls)
    return cls if isinstance(cls, type) else None


def _order_item(item: Any, tag: str) -> Any:
    """An item of ``order_by`` in aiida-core's full form, ``{field: {'order': ..., ...}}`` (checked later)."""
    if isinstance(item, str):
        return {item: {'order': 'asc'}}
    if isinstance(item, Mapping) and len(item) == 1:
        ((name, options),) = item.items()
        if isinstance(options, str):
            return {name: {'order': options}}
        if isinstance(options, Mapping):
            return {name: {'order': 'asc', **options}}
    raise QueryError(f"{tag!r}: order by a field name or {{field: {{'order': 'asc'|'desc', 'cast': c}}}}, got {item!r}")


def _identity(value: Any) -> Any:
    return value


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    return value


def _entity_loader(storage: EntityStorage, entity: EntityType, cls: type[Entity]) -> Any:
    if entity is EntityType.NODE:

        def load_node(row: Row | None) -> Any:
            return None if row is None else load_node_class(row['node_type'])._from_row(storage, row)

        return load_node

    def load(row: Row | None) -> Any:
        return None if row is None else cls._from_row(storage, row)

    return load


def _type_filter(vertex: _Vertex) -> Filter:
    """The filter on ``node_type`` that the classes (or type strings) of a node entry stand for."""
    items: list[Filter] = []
    for node_type in vertex.node_types:
        path = node_type_path(node_type)
        if vertex.subclassing and path:
            items.append(Condition('node_type', (), 'startswith', f'{path}.'))
        elif vertex.subclassing:
            return Junction('and', ())
        else:
            items.append(Condition('node_type', (), '==', node_type))
    return items[0] if len(items) == 1 else Junction('or', tuple(items))


def _and(items: list[Filter]) -> Filter | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else Junction('and', tuple(items))


def _split_field(name: Any, fields: Mapping[str, Any], tag: str | None) -> tuple[str, tuple[str, ...]]:
    """Return the column and JSON path of a field name such as ``attributes.a.b``, ``pk`` or ``label``."""
    if not isinstance(name, str) or not name:
        raise QueryError(f'{tag!r}: a field name must be a non-empty string, got {name!r}')
    column, *path = name.split('.')
    column = 'id' if column == 'pk' and 'id' in fields else column
    if column not in fields:
        raise QueryError(f'{tag!r} has no field {column!r}; its fields are: {", ".join(fields)}')
    if path and fields[column] != 'json':
        raise QueryError(f'{tag!r}: field {column!r} is not JSON, so {name!r} names nothing')
    for key in path:
        if not key:
            raise QueryError(f'{tag!r}: {name!r} has an empty key')
        if '"' in key or '\x00' in key:
            raise QueryError(f'{tag!r}: JSON key {key!r} in {name!r} cannot be queried (it holds " or a NUL)')
    return column, tuple(path)


def _parse_filters(filters: Any, fields: Mapping[str, Any], tag: str | None, depth: int) -> Filter:
    """Return the filter that aiida-core's filter dict ``filters`` describes."""
    if depth > MAX_FILTER_DEPTH:
        raise QueryError(f'The filters of {tag!r} nest deeper than {MAX_FILTER_DEPTH} levels')
    if not isinstance(filters, Mapping):
        raise QueryError(f'The filters of {tag!r} must be a dict, got {filters!r}')
    items: list[Filter] = []
    for key, spec in filters.items():
        if key in ('and', 'or', '!and', '!or'):
            if not isinstance(spec, (list, tuple)):
                raise QueryError(f'{tag!r}: {key!r} takes a list of filter dicts, got {spec!r}')
            kind: Literal['and', 'or'] = 'and' if key.lstrip('!') == 'and' else 'or'
            junction = Junction(kind, tuple(_parse_filters(item, fields, tag, depth + 1) for item in spec))
            items.append(Negation(junction) if key.startswith('!') else junction)
        else:
            column, path = _split_field(key, fields, tag)
            items.append(_parse_field(column, path, fields[column], spec, f'{tag!r} {key}', depth + 1))
    return _and(items) or Junction('and', ())


def _parse_field(  # noqa: PLR0917 - private: one field's filter spec and where it is
    column: str, path: tuple[str, ...], kind: str, spec: Any, where: str, depth: int
) -> Filter:
    if depth > MAX_FILTER_DEPTH:
        raise QueryError(f'{where}: filters nest deeper than {MAX_FILTER_DEPTH} levels')
    on_json = kind == 'json' and path
    value_kind = 'json' if on_json or kind == 'json' else kind
    if not isinstance(spec, Mapping) or (kind == 'json' and not on_json and not _is_operator_dict(spec)):
        condition = Condition(column, path, '==', _value(spec))
        check_condition(value_kind, condition, where)  # type: ignore[arg-type]
        return condition
    items: list[Filter] = []
    for operator, value in spec.items():
        if not isinstance(operator, str):
            raise QueryError(f'{where}: operator {operator!r} is not a string')
        negated = operator.startswith('!')
        name = operator[1:] if negated else operator
        if name in ('and', 'or'):
            if not isinstance(value, (list, tuple)):
                raise QueryError(f'{where}: {operator!r} takes a list of operator dicts, got {value!r}')
            item: Filter = Junction(
                name,  # type: ignore[arg-type]
                tuple(_parse_field(column, path, kind, sub, where, depth + 1) for sub in value),
            )
        else:
            if name not in OPERATORS:
                raise QueryError(
                    f'{where}: unknown operator {operator!r}; the operators are {", ".join(sorted(OPERATORS))} '
                    "(a leading '!' negates one)"
                )
            item = Condition(column, path, name, _value(value))
            check_condition(value_kind, item, where)  # type: ignore[arg-type]
        items.append(Negation(item) if negated else item)
    return _and(items) or Junction('and', ())


def _is_operator_dict(spec: Mapping[str, Any]) -> bool:
    return bool(spec) and all(isinstance(key, str) and key.lstrip('!') in OPERATORS | {'and', 'or'} for key in spec)


def _value(value: Any) -> Any:
    """A filter value as the storage takes it: entities become pks, UUIDs strings, sets lists."""
    if isinstance(value, Entity):
        if value.pk is None:
            raise QueryError(f'Cannot filter by the unstored {value!r}')
        return value.pk
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return [_value(item) for item in value]
    if isinstance(value, list):
        return [_value(item) for item in value]
    return value


def _parse_projection(item: Any, fields: Mapping[str, Any], tag: str, on_edge: bool) -> Projection:
    """Return the projection that an item of ``project=`` describes."""
    options: Mapping[str, Any] = {}
    if isinstance(item, Mapping):
        if len(item) != 1:
            raise QueryError(f'{tag!r}: a projection dict has one key, the field: {item!r}')
        ((item, options),) = item.items()
        if not isinstance(options, Mapping) or set(options) - {'cast', 'func'}:
            raise QueryError(f"{tag!r}: projection options are 'cast' and 'func', got {options!r}")
    cast, func = options.get('cast'), options.get('func')
    if cast is not None and cast not in CASTS:
        raise QueryError(f'{tag!r}: unknown cast {cast!r}; the casts are {", ".join(CASTS)}')
    if func is not None and func not in AGGREGATES:
        raise QueryError(f'{tag!r}: unknown function {func!r}; the functions are {", ".join(sorted(AGGREGATES))}')
    if item in ('*', '**'):
        if on_edge and item == '*':
            raise QueryError(f"{tag!r}: an edge has no entity to project; project its fields or '**'")
        if cast is not None or (func is not None and func != 'count'):
            raise QueryError(f"{tag!r}: {item!r} takes no cast, and only the function 'count'")
        return Projection(item, (), None, func)
    column, path = _split_field(item, fields, tag)
    if cast is not None and cast in 'bd' and fields[column] != 'json':
        raise QueryError(f'{tag!r}: cast {cast!r} applies to JSON values only')
    return Projection(column, path, cast, func)


def _projection_key(projection: Projection) -> str:
    if projection.field in ('*', '**'):
        return projection.field
    return '.'.join((projection.field, *projection.path))


def _parse_order(item: Any, fields: Mapping[str, Any], tag: str, entry: int = 0) -> OrderBy:
    if isinstance(item, str):
        column, path = _split_field(item, fields, tag)
        return OrderBy(entry, column, path)
    if not isinstance(item, Mapping) or len(item) != 1:
        raise QueryError(f"{tag!r}: order by a field name or {{field: {{'order': 'asc'|'desc', 'cast': c}}}}")
    ((name, options),) = item.items()
    if isinstance(options, str):
        options = {'order': options}
    if not isinstance(options, Mapping) or set(options) - {'order', 'cast'}:
        raise QueryError(f"{tag!r}: the options of ordering by {name!r} are 'order' and 'cast', got {options!r}")
    order = options.get('order', 'asc')
    if order not in ('asc', 'desc'):
        raise QueryError(f"{tag!r}: order {order!r} of {name!r} is neither 'asc' nor 'desc'")
    cast = options.get('cast')
    if cast is not None and cast not in CASTS:
        raise QueryError(f'{tag!r}: unknown cast {cast!r}; the casts are {", ".join(CASTS)}')
    column, path = _split_field(name, fields, tag)
    return OrderBy(entry, column, path, cast, order == 'desc')


def _link_types(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return list(DEFAULT_TRAVERSAL_LINK_TYPES)
    if value == 'all':
        return list(LINK_TYPES)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise QueryError(f"link_types takes link type names or 'all', got {value!r}")
    unknown = [name for name in names if name not in LINK_TYPES]
    if unknown:
        raise QueryError(f'Unknown link types {unknown!r}; the link types are {", ".join(LINK_TYPES)}')
    return list(dict.fromkeys(names))


def _max_depth(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise QueryError(f'max_depth must be a positive integer, got {value!r}')
    return value


def _count_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise QueryError(f'{what} must be a non-negative integer or None, got {value!r}')
    if value > MAX_INT64:
        raise QueryError(f'{what} must be at most {MAX_INT64} (2**63 - 1), got {describe_int(value)}')
    return value


# -- JSON forms of values ---------------------------------------------------------------------------------------


def _plain(value: Any, where: str, depth: int = 0) -> Any:
    """A copy of filters or projections (so that later changes by the caller do not change the query), with stored
    entities as their pks and UUIDs as strings.

    :raises QueryError: for an unstored entity, nesting deeper than any query needs, or a value no backend stores
        (an integer beyond 64 bits, a string with a NUL character): every backend refuses it alike.
    """
    if depth > 4 * MAX_FILTER_DEPTH:
        raise QueryError(f'{where} nest too deeply')
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT64 <= value <= MAX_INT64:
        raise QueryError(f'{where}: {describe_int(value)} is outside the signed 64-bit range of stored integers')
    if isinstance(value, str) and '\x00' in value:
        raise QueryError(f'{where}: {value!r} contains a NUL character (\\x00), which no stored string holds')
    if isinstance(value, Mapping):
        return {key: _plain(item, where, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item, where, depth + 1) for item in value]
    if isinstance(value, (Entity, uuid.UUID)):
        return _value(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        # NOTE: a date is its first moment, in this process's time zone (the day date.today() names).
        return datetime.datetime.combine(value, datetime.time()).astimezone()
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {'$datetime': value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Entity):
        return value.pk
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {'$datetime'}:
            try:
                return datetime.datetime.fromisoformat(value['$datetime'])
            except (TypeError, ValueError):
                raise QueryError(f'Bad datetime in a serialised query: {value!r}') from None
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def query_from_json(text: str, storage: EntityStorage | None = None) -> QueryBuilder:
    """Return the query of a JSON document in :meth:`QueryBuilder.as_dict` form.

    :raises QueryError: for text that is not JSON or not a query, naming the problem.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError(f'The query is not valid JSON: {exc}') from None
    except RecursionError:
        raise QueryError('The query is nested too deeply to be read as JSON') from None
    return QueryBuilder.from_dict(data, storage)
