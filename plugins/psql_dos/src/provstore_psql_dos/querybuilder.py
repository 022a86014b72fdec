"""The QueryBuilder's compiler: a checked :class:`~provstore.storage.query.Query` to one SQL statement.

Both dialects get the same semantics; the SQL differs where the databases do:

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
import json
import operator as operator_module
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
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
from provstore_psql_dos.entities import TABLES, EntitySql
from provstore_psql_dos.jsonindex import (
    NumberTable,
    bucket_ceiling,
    bucket_floor,
    bucket_of,
    number_table,
    quote,
    sqlite_json_path,
)
from provstore_psql_dos.jsonsemantics import INTEGER_TEXT, NUMBER_TEXT
from provstore_psql_dos.traversal import reach as reach_cte
from provstore_psql_dos.traversal import seed, table_alias

__all__ = ['CompiledQuery', 'QueryCompiler', 'QueryShape', 'query_shape']

JSONB = postgresql.JSONB()
_NUMBER_TYPES = ('integer', 'real')
_SQLITE_TYPES = {
    'object': ('object',),
    'array': ('array',),
    'string': ('text',),
    'number': _NUMBER_TYPES,
    'boolean': ('true', 'false'),
    'null': ('null',),
}
"""The names SQLite's ``json_type`` gives each JSON type."""


DEEP_FILTER = 40
"""Filters nested deeper than this raise Python's recursion limit to :data:`RECURSION_LIMIT` before compiling."""

RECURSION_LIMIT = 20_000

_LENGTH_OPERATORS = {'of_length': '==', 'longer': '>', 'shorter': '<'}


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
        sql: EntitySql,
        indexed: frozenset[tuple[str, str, tuple[str, ...]]] = frozenset(),
        numbers: frozenset[NumberTable] = frozenset(),
    ) -> None:
        """:param indexed: the JSON paths with a declared index, as ``(table, field, keys)``.
        :param numbers: the number tables there are (PostgreSQL).
        """
        self._sql = sql
        self._postgres = sql.dialect == 'postgresql'
        self.indexed = indexed
        self.numbers = numbers
        self._slots: dict[int, int] = {}
        self._parameters: list[tuple[str, int, Callable[[Any], Any]]] = []

    def _given(self, item: Condition, type_: Any = None, form: Callable[[Any], Any] | None = None) -> Any:
        """The value of ``item`` (in the ``form`` the statement takes) as a bind parameter; named, and recorded in
        the parameters, when it is a value of the query's shape."""
        form = form or _identity
        if not self._postgres:
            form = _sqlite_integers(form)
        slot = self._slots.get(id(item))
        if slot is None:
            return bindparam(None, form(item.value), type_=type_)
        key = f'value_{len(self._parameters)}'
        self._parameters.append((key, slot, form))
        return bindparam(key, form(item.value), type_=type_)

    def _jsonb(self, item: Condition) -> ColumnElement[Any]:
        """The value of ``item`` as ``jsonb``."""
        return cast(self._given(item, Text(), json.dumps), JSONB)

    def _finish(self, statement: Select[Any], convert: Any, conditions: Sequence[Condition]) -> CompiledQuery:
        slots = {slot for _, slot, _ in self._parameters}
        reusable = slots == set(range(len(conditions)))
        return CompiledQuery(statement, convert, tuple(self._parameters), reusable)

    # -- JSON expressions ---------------------------------------------------------------------------------------

    def _json(self, column: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        """PostgreSQL: the ``jsonb`` value at ``path``."""
        expression = column
        for key in path:
            expression = expression.op('->', return_type=JSONB)(literal_column(quote(key)))
        return type_coerce(expression, JSONB)

    def _sqlite_parts(self, column: ColumnElement[Any], path: tuple[str, ...]) -> tuple[ColumnElement[Any], ...]:
        """SQLite: ``json_extract`` and ``json_type`` of the value at ``path``."""
        where: ColumnElement[Any] = literal_column(quote(sqlite_json_path(path)))
        return func.json_extract(column, where), func.json_type(column, where)

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
        if not self._postgres:
            return self._sqlite_json(column, item.path, item)
        if item.operator in _RANGES and _is_number(item.value):
            return self._postgres_number_range(column, item)
        return self._postgres_json(self._json(column, item.path), item)

    def _postgres_number_range(self, column: ColumnElement[Any], item: Condition) -> ColumnElement[bool]:
        """A number range on PostgreSQL: a strict JSON path test, which reads the value once (a ``jsonb`` range
        reads it twice, and a scan spends most of its time there) and is false for anything but a number."""
        keys = ''.join('.' + json.dumps(key) for key in item.path)
        test: ColumnElement[Any] = literal_column(quote(f'strict ${keys} ? (@ {item.operator} $value)') + '::jsonpath')
        given = cast(self._given(item, Text(), _path_variables), JSONB)
        return func.jsonb_path_exists(column, test, given, true(), type_=Boolean())

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
                parts.append(alias.c.id.in_(select(side.c.id).where(self._number_condition(side.c.number, conjunct))))
        return and_(true(), *parts)

    def _number_table(self, table: str, item: Filter) -> NumberTable | None:
        """The number table answering ``item``, if it is a numeric comparison on a path that has one.

        It holds a row for every node whose value at the path is a JSON number, and a numeric comparison is false for
        any other value, so the table gives exactly the rows the comparison keeps.
        """
        if not isinstance(item, Condition) or not self.numbers:
            return None
        values = item.value if item.operator == 'in' else [item.value]
        if item.operator not in (*_COMPARISONS, 'in') or not values or not all(map(_is_number, values)):
            return None
        numbers = number_table(self._sql.dialect, table, item.field, item.path)
        return numbers if numbers in self.numbers else None

    def _number_condition(self, number: ColumnElement[Any], item: Condition) -> ColumnElement[bool]:
        """A numeric comparison on a number table's ``number``: the values are written as JSON and read as
        ``numeric``, as PostgreSQL reads the numbers of ``jsonb``, so that both compare alike."""
        if item.operator == 'in':
            texts = self._given(item, postgresql.ARRAY(Text()), _json_texts)
            return number == any_(cast(texts, postgresql.ARRAY(postgresql.NUMERIC())))
        given: ColumnElement[Any] = cast(self._given(item, Text(), json.dumps), postgresql.NUMERIC())
        return _compare(number, item.operator, given)

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
            and numbers[0][1].operator in _RANGES
            and all(_fields(item) <= {'node_type'} for item in others)
        ):
            return self._count_from_tally(*numbers[0], others)
        sides: dict[NumberTable, FromClause] = {}
        for table, _ in numbers:
            sides.setdefault(table, table.table().alias(f'number_{len(sides)}'))
        first, *rest = sides.values()
        from_clause: Any = first
        for side in rest:
            from_clause = from_clause.join(side, side.c.id == first.c.id)
        where = [self._number_condition(sides[table].c.number, condition) for table, condition in numbers]
        where += [self.filter(first, _COUNTED_FIELDS, item) for item in others]
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
            elif _fields(conjunct) <= set(_COUNTED_FIELDS):
                others.append(conjunct)
            else:
                return None
        return (numbers, others) if numbers else None

    def _count_from_tally(self, numbers: NumberTable, condition: Condition, others: list[Filter]) -> Select[Any]:
        """A count of a numeric range: the tally's buckets wholly inside the range, plus the numbers of the bucket
        its bound falls in (an index range of at most one bucket)."""
        tally, side = numbers.tally().alias('tally_0'), numbers.table().alias('number_0')
        bucket = self._given(condition, Integer(), bucket_of)
        if condition.operator in ('>', '>='):
            whole = tally.c.bucket > bucket
            ceiling: ColumnElement[Any] = cast(self._given(condition, Text(), bucket_ceiling), postgresql.NUMERIC())
            # NOTE: the top bucket has no ceiling: the largest number stored is one (its index gives it at once).
            edge = side.c.number < func.coalesce(ceiling, select(func.max(side.c.number) + 1).scalar_subquery())
        else:
            whole = tally.c.bucket < bucket
            floor: ColumnElement[Any] = cast(self._given(condition, Text(), bucket_floor), postgresql.NUMERIC())
            edge = side.c.number >= func.coalesce(floor, select(func.min(side.c.number) - 1).scalar_subquery())
        kinds = _COUNTED_FIELDS
        in_buckets = select(func.coalesce(func.sum(tally.c.rows), 0)).where(
            whole, *(self.filter(tally, kinds, item) for item in others)
        )
        in_edge = (
            select(func.count())
            .select_from(side)
            .where(
                self._number_condition(side.c.number, condition),
                edge,
                *(self.filter(side, kinds, item) for item in others),
            )
        )
        return select(in_buckets.scalar_subquery() + in_edge.scalar_subquery())

    def _column(self, column: ColumnElement[Any], kind: str, item: Condition) -> ColumnElement[bool]:
        operator, value = item.operator, item.value
        if kind == 'uuid' and operator in ('==', 'in'):
            _check_uuids(value if operator == 'in' else [value])
        if operator == '==':
            return column.is_(None) if value is None else column == self._given(item, column.type)
        if operator == 'in':
            values = list(value)
            return self._sql.in_values(column, kind, values) if values else false()  # type: ignore[arg-type]
        if operator == 'startswith':
            if not self._type_by_index and not self._postgres and item.field == 'node_type':
                # NOTE: with a declared JSON index in the same filter, SQLite must not take the index on node_type
                # (its planner cannot tell which range is narrower): the unary + hides that index, and the JSON
                # index, which holds node_type too, answers both.
                column = literal_column(f'+{column.table.name}.node_type')
            return self._sql.starts_with(column if kind != 'uuid' else cast(column, Text), value)
        text = cast(column, Text) if kind == 'uuid' else column
        if operator == 'like':
            return self._like(text, value, False)
        if operator == 'ilike':
            return self._like(text, value, True)
        ordered = column.collate('C') if self._postgres and kind == 'str' else column
        return _compare(ordered, operator, self._given(item, column.type))

    def _like(self, text: ColumnElement[Any], pattern: str, fold: bool) -> ColumnElement[bool]:
        if self._postgres:
            return text.ilike(pattern) if fold else text.like(pattern)
        # NOTE: SQLite's LIKE ignores the case of ASCII letters only; GLOB is exact, so LIKE becomes GLOB, and ILIKE
        # a GLOB of both sides in lower case (all of Unicode, as PostgreSQL's ILIKE).
        if fold:
            return func.provstore_lower(text).op('GLOB', is_comparison=True)(_glob(pattern.lower()))
        return text.op('GLOB', is_comparison=True)(_glob(pattern))

    def _postgres_json(self, value: ColumnElement[Any], item: Condition) -> ColumnElement[bool]:  # noqa: PLR0911 - one return per operator
        operator, given = item.operator, item.value
        typeof = func.jsonb_typeof(value)
        as_text = value.op('#>>', return_type=Text())(literal_column("'{}'"))
        if operator == '==':
            return value == self._jsonb(item)
        if operator == 'in':
            documents = [json.dumps(entry) for entry in given]
            if not documents:
                return false()
            array = cast(bindparam(None, documents, type_=postgresql.ARRAY(Text())), postgresql.ARRAY(JSONB))
            return value == any_(array)
        if operator in _RANGES:  # strings: numbers go to _postgres_number_range
            return and_(typeof == 'string', _compare(as_text.collate('C'), operator, self._given(item, Text())))
        if operator in ('like', 'ilike'):
            return and_(typeof == 'string', as_text.ilike(given) if operator == 'ilike' else as_text.like(given))
        if operator == 'startswith':
            return and_(typeof == 'string', self._sql.starts_with(as_text, given))
        if operator == 'of_type':
            return typeof == literal(given)
        if operator in ('of_length', 'longer', 'shorter'):
            length = case((typeof == 'array', func.jsonb_array_length(value)))
            return _compare(length, _LENGTH_OPERATORS[operator], given)
        if operator == 'contains':
            return value.op('@>', return_type=Boolean())(self._jsonb(item))
        if operator == 'has_key':
            return and_(typeof == 'object', value.op('?', return_type=Boolean())(bindparam(None, given, type_=Text())))
        raise QueryError(f'Operator {operator!r} is not implemented on PostgreSQL')  # pragma: no cover

    def _sqlite_json(  # noqa: PLR0911 - one return per operator
        self, column: ColumnElement[Any], path: tuple[str, ...], item: Condition
    ) -> ColumnElement[bool]:
        operator, given = item.operator, item.value
        value, kind = self._sqlite_parts(column, path)
        where: ColumnElement[Any] = literal_column(quote(sqlite_json_path(path)))
        if operator == '==':
            return self._sqlite_equal(value, kind, item)
        if operator == 'in':
            return self._sqlite_in(value, kind, list(given))
        if operator in _RANGES:
            types = ('text',) if isinstance(given, str) else _NUMBER_TYPES
            return and_(_compare(value, operator, self._given(item)), kind.in_(types))
        if operator in ('like', 'ilike'):
            return and_(kind == 'text', self._like(value, given, operator == 'ilike'))
        if operator == 'startswith':
            return and_(kind == 'text', self._sql.starts_with(value, given))
        if operator == 'of_type':
            return kind.in_(_SQLITE_TYPES[given])
        if operator in ('of_length', 'longer', 'shorter'):
            length = func.json_array_length(column, where)
            return and_(kind == 'array', _compare(length, _LENGTH_OPERATORS[operator], given))
        if operator == 'contains':
            wanted = 'array' if isinstance(given, list) else 'object'
            return and_(kind == wanted, func.provstore_json_contains(value, json.dumps(given)) == 1)
        if operator == 'has_key':
            members = func.json_each(column, where).table_valued('key')
            present = exists(select(literal(1)).select_from(members).where(members.c.key == given))
            return and_(kind == 'object', present)
        raise QueryError(f'Operator {operator!r} is not implemented on SQLite')  # pragma: no cover

    def _sqlite_equal(
        self, value: ColumnElement[Any], kind: ColumnElement[Any], item: Condition
    ) -> ColumnElement[bool]:
        given = item.value
        if given is None:
            return kind == 'null'
        if isinstance(given, bool):
            return kind == ('true' if given else 'false')
        if isinstance(given, (int, float)):
            return and_(value == self._given(item), kind.in_(_NUMBER_TYPES))
        if isinstance(given, str):
            return and_(value == self._given(item), kind == 'text')
        wanted = 'array' if isinstance(given, list) else 'object'
        return and_(kind == wanted, func.provstore_json_equal(value, json.dumps(given)) == 1)

    def _sqlite_in(self, value: ColumnElement[Any], kind: ColumnElement[Any], given: list[Any]) -> ColumnElement[bool]:
        numbers = [item for item in given if isinstance(item, (int, float)) and not isinstance(item, bool)]
        strings = [item for item in given if isinstance(item, str)]
        parts: list[ColumnElement[bool]] = []
        for values, types in ((numbers, _NUMBER_TYPES), (strings, ('text',))):
            if values:
                parts.append(
                    and_(self._sql.in_values(value, 'str' if types == ('text',) else 'int', values), kind.in_(types))
                )
        named = [name for flag, name in ((True, 'true'), (False, 'false')) if any(item is flag for item in given)]
        named += ['null'] if any(item is None for item in given) else []
        if named:
            parts.append(kind.in_(named))
        return or_(false(), *parts) if parts else false()

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
            return [self._json_cast(column, path, cast_to)], _single(_bool if cast_to == 'b' else _identity)
        if self._postgres:
            # NOTE: as text, decoded by json.loads: three times faster than the driver's decoding of jsonb values.
            return [cast(self._json(column, path), Text())], _single(_loads)
        # NOTE: the value and its JSON type, decoded here: json.loads only for arrays and objects, which halves the
        # time of projecting scalar attributes compared with JSON text decoded value by value.
        return list(self._sqlite_parts(column, path)), _from_sqlite_json

    def _json_cast(  # noqa: PLR0911 - one return per cast and dialect
        self, column: ColumnElement[Any], path: tuple[str, ...], cast_to: str | None
    ) -> ColumnElement[Any]:
        """The value at ``path`` as a float, integer, text or boolean; NULL where it cannot be one.

        ``f``/``i``: numbers, and strings that hold a number (``i`` truncates towards zero); ``t``: strings, numbers
        and booleans as text; ``b``: booleans. Arrays, objects and null give NULL.
        """
        if self._postgres:
            value = self._json(column, path)
            typeof = func.jsonb_typeof(value)
            text = value.op('#>>', return_type=Text())(literal_column("'{}'"))
            if cast_to in ('f', 'i'):
                pattern = INTEGER_TEXT if cast_to == 'i' else NUMBER_TEXT
                number = case(
                    (typeof == 'number', cast(value, postgresql.NUMERIC())),
                    (
                        and_(typeof == 'string', text.op('~', is_comparison=True)(pattern)),
                        cast(text, postgresql.NUMERIC()),
                    ),
                )
                if cast_to == 'f':
                    return cast(number, Float())
                return cast(func.trunc(number), BigInteger())
            if cast_to == 'b':
                return case((typeof == 'boolean', cast(value, Boolean())))
            return case((typeof.in_(('string', 'number', 'boolean')), text.collate('C')))
        value, kind = self._sqlite_parts(column, path)
        if cast_to in ('f', 'i'):
            target = Float() if cast_to == 'f' else Integer()
            return case(
                (kind.in_(_NUMBER_TYPES), cast(value, target)),
                (kind == 'text', cast(func.provstore_number(value, cast_to == 'i'), target)),
            )
        if cast_to == 'b':
            return case((kind == 'true', literal(1)), (kind == 'false', literal(0)))
        return case(
            (kind == 'text', value),
            (kind.in_(_NUMBER_TYPES), cast(value, Text())),
            (kind == 'true', literal('true')),
            (kind == 'false', literal('false')),
        )

    def _cast(self, column: ColumnElement[Any], kind: str, cast_to: str | None) -> ColumnElement[Any]:
        if cast_to == 'f':
            return cast(column, Float())
        if cast_to == 'i' and kind != 'int':
            return cast(column, BigInteger() if self._postgres else Integer())
        if cast_to == 't' and kind != 'str':
            return cast(column, Text())
        return column

    def _aggregate(self, column: ColumnElement[Any], kind: str, projection: Projection) -> ColumnElement[Any]:
        name, path = projection.func, projection.path
        if kind == 'json' and path:
            if name == 'count' and projection.cast is None:
                present = self._json(column, path) if self._postgres else self._sqlite_parts(column, path)[1]
                return func.count(present)
            value = self._json_cast(column, path, projection.cast or 'f')
        elif kind == 'json':
            if name != 'count':
                raise QueryError(f'{name}() of a whole JSON column means nothing; give a path and a cast')
            value = column
        else:
            value = self._cast(column, kind, projection.cast)
            if self._postgres and kind == 'str' and projection.cast in (None, 't'):
                value = value.collate('C')
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
            return [self._json_cast(column, order.path, 't' if order.cast == 'd' else order.cast)]
        if kind == 'json' and order.path:
            return self._json_sort_keys(column, order.path)
        if kind == 'json':
            raise QueryError(f'Cannot order by the whole JSON column {order.field!r}: give a path')
        key = self._cast(column, kind, order.cast)
        if self._postgres and kind == 'str' and order.cast in (None, 't'):
            key = key.collate('C')
        return [key]

    def _json_sort_keys(self, column: ColumnElement[Any], path: tuple[str, ...]) -> list[ColumnElement[Any]]:
        """Sort keys of JSON values of any type: null, booleans, numbers, strings, arrays, objects; then the value."""
        ranks = ('null', 'boolean', 'number', 'string', 'array', 'object')
        if self._postgres:
            value = self._json(column, path)
            typeof = func.jsonb_typeof(value)
            rank = case(*((typeof == name, index) for index, name in enumerate(ranks)))
            number = case(
                (typeof == 'number', cast(value, Float())),
                (typeof == 'boolean', case((value == literal_column("'true'::jsonb"), 1.0), else_=0.0)),
            )
            text = case((typeof == 'string', value.op('#>>', return_type=Text())(literal_column("'{}'")).collate('C')))
            return [rank, number, text]
        value, kind = self._sqlite_parts(column, path)
        names = {'null': ('null',), 'boolean': ('false', 'true'), 'number': _NUMBER_TYPES, 'string': ('text',)}
        rank = case(*((kind.in_(names.get(name, (name,))), index) for index, name in enumerate(ranks)))
        number = case((kind.in_(_NUMBER_TYPES), cast(value, Float())), (kind == 'true', 1.0), (kind == 'false', 0.0))
        text = case((kind == 'text', value))
        return [rank, number, text]

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
                edge_condition = self.filter(edge, dict(EDGE_FIELDS[join.edge.kind]), join.edge.filter)
                if join.outer:
                    edge_on = and_(edge_on, edge_condition) if edge_on is not None else edge_condition
                else:
                    sources.where.append(edge_condition)
            if condition is not None and join.outer:
                # NOTE: the filters of an outer-joined entity decide what joins, not which rows are returned.
                entity_on = and_(entity_on, condition)
            elif condition is not None:
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
        seed_where = (
            self._entry_filter(start, EntityType.NODE, start_entry.filter) if start_entry.filter is not None else true()
        )
        needs_depth = join.max_depth is not None or _uses_depth(join)
        start_rows = select(*seed(start.c.id, start.c.id, needs_depth)).where(seed_where)
        forward_types, backward_types = (join.link_types, ()) if forward else ((), join.link_types)
        reach = reach_cte(
            self._sql,
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


_COUNTED_FIELDS = {name: FIELDS[EntityType.NODE][name] for name in ('id', 'node_type')}
"""The node columns a number table holds besides the number."""


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    if item.operator not in _COMPARISONS or isinstance(value, bool):
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


_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    '==': operator_module.eq,
    '>': operator_module.gt,
    '>=': operator_module.ge,
    '<': operator_module.lt,
    '<=': operator_module.le,
}


_RANGES = ('>', '>=', '<', '<=')


def _compare(left: ColumnElement[Any], operator: str, right: Any) -> ColumnElement[bool]:
    return _COMPARISONS[operator](left, right)


def _sqlite_integers(form: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``form`` refusing integers that SQLite cannot hold (it would fail in the driver, with no word of the query)."""

    def checked(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise QueryError(f'SQLite compares integers of 64 bits only, not {value}')
        return form(value)

    return checked


def _path_variables(value: Any) -> str:
    return json.dumps({'value': value})


def _json_texts(values: Sequence[Any]) -> list[str]:
    return [json.dumps(value) for value in values]


def _glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as an SQLite GLOB pattern."""
    out = []
    escaped = False
    for character in pattern:
        if escaped:
            out.append(f'[{character}]' if character in '*?[' else character)
            escaped = False
        elif character == '\\':
            escaped = True
        elif character == '%':
            out.append('*')
        elif character == '_':
            out.append('?')
        elif character in '*?[':
            out.append(f'[{character}]')
        else:
            out.append(character)
    if escaped:
        out.append('\\')
    return ''.join(out)


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


def _from_sqlite_json(parts: Sequence[Any]) -> Any:
    """A JSON value from SQLite's ``json_extract`` and ``json_type`` of it."""
    value, json_type = parts
    if json_type in ('object', 'array'):
        return json.loads(value)
    if json_type == 'true':
        return True
    if json_type == 'false':
        return False
    return value


def _loads(value: Any) -> Any:
    return None if value is None else json.loads(value)


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _number(value: Any) -> Any:
    """Aggregates as plain numbers on both dialects: integral Decimals as ints, the others as floats."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value
