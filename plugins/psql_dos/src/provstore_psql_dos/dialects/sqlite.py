"""SQLite (3.35 or newer): ``json_extract`` with ``json_type`` tests, JSON documents read by ``json_each`` for lists,
multi-row VALUES, several recursive SELECTs for the traversal, one expression index per declared JSON path.

SQLite has no ``jsonb``: :mod:`~provstore_psql_dos.dialects.jsonsemantics` gives its equality and containment.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from provstore.exceptions import QueryError, StorageError
from provstore.storage import EntityType
from provstore_psql_dos.dialects.base import LENGTH_OPERATORS, RANGES, Binder, Dialect, compare
from provstore_psql_dos.jsonindex import NODE_TABLE, Statements, index_name, quote, sqlite_json_path
from provstore_psql_dos.tables import ROWS_PER_STATEMENT, Kind, TableInfo, dump_json, prefix_successor, table_info

if TYPE_CHECKING:
    from sqlalchemy import CTE, Select
    from sqlalchemy.engine import Connection
    from sqlalchemy.types import TypeEngine

    from provstore.storage.query import Condition

__all__ = ['SQLITE_MINIMUM', 'SqliteDialect']

SQLITE_MINIMUM = (3, 35, 0)
"""The oldest SQLite the statements work with: RETURNING (3.35), several recursive SELECTs in one query (3.34)."""

_NUMBER_TYPES = ('integer', 'real')
_JSON_TYPES = {
    'object': ('object',),
    'array': ('array',),
    'string': ('text',),
    'number': _NUMBER_TYPES,
    'boolean': ('true', 'false'),
    'null': ('null',),
}
"""The names SQLite's ``json_type`` gives each JSON type."""


class SqliteDialect(Dialect):
    """SQLite (3.35 or newer): lists as JSON documents read with ``json_each``, rows as multi-row VALUES."""

    name = 'sqlite'
    autocommit_single_statement = False
    # NOTE: in WAL mode a deferred transaction reads one snapshot from its first read on, while others write.
    snapshot_isolation = None
    failed_statement_keeps_transaction = True

    @classmethod
    def of_engine(cls, engine_dialect: Any) -> SqliteDialect:
        """The dialect of an SQLAlchemy engine's SQLite.

        :raises StorageError: if the SQLite library is older than :data:`SQLITE_MINIMUM` (it lacks what is used).
        """
        version = tuple(engine_dialect.dbapi.sqlite_version_info)
        if version < SQLITE_MINIMUM:
            raise StorageError(
                f'sqlite_dos needs SQLite {".".join(map(str, SQLITE_MINIMUM))} or newer (RETURNING, JSON functions, '
                f'recursive queries with several steps), but Python uses SQLite {".".join(map(str, version))}: use a '
                'Python built with a newer SQLite'
            )
        return cls(int(engine_dialect.insertmanyvalues_max_parameters))

    def __init__(self, max_parameters: int) -> None:
        """:param max_parameters: the most bind parameters one statement may have."""
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
        successor = prefix_successor(prefix)
        at_least = column >= bindparam(None, prefix, type_=Text())
        return at_least if successor is None else at_least & (column < bindparam(None, successor, type_=Text()))

    def bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        # NOTE: JSON is written as text here (bound as text below), so that None stays SQL NULL as on PostgreSQL.
        return {'json': dump_json}

    def _bind_types(self, info: TableInfo, columns: Iterable[str]) -> dict[str, Any]:
        """Return a typed bind parameter per column: JSON columns take JSON text (see :meth:`bind_forms`)."""
        table = info.table
        return {
            column: bindparam(column, type_=Text() if info.kinds[column] == 'json' else table.c[column].type)
            for column in columns
        }

    def rows_per_insert(self, info: TableInfo) -> int:
        # NOTE: one bind parameter per value: a statement carries at most max_parameters of them.
        return max(1, min(ROWS_PER_STATEMENT, self.max_parameters // len(info.kinds)))

    def one_insert_statement(self, entity: EntityType, count: int) -> bool:
        return count <= self.rows_per_insert(table_info(entity))

    def insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
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

    def text_column(self, column: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        # NOTE: SQLite stores JSON as text and times as text in the text form already: read them as they are.
        return type_coerce(column, Text()) if kind in ('json', 'time') else column

    def insert_text_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        parameters = tuple(row[column] for row in rows for column in info.kinds)
        ids = sorted(connection.exec_driver_sql(self._insert_statement(info, len(rows)), parameters).scalars())
        json_columns = [column for column, kind in info.kinds.items() if kind == 'json']
        if ids and json_columns:
            # NOTE: the ids of one INSERT are consecutive (max(id) + 1 in turn), so the range holds only these rows.
            valid = ' AND '.join(f'({column} IS NULL OR json_valid({column}))' for column in json_columns)
            bad = connection.exec_driver_sql(
                f'SELECT id FROM {info.name} WHERE id BETWEEN ? AND ? AND NOT ({valid}) ORDER BY id LIMIT 1',
                (ids[0], ids[-1]),
            ).scalar()
            if bad is not None:
                raise StorageError(f'Row {ids.index(bad)} of {info.name}: a JSON column does not hold JSON text')
        return ids

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

    def update_group(
        self, connection: Connection, info: TableInfo, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> int:
        table = info.table
        statement = update(table).where(table.c.id == bindparam('id_')).values(self._bind_types(info, columns))
        parameters = [{**{column: row[column] for column in columns}, 'id_': row['id']} for row in rows]
        return int(connection.execute(statement, parameters).rowcount)

    def patch_statement(self, column: str, has_sets: bool) -> str:
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

    def patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        removed = dict.fromkeys([*delete_keys, *set_keys])
        members = ', '.join(f'{json.dumps(key)}: {value}' for key, value in set_keys.items())
        return {'remove': json.dumps(removed), 'set': members}

    def add_group_nodes_statement(self) -> str:
        # NOTE: "WHERE true" keeps SQLite from reading ON CONFLICT as the ON of a join.
        return (
            'INSERT INTO db_dbgroup_dbnodes (dbgroup_id, dbnode_id) SELECT DISTINCT :group_id, value FROM '
            'json_each(:ids) WHERE true ON CONFLICT (dbgroup_id, dbnode_id) DO NOTHING'
        )

    # -- the query compiler ------------------------------------------------------------------------------------

    def checked_form(self, form: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``form`` refusing integers that SQLite cannot hold (it would fail in the driver, with no word of the
        query)."""

        def checked(value: Any) -> Any:
            if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
                raise QueryError(f'SQLite compares integers of 64 bits only, not {value}')
            return form(value)

        return checked

    def json_parts(self, column: ColumnElement[Any], path: tuple[str, ...]) -> tuple[ColumnElement[Any], ...]:
        """``json_extract`` and ``json_type`` of the value at ``path``, the path written as a literal, so that an
        index declared on the path is the very same expression."""
        where: ColumnElement[Any] = literal_column(quote(sqlite_json_path(path)))
        return func.json_extract(column, where), func.json_type(column, where)

    def json_condition(  # noqa: PLR0911 - one return per operator
        self, column: ColumnElement[Any], item: Condition, binder: Binder
    ) -> ColumnElement[bool]:
        operator, given, path = item.operator, item.value, item.path
        value, kind = self.json_parts(column, path)
        where: ColumnElement[Any] = literal_column(quote(sqlite_json_path(path)))
        if operator == '==':
            return self._equal(value, kind, item, binder)
        if operator == 'in':
            return self._in(value, kind, list(given))
        if operator in RANGES:
            types = ('text',) if isinstance(given, str) else _NUMBER_TYPES
            return and_(compare(value, operator, binder.given(item)), kind.in_(types))
        if operator in ('like', 'ilike'):
            return and_(kind == 'text', self.like(value, given, operator == 'ilike'))
        if operator == 'startswith':
            return and_(kind == 'text', self.starts_with(value, given))
        if operator == 'of_type' and given == 'null':
            return or_(kind.in_(_JSON_TYPES[given]), kind.is_(None))  # a missing key counts as null, as aiida-core's
        if operator == 'of_type':
            return kind.in_(_JSON_TYPES[given])
        if operator in ('of_length', 'longer', 'shorter'):
            length = func.json_array_length(column, where)
            return and_(kind == 'array', compare(length, LENGTH_OPERATORS[operator], given))
        if operator == 'contains':
            wanted = 'array' if isinstance(given, list) else 'object'
            return and_(kind == wanted, func.provstore_json_contains(value, json.dumps(given)) == 1)
        if operator == 'has_key':
            members = func.json_each(column, where).table_valued('key')
            present = exists(select(literal(1)).select_from(members).where(members.c.key == given))
            return and_(kind == 'object', present)
        raise QueryError(f'Operator {operator!r} is not implemented on SQLite')  # pragma: no cover

    def _equal(
        self, value: ColumnElement[Any], kind: ColumnElement[Any], item: Condition, binder: Binder
    ) -> ColumnElement[bool]:
        given = item.value
        if given is None:
            return kind == 'null'
        if isinstance(given, bool):
            return kind == ('true' if given else 'false')
        if isinstance(given, (int, float)):
            return and_(value == binder.given(item), kind.in_(_NUMBER_TYPES))
        if isinstance(given, str):
            return and_(value == binder.given(item), kind == 'text')
        wanted = 'array' if isinstance(given, list) else 'object'
        return and_(kind == wanted, func.provstore_json_equal(value, json.dumps(given)) == 1)

    def _in(self, value: ColumnElement[Any], kind: ColumnElement[Any], given: list[Any]) -> ColumnElement[bool]:
        numbers = [item for item in given if isinstance(item, (int, float)) and not isinstance(item, bool)]
        strings = [item for item in given if isinstance(item, str)]
        parts: list[ColumnElement[bool]] = []
        for values, types in ((numbers, _NUMBER_TYPES), (strings, ('text',))):
            if values:
                parts.append(
                    and_(self.in_values(value, 'str' if types == ('text',) else 'int', values), kind.in_(types))
                )
        named = [name for flag, name in ((True, 'true'), (False, 'false')) if any(item is flag for item in given)]
        named += ['null'] if any(item is None for item in given) else []
        if named:
            parts.append(kind.in_(named))
        return or_(false(), *parts) if parts else false()

    def json_present(self, column: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        return self.json_parts(column, path)[1]

    def like(self, text: ColumnElement[Any], pattern: str, fold: bool) -> ColumnElement[bool]:
        # NOTE: SQLite's LIKE ignores the case of ASCII letters only; GLOB is exact, so LIKE becomes GLOB, and ILIKE
        # a GLOB of both sides in lower case (all of Unicode, as PostgreSQL's ILIKE).
        if fold:
            return func.provstore_lower(text).op('GLOB', is_comparison=True)(_glob(pattern.lower()))
        return text.op('GLOB', is_comparison=True)(_glob(pattern))

    def integer_type(self) -> TypeEngine[Any]:
        return Integer()

    def json_projection(
        self, column: ColumnElement[Any], path: tuple[str, ...]
    ) -> tuple[list[ColumnElement[Any]], Callable[[Sequence[Any]], Any]]:
        # NOTE: the value and its JSON type, decoded here: json.loads only for arrays and objects, which halves the
        # time of projecting scalar attributes compared with JSON text decoded value by value.
        return list(self.json_parts(column, path)), _from_json_parts

    def json_cast(self, column: ColumnElement[Any], path: tuple[str, ...], cast_to: str | None) -> ColumnElement[Any]:
        value, kind = self.json_parts(column, path)
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

    def json_sort_keys(self, column: ColumnElement[Any], path: tuple[str, ...]) -> list[ColumnElement[Any]]:
        ranks = ('null', 'boolean', 'number', 'string', 'array', 'object')
        value, kind = self.json_parts(column, path)
        names = {'null': ('null',), 'boolean': ('false', 'true'), 'number': _NUMBER_TYPES, 'string': ('text',)}
        rank = case(*((kind.in_(names.get(name, (name,))), index) for index, name in enumerate(ranks)))
        number = case((kind.in_(_NUMBER_TYPES), cast(value, Float())), (kind == 'true', 1.0), (kind == 'false', 0.0))
        text = case((kind == 'text', value))
        return [rank, number, text]

    def without_type_index(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # NOTE: with a declared JSON index in the same filter, SQLite must not take the index on node_type (its
        # planner cannot tell which range is narrower): the unary + hides that index, and the JSON index, which
        # holds node_type too, answers both.
        return literal_column(f'+{column.table.name}.node_type')

    # -- the traversal --------------------------------------------------------------------------------------------

    def link_type_key(self, link_type: ColumnElement[Any], reached_id: ColumnElement[Any]) -> ColumnElement[Any]:
        # NOTE: the expression also involves the reached node (an empty substring of its id): a test of the link
        # alone, once the tables are ANALYZEd, makes SQLite build a Bloom filter of the whole link table at every
        # step (30 ms per query at 450,000 links, against 0.04 ms).
        return link_type.op('||', return_type=Text())(func.substr(reached_id, 1, 0))

    def recursive_union(
        self, cte: CTE, steps: list[Select[Any]], with_depth: bool, bound: list[ColumnElement[bool]], name: str
    ) -> CTE:
        # NOTE: SQLite (3.34 and newer) runs several recursive SELECTs in turn, each joining the reached nodes to links.
        recursive = []
        for one in steps:
            columns = [cte.c.start_id, *one.selected_columns]
            if with_depth:
                columns.append(cte.c.depth + 1)
            recursive.append(one.with_only_columns(*columns).where(*bound))
        return cte.union(*recursive)

    # -- JSON indexes ---------------------------------------------------------------------------------------------

    def index_statements(self, table: str, field: str, path: Sequence[str], numbers: bool = True) -> Statements:
        """One index of the value, its JSON type and (for nodes) ``node_type``: SQLite answers a query from an
        expression index alone."""
        where = quote(sqlite_json_path(path))
        expressions = [f'json_extract({field}, {where})', f'json_type({field}, {where})']
        if table == NODE_TABLE:
            expressions.append('node_type')
        name = index_name(table, field, path)
        created = f'CREATE INDEX IF NOT EXISTS {name} ON {table} ({", ".join(expressions)})'
        return Statements([], [created, f'ANALYZE {table}'], None, [])

    def relation_sizes(self, connection: Connection) -> dict[str, dict[str, int]]:
        # NOTE: the dbstat table (pages of every table and index) is in Python's SQLite builds; without it, nothing
        try:
            pages: dict[str, int] = dict(
                connection.exec_driver_sql('SELECT name, sum(pgsize) FROM dbstat GROUP BY name').all()
            )
        except DBAPIError:
            return {'tables': {}, 'indexes': {}}
        kinds: dict[str, str] = dict(
            connection.exec_driver_sql("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'index')").all()
        )
        sizes: dict[str, dict[str, int]] = {'tables': {}, 'indexes': {}}
        for name, size in sorted(pages.items()):
            if name in kinds:
                sizes['tables' if kinds[name] == 'table' else 'indexes'][str(name)] = int(size)
        return sizes

    def explain(self, connection: Connection, statement: Any) -> str:
        compiled = statement.compile(connection, compile_kwargs={'render_postcompile': True})
        parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql('EXPLAIN QUERY PLAN ' + str(compiled), parameters)
        return '\n'.join(str(row[-1]) for row in rows)


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


def _from_json_parts(parts: Sequence[Any]) -> Any:
    """A JSON value from SQLite's ``json_extract`` and ``json_type`` of it."""
    value, json_type = parts
    if json_type in ('object', 'array'):
        return json.loads(value)
    if json_type == 'true':
        return True
    if json_type == 'false':
        return False
    return value


@functools.cache
def _sqlite_dialect() -> Any:
    """Return an SQLite dialect, for the bind processors of column types."""
    from sqlalchemy.dialects.sqlite import dialect  # noqa: PLC0415 - only for SQLite

    return dialect()
