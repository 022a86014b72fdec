"""The QueryBuilder's compiler: a checked :class:`~provstore.storage.query.Query` to one SQL statement.

Both dialects get the same semantics; the SQL differs where the databases do, and the compiler asks the storage's
dialect (:mod:`provstore_psql_dos.dialects`) for those parts:

* A JSON value is ``column -> 'a' -> 'b'`` (``jsonb``) on PostgreSQL and ``json_extract(column, '$."a"."b"')`` on
  SQLite, with the keys written into the SQL as literals, so that an index declared on the path
  (:mod:`~provstore_psql_dos.jsonindex`) is the very same expression and serves the filter.
* Comparisons are typed without CASE wrappers: on PostgreSQL a number range is a strict JSON path test (false for
  anything but a number), on SQLite ``json_extract`` with a ``json_type`` test.
* On PostgreSQL, numeric comparisons on a node path with a declared index are look-ups in its number table, and a
  count of such a range adds up the table's tally (:mod:`~provstore_psql_dos.jsonindex`).
* A comparison with a plain value (a number, a string) is a named parameter: statements are made once per
  :func:`query_shape` and reused.
* A negation is ``NOT COALESCE(filter, false)``: the exact complement, rows without the key included.
* Lists are one bind parameter (a PostgreSQL array, an SQLite JSON document read by ``json_each``).
* ``with_ancestors``/``with_descendants`` are recursive queries over ``db_dblink`` that start from the rows of
  the related entity and keep each (start, reached) pair once (``UNION``), so a diamond never doubles the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from provstore.exceptions import QueryError
from provstore.storage import EntityType
from provstore.storage.query import (
    EDGE_FIELDS,
    FIELDS,
    Condition,
    Filter,
    Junction,
    Negation,
    OrderBy,
    Projection,
    Query,
)
from provstore_psql_dos.dialects.base import COMPARISONS, COUNTED_FIELDS, RANGES, compare, is_number
from provstore_psql_dos.tables import TABLES
from provstore_psql_dos.traversal import reach as reach_cte
from provstore_psql_dos.traversal import seed, table_alias

if TYPE_CHECKING:
    from provstore_psql_dos.dialects.base import Dialect
    from provstore_psql_dos.jsonindex import NumberTable

__all__ = ['CompiledQuery', 'QueryCompiler', 'QueryShape', 'query_shape']


DEEP_FILTER = 40
"""Filters nested deeper than this raise Python's recursion limit to :data:`RECURSION_LIMIT` before compiling."""

RECURSION_LIMIT = 20_000


@dataclass
class _Sources:
    """The tables of a query being compiled: an alias per entry, the edge of each join, the FROM and WHERE."""

    aliases: list[FromClause] = field(default_factory=list)
    edges: list[FromClause | None] = field(default_factory=list)
    where: list[ColumnElement[bool]] = field(default_factory=list)
    from_clause: Any = None

    def of(self, query: Query, number: int, on_edge: bool) -> tuple[FromClause, dict[str, str]]:
        """The table (or edge) of entry ``number`` and the kinds of its columns."""
        entry = query.entries[number]
        if not on_edge:
            return self.aliases[number], dict(FIELDS[entry.entity])
        edge = self.edges[number]
        assert edge is not None and entry.join is not None and entry.join.edge is not None
        return edge, dict(EDGE_FIELDS[entry.join.edge.kind])


@dataclass(frozen=True)
class CompiledQuery:
    """A statement, how to turn each of its result rows into the query's values, and its parameters.

    ``parameters`` maps the statement's named parameters to the query's values: ``(key, slot, form)`` binds
    ``form(values[slot])`` to ``key``, ``values`` being those of :func:`query_shape`. ``reusable``: every value of the
    shape is such a parameter, so that the statement serves every query of the shape.
    """

    statement: Select[Any]
    convert: Callable[[Sequence[Any]], tuple[Any, ...]]
    parameters: tuple[tuple[str, int, Callable[[Any], Any]], ...] = ()
    reusable: bool = False

    def bind(self, values: Sequence[Any]) -> dict[str, Any]:
        """The parameters of the statement for a query of its shape whose values are ``values``."""
        return {key: form(values[slot]) for key, slot, form in self.parameters}


class QueryCompiler:
    """Compile a query for one dialect. An instance keeps state while it compiles: make one per query."""

    def __init__(
        self,
        dialect: Dialect,
        indexed: frozenset[tuple[str, str, tuple[str, ...]]] = frozenset(),
        numbers: frozenset[NumberTable] = frozenset(),
    ) -> None:
        """:param indexed: the JSON paths with a declared index, as ``(table, field, keys)``.
        :param numbers: the number tables there are (PostgreSQL).
        """
        self._dialect = dialect
        self.indexed = indexed
        self.numbers = numbers
        self._slots: dict[int, int] = {}
        self._parameters: list[tuple[str, int, Callable[[Any], Any]]] = []

    def given(self, item: Condition, type_: Any = None, form: Callable[[Any], Any] | None = None) -> Any:
        """The value of ``item`` (in the ``form`` the statement takes) as a bind parameter; named, and recorded in
        the parameters, when it is a value of the query's shape."""
        form = self._dialect.checked_form(form or _identity)
        slot = self._slots.get(id(item))
        if slot is None:
            return bindparam(None, form(item.value), type_=type_)
        key = f'value_{len(self._parameters)}'
        self._parameters.append((key, slot, form))
        return bindparam(key, form(item.value), type_=type_)

    def _finish(self, statement: Select[Any], convert: Any, conditions: Sequence[Condition]) -> CompiledQuery:
        slots = {slot for _, slot, _ in self._parameters}
        reusable = slots == set(range(len(conditions)))
        return CompiledQuery(statement, convert, tuple(self._parameters), reusable)

    # -- JSON expressions ---------------------------------------------------------------------------------------

    # -- filters ------------------------------------------------------------------------------------------------

    _type_by_index = True
    """Whether a node_type prefix may use the index on node_type (see :meth:`_column`)."""

    def _uses_json_index(self, table: str, item: Filter) -> bool:
        """Whether ``item`` holds a condition (not under a negation or an ``or``) on a JSON path with an index."""
        if isinstance(item, Condition):
            return (table, item.field, item.path) in self.indexed
        if isinstance(item, Junction) and item.kind == 'and':
            return any(self._uses_json_index(table, sub) for sub in item.items)
        return False

    def filter(self, source: FromClause, kinds: Mapping[str, str], item: Filter) -> ColumnElement[bool]:
        """The SQL condition of ``item`` on the columns of ``source``."""
        if isinstance(item, Junction):
            parts = [self.filter(source, kinds, sub) for sub in item.items]
            if item.kind == 'and':
                return and_(true(), *parts) if parts else true()
            return or_(false(), *parts) if parts else false()
        if isinstance(item, Negation):
            return not_(func.coalesce(self.filter(source, kinds, item.item), false(), type_=Boolean()))
        column = source.c[item.field]
        kind = kinds[item.field]
        if kind == 'json':
            return self._json_condition(column, item)
        return self._column(column, kind, item)

    def _json_condition(self, column: ColumnElement[Any], item: Condition) -> ColumnElement[bool]:
        return self._dialect.json_condition(column, item, self)

    def _entry_filter(self, alias: FromClause, entity: EntityType, item: Filter) -> ColumnElement[bool]:
        """The condition of an entry's filter: its numeric conditions on paths with a number table are look-ups there.

        Only the conditions every row must meet (the top-level ``and``) are looked up: an index serves those.
        """
        conjuncts = _conjuncts(item)
        tables = [self._number_table(TABLES[entity], conjunct) for conjunct in conjuncts]
        if not any(tables):
            return self.filter(alias, dict(FIELDS[entity]), item)
        parts = []
        for conjunct, numbers in zip(conjuncts, tables, strict=True):
            if numbers is None or not isinstance(conjunct, Condition):
                parts.append(self.filter(alias, dict(FIELDS[entity]), conjunct))
            else:
                side = numbers.table()
                number = self._dialect.number_condition(side.c.number, conjunct, self)
                parts.append(alias.c.id.in_(select(side.c.id).where(number)))
        return and_(true(), *parts)

    def _number_table(self, table: str, item: Filter) -> NumberTable | None:
        """The number table answering ``item``, if it is a numeric comparison on a path that has one.

        It holds a row for every node whose value at the path is a JSON number, and a numeric comparison is false for
        any other value, so the table gives exactly the rows the comparison keeps.
        """
        if not isinstance(item, Condition) or not self.numbers:
            return None
        values = item.value if item.operator == 'in' else [item.value]
        if item.operator not in (*COMPARISONS, 'in') or not values or not all(map(is_number, values)):
            return None
        numbers = self._dialect.number_table(table, item.field, item.path)
        return numbers if numbers in self.numbers else None

    def count(self, query: Query, conditions: Sequence[Condition] = ()) -> CompiledQuery:
        """The statement counting the rows of ``query``; from number tables alone when they hold all it asks.

        :param conditions: those of :func:`query_shape`, whose values become named parameters.
        """
        self._slots = {id(condition): slot for slot, condition in enumerate(conditions)}
        with _deep_filters(query):
            covered = self._count_from_number_tables(query)
            if covered is None:
                statement = self._compile(query).statement.order_by(None)
                covered = select(func.count()).select_from(statement.subquery('counted'))
        return self._finish(covered, _identity, conditions)

    def _count_from_number_tables(self, query: Query) -> Select[Any] | None:
        """A count of nodes filtered by their class, ids and numeric comparisons on paths with number tables only.

        Such a count reads the number tables (or their tallies) and never the nodes: PostgreSQL cannot count from an
        expression index alone. Any other query gives None.
        """
        split = self._numbers_and_others(query)
        if split is None:
            return None
        numbers, others = split
        if (
            len(numbers) == 1
            and numbers[0][1].operator in RANGES
            and all(_fields(item) <= {'node_type'} for item in others)
        ):
            return self._dialect.count_from_tally(*numbers[0], others, self)
        sides: dict[NumberTable, FromClause] = {}
        for table, _ in numbers:
            sides.setdefault(table, table.table().alias(f'number_{len(sides)}'))
        first, *rest = sides.values()
        from_clause: Any = first
        for side in rest:
            from_clause = from_clause.join(side, side.c.id == first.c.id)
        where = [self._dialect.number_condition(sides[table].c.number, condition, self) for table, condition in numbers]
        where += [self.filter(first, COUNTED_FIELDS, item) for item in others]
        return select(func.count()).select_from(from_clause).where(*where)

    def _numbers_and_others(self, query: Query) -> tuple[list[tuple[NumberTable, Condition]], list[Filter]] | None:
        """The numeric conditions on paths with number tables of a one-entry node query, and its other conditions,
        when these test only ``id`` and ``node_type`` and it has no aggregate, limit or distinct; else None."""
        if len(query.entries) != 1 or query.distinct or query.limit is not None or query.offset is not None:
            return None
        entry = query.entries[0]
        if entry.entity is not EntityType.NODE or entry.filter is None:
            return None
        if any(projection.func is not None for _, _, projection in query.projections):
            return None
        numbers: list[tuple[NumberTable, Condition]] = []
        others: list[Filter] = []
        for conjunct in _conjuncts(entry.filter):
            table = self._number_table(TABLES[EntityType.NODE], conjunct)
            if table is not None and isinstance(conjunct, Condition):
                numbers.append((table, conjunct))
            elif _fields(conjunct) <= set(COUNTED_FIELDS):
                others.append(conjunct)
            else:
                return None
        return (numbers, others) if numbers else None

    def _column(self, column: ColumnElement[Any], kind: str, item: Condition) -> ColumnElement[bool]:
        operator, value = item.operator, item.value
        if kind == 'uuid' and operator in ('==', 'in'):
            _check_uuids(value if operator == 'in' else [value])
        if operator == '==':
            return column.is_(None) if value is None else column == self.given(item, column.type)
        if operator == 'in':
            values = list(value)
            return self._dialect.in_values(column, kind, values) if values else false()  # type: ignore[arg-type]
        if operator == 'startswith':
            if not self._type_by_index and item.field == 'node_type':
                column = self._dialect.without_type_index(column)
            return self._dialect.starts_with(column if kind != 'uuid' else cast(column, Text), value)
        text = cast(column, Text) if kind == 'uuid' else column
        if operator == 'like':
            return self._dialect.like(text, value, False)
        if operator == 'ilike':
            return self._dialect.like(text, value, True)
        ordered = self._dialect.ordered_text(column) if kind == 'str' else column
        return compare(ordered, operator, self.given(item, column.type))

    # -- projections --------------------------------------------------------------------------------------------

    def projection(
        self, source: FromClause, kinds: dict[str, str], projection: Projection
    ) -> tuple[list[ColumnElement[Any]], Callable[[Sequence[Any]], Any]]:
        """The SQL columns of a projection and the function making its value of them."""
        if projection.field in ('*', '**'):
            if projection.func == 'count':
                return [func.count(source.c[next(iter(kinds))])], _single(_number)
            names = list(kinds)
            columns: list[ColumnElement[Any]] = [source.c[name] for name in names]

            def row(values: Sequence[Any]) -> Any:
                if all(value is None for value in values):
                    return None  # an outer join that found nothing
                return dict(zip(names, values, strict=True))

            return columns, row
        column = source.c[projection.field]
        kind = kinds[projection.field]
        if projection.func is not None:
            return [self._aggregate(column, kind, projection)], _single(_number)
        if kind == 'json' and projection.path:
            return self._json_value(column, projection.path, projection.cast)
        return [self._cast(column, kind, projection.cast)], _single(_identity)

    def _json_value(
        self, column: ColumnElement[Any], path: tuple[str, ...], cast_to: str | None
    ) -> tuple[list[ColumnElement[Any]], Callable[[Sequence[Any]], Any]]:
        """The SQL columns of the value at ``path`` (cast as asked) and the function making the value of them."""
        if cast_to not in (None, 'j'):
            return [self._dialect.json_cast(column, path, cast_to)], _single(_bool if cast_to == 'b' else _identity)
        return self._dialect.json_projection(column, path)

    def _cast(self, column: ColumnElement[Any], kind: str, cast_to: str | None) -> ColumnElement[Any]:
        if cast_to == 'f':
            return cast(column, Float())
        if cast_to == 'i' and kind != 'int':
            return cast(column, self._dialect.integer_type())
        if cast_to == 't' and kind != 'str':
            return cast(column, Text())
        return column

    def _aggregate(self, column: ColumnElement[Any], kind: str, projection: Projection) -> ColumnElement[Any]:
        name, path = projection.func, projection.path
        if kind == 'json' and path:
            if name == 'count' and projection.cast is None:
                present = self._dialect.json_present(column, path)
                return func.count(present)
            value = self._dialect.json_cast(column, path, projection.cast or 'f')
        elif kind == 'json':
            if name != 'count':
                raise QueryError(f'{name}() of a whole JSON column means nothing; give a path and a cast')
            value = column
        else:
            value = self._cast(column, kind, projection.cast)
            if kind == 'str' and projection.cast in (None, 't'):
                value = self._dialect.ordered_text(value)
            if kind == 'bool' and name == 'sum':
                value = cast(value, Integer())
        if name == 'sum' and kind in ('str', 'uuid', 'time') and projection.cast not in ('f', 'i'):
            raise QueryError(f'sum() of the text field {projection.field!r} means nothing')
        aggregate: ColumnElement[Any] = getattr(func, name or 'count')(value)
        return aggregate

    # -- ordering -----------------------------------------------------------------------------------------------

    def order(self, source: FromClause, kinds: dict[str, str], order: OrderBy) -> list[ColumnElement[Any]]:
        """The sort keys of ``order`` (directions are added by the caller)."""
        column = source.c[order.field]
        kind = kinds[order.field]
        if kind == 'json' and order.path and order.cast not in (None, 'j'):
            return [self._dialect.json_cast(column, order.path, 't' if order.cast == 'd' else order.cast)]
        if kind == 'json' and order.path:
            return self._dialect.json_sort_keys(column, order.path)
        if kind == 'json':
            raise QueryError(f'Cannot order by the whole JSON column {order.field!r}: give a path')
        key = self._cast(column, kind, order.cast)
        if kind == 'str' and order.cast in (None, 't'):
            key = self._dialect.ordered_text(key)
        return [key]

    # -- the statement ------------------------------------------------------------------------------------------

    def compile(self, query: Query, conditions: Sequence[Condition] = ()) -> CompiledQuery:
        """Return the statement of ``query`` and its row converter.

        :param conditions: those of :func:`query_shape`, whose values become named parameters.
        """
        self._slots = {id(condition): slot for slot, condition in enumerate(conditions)}
        with _deep_filters(query):
            compiled = self._compile(query)
        return self._finish(compiled.statement, compiled.convert, conditions)

    def _compile(self, query: Query) -> CompiledQuery:
        sources = self._sources(query)
        columns: list[ColumnElement[Any]] = []
        makers: list[tuple[slice, Callable[[Sequence[Any]], Any]]] = []
        grouped: list[ColumnElement[Any]] = []
        aggregated = any(projection.func is not None for _, _, projection in query.projections)
        for number, on_edge, projection in query.projections:
            source, kinds = sources.of(query, number, on_edge)
            parts, make = self.projection(source, kinds, projection)
            makers.append((slice(len(columns), len(columns) + len(parts)), make))
            columns.extend(parts)
            if aggregated and projection.func is None:
                grouped.extend(parts)
        if not columns:
            raise QueryError('The query projects nothing')
        statement = select(*columns).select_from(sources.from_clause)
        if sources.where:
            statement = statement.where(*sources.where)
        if grouped:
            statement = statement.group_by(*grouped)
        statement = self._order_and_limit(statement, query, sources, len(columns))

        def convert(row: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(make(row[where]) for where, make in makers)

        return CompiledQuery(statement, convert)

    def _sources(self, query: Query) -> _Sources:
        """The FROM clause of ``query``: every entry joined to the one it relates to, and the WHERE conditions."""
        sources = _Sources()
        for number, entry in enumerate(query.entries):
            alias = table_alias(TABLES[entry.entity], f'{entry.entity.value}_{number}')
            sources.aliases.append(alias)
            condition = None
            if entry.filter is not None:
                self._type_by_index = not self._uses_json_index(TABLES[entry.entity], entry.filter)
                try:
                    condition = self._entry_filter(alias, entry.entity, entry.filter)
                finally:
                    self._type_by_index = True
            join = entry.join
            if join is None:
                sources.from_clause = alias
                sources.edges.append(None)
                sources.where.extend([condition] if condition is not None else [])
                continue
            edge, edge_on, entity_on = self._join(
                number, entry.entity, join, alias, sources.aliases[join.target], query
            )
            sources.edges.append(edge)
            if join.edge is not None and join.edge.filter is not None and edge is not None:
                sources.where.append(self.filter(edge, dict(EDGE_FIELDS[join.edge.kind]), join.edge.filter))
            if join.on is not None:
                # NOTE: an outer join's ``on`` (the class) decides what joins; its filters, like an inner join's,
                # which rows come back (aiida-core's semantics).
                on_condition = self._entry_filter(alias, entry.entity, join.on)
                if join.outer:
                    entity_on = and_(entity_on, on_condition)
                else:
                    sources.where.append(on_condition)
            if condition is not None:
                sources.where.append(condition)
            if edge is None:
                sources.from_clause = sources.from_clause.join(alias, entity_on, isouter=join.outer)
            elif join.outer:
                sources.from_clause = sources.from_clause.join(edge.join(alias, entity_on), edge_on, isouter=True)
            else:
                sources.from_clause = sources.from_clause.join(edge, edge_on).join(alias, entity_on)
        return sources

    def _order_and_limit(self, statement: Select[Any], query: Query, sources: _Sources, width: int) -> Select[Any]:
        """``statement`` made distinct, ordered and limited as ``query`` says."""
        keys: list[tuple[ColumnElement[Any], bool]] = []
        for order in query.order_by:
            entry = query.entries[order.entry]
            alias = sources.aliases[order.entry]
            keys.extend((key, order.descending) for key in self.order(alias, dict(FIELDS[entry.entity]), order))
        if query.distinct:
            statement = statement.distinct()
        if query.distinct and keys:
            # NOTE: a DISTINCT query can be ordered only by what it returns (PostgreSQL insists): the sort keys are
            # returned too, by an inner query, and the outer one orders by them and returns the projections.
            inner = statement.add_columns(*(key.label(f'sort_{index}') for index, (key, _) in enumerate(keys)))
            inner_rows = inner.subquery('distinct_rows')
            statement = select(*list(inner_rows.c)[:width])
            keys = [(inner_rows.c[f'sort_{index}'], descending) for index, (_, descending) in enumerate(keys)]
        if keys:
            statement = statement.order_by(
                *(key.desc().nulls_first() if descending else key.asc().nulls_last() for key, descending in keys)
            )
        if query.limit is not None:
            statement = statement.limit(query.limit)
        if query.offset is not None:
            statement = statement.offset(query.offset)
        return statement

    def _join(  # noqa: PLR0917 - private: the parts of one join
        self,
        number: int,
        entity: EntityType,
        join: Any,
        alias: FromClause,
        target: FromClause,
        query: Query,
    ) -> tuple[FromClause | None, ColumnElement[bool] | None, ColumnElement[bool]]:
        """The edge (or None), the condition joining it to ``target``, and the condition joining ``alias``."""
        relationship = join.relationship
        if relationship in ('with_incoming', 'with_outgoing'):
            link = table_alias('db_dblink', f'link_{number}')
            near, far = ('input_id', 'output_id') if relationship == 'with_incoming' else ('output_id', 'input_id')
            return link, link.c[near] == target.c.id, alias.c.id == link.c[far]
        if relationship in ('with_ancestors', 'with_descendants'):
            reach = self._reach(number, join, query, relationship == 'with_ancestors')
            return reach, reach.c.start_id == target.c.id, alias.c.id == reach.c.reached_id
        if (entity, relationship) in ((EntityType.NODE, 'with_group'), (EntityType.GROUP, 'with_node')):
            member = table_alias('db_dbgroup_dbnodes', f'group_node_{number}')
            if relationship == 'with_group':
                return member, member.c.dbgroup_id == target.c.id, alias.c.id == member.c.dbnode_id
            return member, member.c.dbnode_id == target.c.id, alias.c.id == member.c.dbgroup_id
        mine, theirs = _FOREIGN_KEYS[(entity, relationship)]
        return None, None, alias.c[mine] == target.c[theirs]

    def _reach(self, number: int, join: Any, query: Query, forward: bool) -> FromClause:
        """The pairs (start, reached) of a traversal from the rows of the joined entity, as a subquery.

        Its columns: ``start_id``, ``reached_id``, ``depth`` (fewest steps), ``ancestor_id``, ``descendant_id``.
        The recursion carries the depth only when something needs it (``max_depth``, or the edge's ``depth``): a
        pair is then kept once per depth it is reached at; otherwise once.
        """
        start_entry = query.entries[join.target]
        start = table_alias('db_dbnode', f'start_{number}')
        start_join = start_entry.join
        start_filters = [start_entry.filter, start_join.on if start_join is not None else None]
        seed_where = and_(
            true(), *(self._entry_filter(start, EntityType.NODE, item) for item in start_filters if item is not None)
        )
        needs_depth = join.max_depth is not None or _uses_depth(join)
        start_rows = select(*seed(start.c.id, start.c.id, needs_depth)).where(seed_where)
        forward_types, backward_types = (join.link_types, ()) if forward else ((), join.link_types)
        reach = reach_cte(
            self._dialect,
            start_rows,
            forward=forward_types,
            backward=backward_types,
            max_depth=join.max_depth,
            with_depth=needs_depth,
            name=f'reach_{number}',
        )
        ancestor, descendant = (
            (reach.c.start_id, reach.c.reached_id) if forward else (reach.c.reached_id, reach.c.start_id)
        )
        depth = func.min(reach.c.depth) if needs_depth else literal(None, Integer())
        pairs = select(
            reach.c.start_id,
            reach.c.reached_id,
            depth.label('depth'),
            ancestor.label('ancestor_id'),
            descendant.label('descendant_id'),
        ).where(reach.c.reached_id != reach.c.start_id)
        if needs_depth:
            pairs = pairs.group_by(reach.c.start_id, reach.c.reached_id)
        return pairs.subquery(f'traversal_{number}')


def _conjuncts(item: Filter) -> list[Filter]:
    """The filters that ``item`` requires all of: the items of its top-level ``and`` junctions."""
    if isinstance(item, Junction) and item.kind == 'and':
        return [conjunct for sub in item.items for conjunct in _conjuncts(sub)]
    return [item]


def _fields(item: Filter) -> set[str]:
    """The fields that ``item`` tests."""
    if isinstance(item, Condition):
        return {item.field}
    if isinstance(item, Negation):
        return _fields(item.item)
    return set().union(*(_fields(sub) for sub in item.items))


@dataclass(frozen=True)
class QueryShape:
    """A query without the values its statement takes as parameters: the key under which statements are reused.

    ``conditions`` are the conditions whose values are parameters, in the order of the key's walk: queries of one
    shape have theirs in the same places.
    """

    key: Hashable
    conditions: tuple[Condition, ...]

    @property
    def values(self) -> list[Any]:
        return [condition.value for condition in self.conditions]


SHAPE_LIMIT = 1000
"""Queries holding more values than this outside parameters (long ``in`` lists, big documents) are not reused."""


class _ShapeTooBigError(Exception):
    pass


def query_shape(query: Query) -> QueryShape | None:
    """The shape of ``query``, or None for a query too big to be worth remembering.

    A comparison (``==``, ``<``, ...) with an integer on an integer column, a string on a text column, or a number or
    string on a JSON path is a parameter; every other value is part of the shape, since it may change the SQL.
    """
    conditions: list[Condition] = []
    budget = [SHAPE_LIMIT]
    try:
        entries = tuple(_entry_key(entry, conditions, budget) for entry in query.entries)
    except _ShapeTooBigError:
        return None
    key = (entries, query.order_by, query.limit, query.offset, query.distinct, query.projections)
    return QueryShape(key, tuple(conditions))


def _entry_key(entry: Any, conditions: list[Condition], budget: list[int]) -> Hashable:
    join, edge_key = entry.join, None
    if join is not None and join.edge is not None and join.edge.filter is not None:
        edge_key = _filter_key(join.edge.filter, dict(EDGE_FIELDS[join.edge.kind]), conditions, budget)
        join = dataclasses.replace(join, edge=dataclasses.replace(join.edge, filter=None))
    kinds = dict(FIELDS[entry.entity])
    entry_key = _filter_key(entry.filter, kinds, conditions, budget) if entry.filter is not None else None
    return (entry.entity, entry_key, entry.projections, join, edge_key)


def _filter_key(item: Filter, kinds: Mapping[str, str], conditions: list[Condition], budget: list[int]) -> Hashable:
    if isinstance(item, Condition):
        if _parametrized(item, kinds.get(item.field)):
            conditions.append(item)
            return (item.field, item.path, item.operator, type(item.value))
        return (item.field, item.path, item.operator, _frozen(item.value, budget))
    if isinstance(item, Negation):
        return ('not', _filter_key(item.item, kinds, conditions, budget))
    return (item.kind, tuple(_filter_key(sub, kinds, conditions, budget) for sub in item.items))


def _parametrized(item: Condition, kind: str | None) -> bool:
    """Whether the value of ``item`` is a parameter of the statement (see :func:`query_shape`)."""
    value = item.value
    if item.operator not in COMPARISONS or isinstance(value, bool):
        return False
    if kind == 'json':
        return bool(item.path) and isinstance(value, (int, float, str))
    return (kind == 'int' and isinstance(value, int)) or (kind == 'str' and isinstance(value, str))


def _frozen(value: Any, budget: list[int]) -> Hashable:
    """``value`` as a hashable key that tells apart every value the SQL could differ for (``1``, ``1.0``, ``True``)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _ShapeTooBigError
    if isinstance(value, dict):
        return ('dict', tuple((key, _frozen(item, budget)) for key, item in sorted(value.items())))
    if isinstance(value, (list, tuple)):
        return ('list', tuple(_frozen(item, budget) for item in value))
    return (type(value).__name__, repr(value))


@contextlib.contextmanager
def _deep_filters(query: Query) -> Iterator[None]:
    """Compile ``query`` with room for its nesting, turning a nesting too deep into a :class:`QueryError`."""
    if _depth(query) > DEEP_FILTER:
        # NOTE: SQLAlchemy compiles nested and/or recursively, a few Python frames per level, when the statement
        # runs (later than here): deep filters need more than Python's default of 1000 frames. The limit is only
        # ever raised, never lowered, so that another thread's statement is never cut short.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    try:
        yield
    except RecursionError:
        raise QueryError('The query nests too deeply to compile; flatten its and/or filters') from None


def _depth(query: Query) -> int:
    """The deepest nesting of the filters of ``query``."""
    pending: list[tuple[Any, int]] = [(entry.filter, 1) for entry in query.entries if entry.filter is not None]
    pending += [
        (entry.join.edge.filter, 1)
        for entry in query.entries
        if entry.join is not None and entry.join.edge is not None and entry.join.edge.filter is not None
    ]
    deepest = 0
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(item, Negation):
            pending.append((item.item, level + 1))
        elif isinstance(item, Junction):
            pending.extend((sub, level + 1) for sub in item.items)
    return deepest


def _uses_depth(join: Any) -> bool:
    """Whether the edge of a traversal is filtered on, or projects, ``depth``."""
    edge = join.edge
    if edge is None:
        return False
    if any(projection.field in ('depth', '*', '**') for projection in edge.projections):
        return True
    pending = [edge.filter] if edge.filter is not None else []
    while pending:
        item = pending.pop()
        if isinstance(item, Condition):
            if item.field == 'depth':
                return True
        elif isinstance(item, Negation):
            pending.append(item.item)
        else:
            pending.extend(item.items)
    return False


_FOREIGN_KEYS: dict[tuple[EntityType, str], tuple[str, str]] = {
    (EntityType.NODE, 'with_user'): ('user_id', 'id'),
    (EntityType.USER, 'with_node'): ('id', 'user_id'),
    (EntityType.GROUP, 'with_user'): ('user_id', 'id'),
    (EntityType.USER, 'with_group'): ('id', 'user_id'),
    (EntityType.NODE, 'with_computer'): ('dbcomputer_id', 'id'),
    (EntityType.COMPUTER, 'with_node'): ('id', 'dbcomputer_id'),
    (EntityType.COMMENT, 'with_node'): ('dbnode_id', 'id'),
    (EntityType.NODE, 'with_comment'): ('id', 'dbnode_id'),
    (EntityType.COMMENT, 'with_user'): ('user_id', 'id'),
    (EntityType.USER, 'with_comment'): ('id', 'user_id'),
    (EntityType.LOG, 'with_node'): ('dbnode_id', 'id'),
    (EntityType.NODE, 'with_log'): ('id', 'dbnode_id'),
    (EntityType.AUTHINFO, 'with_user'): ('aiidauser_id', 'id'),
    (EntityType.USER, 'with_authinfo'): ('id', 'aiidauser_id'),
    (EntityType.AUTHINFO, 'with_computer'): ('dbcomputer_id', 'id'),
    (EntityType.COMPUTER, 'with_authinfo'): ('id', 'dbcomputer_id'),
}
"""For relationships through a foreign key: (column of the new entity, column of the related one) that are equal."""


def _check_uuids(values: Any) -> None:
    import uuid  # noqa: PLC0415

    for value in values:
        try:
            uuid.UUID(str(value))
        except ValueError:
            raise QueryError(f'{value!r} is not a uuid') from None


def _identity(value: Any) -> Any:
    return value


def _single(function: Callable[[Any], Any]) -> Callable[[Sequence[Any]], Any]:
    return lambda values: function(values[0])


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _number(value: Any) -> Any:
    """Aggregates as plain numbers on both dialects: integral Decimals as ints, the others as floats."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value
