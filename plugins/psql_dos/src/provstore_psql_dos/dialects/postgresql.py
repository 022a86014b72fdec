"""PostgreSQL: ``jsonb`` values and typed JSON path tests, typed arrays for lists, rows as JSON documents, a LATERAL
traversal step, hash indexes and number tables for declared JSON paths."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from provstore.exceptions import QueryError, StorageError
from provstore_psql_dos.dialects.base import (
    COUNTED_FIELDS,
    LENGTH_OPERATORS,
    RANGES,
    Binder,
    Dialect,
    compare,
    is_number,
)
from provstore_psql_dos.dialects.jsonsemantics import INTEGER_TEXT, NUMBER_TEXT
from provstore_psql_dos.jsonindex import (
    NODE_TABLE,
    NumberTable,
    Statements,
    bucket_ceiling,
    bucket_floor,
    bucket_of,
    index_name,
    postgres_value,
    quote,
)
from provstore_psql_dos.tables import BYTES_PER_STATEMENT, BadValueError, Kind, TableInfo, as_time, dump_json

if TYPE_CHECKING:
    from sqlalchemy import CTE
    from sqlalchemy.engine import Connection
    from sqlalchemy.types import TypeEngine

    from provstore.storage.query import Condition, Filter

__all__ = ['PostgresqlDialect']

_TIME_TEXT_PATTERN = 'YYYY-MM-DD HH24:MI:SS.US'
"""PostgreSQL's ``to_char`` pattern of :data:`~provstore.storage.textrows.TIME_TEXT`."""

JSONB = postgresql.JSONB()


class PostgresqlDialect(Dialect):
    """PostgreSQL: lists as typed arrays, rows as one JSON document per statement (``json_populate_recordset``)."""

    name = 'postgresql'
    autocommit_single_statement = True
    snapshot_isolation = 'REPEATABLE READ'
    failed_statement_keeps_transaction = False

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

    def bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        # NOTE: a time goes into the JSON document in ISO form, with its UTC offset: the server reads it exactly.
        return {'time': lambda value: as_time(value).isoformat()}

    def _documents(self, info: TableInfo, rows: list[dict[str, Any]]) -> Iterator[str]:
        """Yield the rows as JSON documents (arrays of objects) of at most :data:`BYTES_PER_STATEMENT`."""
        parts: list[str] = []
        size = 0
        for index, row in enumerate(rows):
            try:
                part = dump_json(row)
            except BadValueError as exc:
                raise StorageError(f'Row {index} of {info.name}: a value {exc}') from None
            if parts and size + len(part) > BYTES_PER_STATEMENT:
                yield '[' + ','.join(parts) + ']'
                parts, size = [], 0
            parts.append(part)
            size += len(part) + 1
        if parts:
            yield '[' + ','.join(parts) + ']'

    def insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
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

    def text_column(self, column: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        if kind in ('json', 'uuid'):  # NOTE: a uuid's text in PostgreSQL is Python's str(UUID): lower case, hyphens
            return cast(column, Text())
        if kind == 'time':
            return func.to_char(func.timezone('UTC', column), _TIME_TEXT_PATTERN)
        return column

    def insert_text_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        # NOTE: the document carries each JSON text as a JSON string, cast to jsonb by the server (which refuses
        # what is not JSON): spliced in as it is, a hostile text could add rows to the document. A time text is UTC.
        quote = connection.dialect.identifier_preparer.quote
        kinds = info.kinds
        columns = ', '.join(quote(column) for column in kinds)
        selected = ', '.join(
            f'CAST(r.{quote(column)} AS jsonb)' if kind == 'json' else f'r.{quote(column)}'
            for column, kind in kinds.items()
        )
        declared = ', '.join(
            f'{quote(column)} {"text" if kind == "json" else info.table.c[column].type.compile(connection.dialect)}'
            for column, kind in kinds.items()
        )
        statement = text(
            f'INSERT INTO {info.name} ({columns}) SELECT {selected} FROM ROWS FROM (json_to_recordset(CAST(:rows AS '
            f'json)) AS ({declared})) WITH ORDINALITY AS r({columns}, ordinality) ORDER BY r.ordinality RETURNING id'
        )
        times = [column for column, kind in kinds.items() if kind == 'time']
        for row in rows:
            for column in times:
                if row[column] is not None:
                    row[column] += '+00:00'
        ids: list[int] = []
        for document in self._documents(info, rows):
            ids.extend(sorted(connection.execute(statement, {'rows': document}).scalars()))
        return ids

    def update_group(
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

    def patch_statement(self, column: str, has_sets: bool) -> str:
        value = f"coalesce(nullif({column}, CAST('null' AS jsonb)), CAST('{{}}' AS jsonb)) - CAST(:remove AS text[])"
        if has_sets:
            value = f'({value}) || CAST(:set AS jsonb)'
        return (
            f'UPDATE db_dbnode SET {column} = {value}, mtime = :now '
            f"WHERE id = :id AND ({column} IS NULL OR jsonb_typeof({column}) IN ('object', 'null'))"
        )

    def patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        members = ', '.join(f'{json.dumps(key)}: {value}' for key, value in set_keys.items())
        return {'remove': list(delete_keys), 'set': '{' + members + '}'}

    def add_group_nodes_statement(self) -> str:
        return (
            f'INSERT INTO db_dbgroup_dbnodes (dbgroup_id, dbnode_id) SELECT DISTINCT :group_id, id FROM '
            f'({self.id_set("ids")}) AS given ON CONFLICT (dbgroup_id, dbnode_id) DO NOTHING'
        )

    # -- the query compiler ------------------------------------------------------------------------------------

    def json_value(self, column: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        """The ``jsonb`` value at ``path``: ``column -> 'a' -> 'b'``, keys written as literals, so that an index
        declared on the path is the very same expression."""
        expression = column
        for key in path:
            expression = expression.op('->', return_type=JSONB)(literal_column(quote(key)))
        return type_coerce(expression, JSONB)

    def _jsonb(self, item: Condition, binder: Binder) -> ColumnElement[Any]:
        """The value of ``item`` as ``jsonb``."""
        return cast(binder.given(item, Text(), json.dumps), JSONB)

    def json_condition(self, column: ColumnElement[Any], item: Condition, binder: Binder) -> ColumnElement[bool]:
        if item.operator in RANGES and is_number(item.value):
            return self._number_range(column, item, binder)
        return self._json_test(self.json_value(column, item.path), item, binder)

    def _number_range(self, column: ColumnElement[Any], item: Condition, binder: Binder) -> ColumnElement[bool]:
        """A number range: a strict JSON path test, which reads the value once (a ``jsonb`` range reads it twice, and
        a scan spends most of its time there) and is false for anything but a number."""
        keys = ''.join('.' + json.dumps(key) for key in item.path)
        test: ColumnElement[Any] = literal_column(quote(f'strict ${keys} ? (@ {item.operator} $value)') + '::jsonpath')
        given = cast(binder.given(item, Text(), _path_variables), JSONB)
        return func.jsonb_path_exists(column, test, given, true(), type_=Boolean())

    def _json_test(  # noqa: PLR0911 - one return per operator
        self, value: ColumnElement[Any], item: Condition, binder: Binder
    ) -> ColumnElement[bool]:
        operator, given = item.operator, item.value
        typeof = func.jsonb_typeof(value)
        as_text = value.op('#>>', return_type=Text())(literal_column("'{}'"))
        if operator == '==':
            return value == self._jsonb(item, binder)
        if operator == 'in':
            documents = [json.dumps(entry) for entry in given]
            if not documents:
                return false()
            array = cast(bindparam(None, documents, type_=postgresql.ARRAY(Text())), postgresql.ARRAY(JSONB))
            return value == any_(array)
        if operator in RANGES:  # strings: numbers go to _number_range
            return and_(typeof == 'string', compare(as_text.collate('C'), operator, binder.given(item, Text())))
        if operator in ('like', 'ilike'):
            return and_(typeof == 'string', as_text.ilike(given) if operator == 'ilike' else as_text.like(given))
        if operator == 'startswith':
            return and_(typeof == 'string', self.starts_with(as_text, given))
        if operator == 'of_type' and given == 'null':
            return or_(typeof == 'null', typeof.is_(None))  # a missing key counts as null, as aiida-core's
        if operator == 'of_type':
            return typeof == literal(given)
        if operator in ('of_length', 'longer', 'shorter'):
            length = case((typeof == 'array', func.jsonb_array_length(value)))
            return compare(length, LENGTH_OPERATORS[operator], given)
        if operator == 'contains':
            return value.op('@>', return_type=Boolean())(self._jsonb(item, binder))
        if operator == 'has_key':
            return and_(typeof == 'object', value.op('?', return_type=Boolean())(bindparam(None, given, type_=Text())))
        raise QueryError(f'Operator {operator!r} is not implemented on PostgreSQL')  # pragma: no cover

    def json_present(self, column: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        return self.json_value(column, path)

    def like(self, text: ColumnElement[Any], pattern: str, fold: bool) -> ColumnElement[bool]:
        return text.ilike(pattern) if fold else text.like(pattern)

    def ordered_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return column.collate('C')

    def integer_type(self) -> TypeEngine[Any]:
        return BigInteger()

    def json_projection(
        self, column: ColumnElement[Any], path: tuple[str, ...]
    ) -> tuple[list[ColumnElement[Any]], Callable[[Sequence[Any]], Any]]:
        # NOTE: as text, decoded by json.loads: three times faster than the driver's decoding of jsonb values.
        return [cast(self.json_value(column, path), Text())], _loads_first

    def json_cast(self, column: ColumnElement[Any], path: tuple[str, ...], cast_to: str | None) -> ColumnElement[Any]:
        value = self.json_value(column, path)
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

    def json_sort_keys(self, column: ColumnElement[Any], path: tuple[str, ...]) -> list[ColumnElement[Any]]:
        ranks = ('null', 'boolean', 'number', 'string', 'array', 'object')
        value = self.json_value(column, path)
        typeof = func.jsonb_typeof(value)
        rank = case(*((typeof == name, index) for index, name in enumerate(ranks)))
        number = case(
            (typeof == 'number', cast(value, Float())),
            (typeof == 'boolean', case((value == literal_column("'true'::jsonb"), 1.0), else_=0.0)),
        )
        text = case((typeof == 'string', value.op('#>>', return_type=Text())(literal_column("'{}'")).collate('C')))
        return [rank, number, text]

    # -- number tables --------------------------------------------------------------------------------------------

    def number_table(self, table: str, field: str, path: Sequence[str]) -> NumberTable | None:
        """Node paths have a number table (:mod:`~provstore_psql_dos.jsonindex`)."""
        return NumberTable(field, tuple(path)) if table == NODE_TABLE else None

    def number_condition(self, number: ColumnElement[Any], item: Condition, binder: Binder) -> ColumnElement[bool]:
        """A numeric comparison on a number table's ``number``: the values are written as JSON and read as
        ``numeric``, as PostgreSQL reads the numbers of ``jsonb``, so that both compare alike."""
        if item.operator == 'in':
            texts = binder.given(item, postgresql.ARRAY(Text()), _json_texts)
            return number == any_(cast(texts, postgresql.ARRAY(postgresql.NUMERIC())))
        given: ColumnElement[Any] = cast(binder.given(item, Text(), json.dumps), postgresql.NUMERIC())
        return compare(number, item.operator, given)

    def count_from_tally(
        self, numbers: NumberTable, condition: Condition, others: list[Filter], binder: Binder
    ) -> Select[Any]:
        """A count of a numeric range: the tally's buckets wholly inside the range, plus the numbers of the bucket
        its bound falls in (an index range of at most one bucket)."""
        tally, side = numbers.tally().alias('tally_0'), numbers.table().alias('number_0')
        bucket = binder.given(condition, Integer(), bucket_of)
        if condition.operator in ('>', '>='):
            whole = tally.c.bucket > bucket
            ceiling: ColumnElement[Any] = cast(binder.given(condition, Text(), bucket_ceiling), postgresql.NUMERIC())
            # NOTE: the top bucket has no ceiling: the largest number stored is one (its index gives it at once).
            edge = side.c.number < func.coalesce(ceiling, select(func.max(side.c.number) + 1).scalar_subquery())
        else:
            whole = tally.c.bucket < bucket
            floor: ColumnElement[Any] = cast(binder.given(condition, Text(), bucket_floor), postgresql.NUMERIC())
            edge = side.c.number >= func.coalesce(floor, select(func.min(side.c.number) - 1).scalar_subquery())
        kinds = COUNTED_FIELDS
        in_buckets = select(func.coalesce(func.sum(tally.c.rows), 0)).where(
            whole, *(binder.filter(tally, kinds, item) for item in others)
        )
        in_edge = (
            select(func.count())
            .select_from(side)
            .where(
                self.number_condition(side.c.number, condition, binder),
                edge,
                *(binder.filter(side, kinds, item) for item in others),
            )
        )
        return select(in_buckets.scalar_subquery() + in_edge.scalar_subquery())

    # -- the traversal --------------------------------------------------------------------------------------------

    def link_type_key(self, link_type: ColumnElement[Any], reached_id: ColumnElement[Any]) -> ColumnElement[Any]:
        # NOTE: the type is compared as an expression, so that each reached node's links are read through the index
        # on input_id (output_id): PostgreSQL otherwise scans the index on type (with the statistics of a freshly
        # loaded table: seconds instead of milliseconds).
        return link_type.op('||', return_type=Text())(literal_column("''"))

    def recursive_union(
        self, cte: CTE, steps: list[Select[Any]], with_depth: bool, bound: list[ColumnElement[bool]], name: str
    ) -> CTE:
        # NOTE: PostgreSQL allows one reference to the recursive table: both directions go into one LATERAL subquery.
        # OFFSET 0 keeps the planner from pulling a step up into a join: without statistics (a freshly loaded
        # table) it would then scan every link at each step (22 ms instead of 0.3 ms for three ancestors).
        fenced = [one.offset(0) for one in steps]
        step = (fenced[0] if len(fenced) == 1 else union_all(*fenced)).lateral(f'{name}_step')
        columns: list[ColumnElement[Any]] = [cte.c.start_id, step.c.id]
        if with_depth:
            columns.append(cte.c.depth + 1)
        return cte.union(select(*columns).select_from(cte.join(step, true())).where(*bound))

    # -- JSON indexes ---------------------------------------------------------------------------------------------

    def index_statements(self, table: str, field: str, path: Sequence[str], numbers: bool = True) -> Statements:
        """A hash index built ``CONCURRENTLY``, and for node paths a number table filled a range of nodes at a time
        while its triggers keep up with the writers, then vacuumed so that its index answers without its rows."""
        value = postgres_value(field, path)
        name = index_name(table, field, path)
        hashed = f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} USING hash (({value}))'
        made = self.number_table(table, field, path) if numbers else None
        if made is None:
            return Statements([hashed], [], None, [f'ANALYZE {table}'])
        return Statements(
            [hashed],
            made.create_statements(),
            made.fill_statement(),
            [f'ANALYZE {table}', f'VACUUM ANALYZE {made.name}', f'VACUUM ANALYZE {made.name}_tally'],
        )

    def relation_kinds(self, connection: Connection, names: Sequence[str]) -> dict[str, str]:
        """Of the relations ``names`` that exist, ``table`` for a table and the access method (``btree``, ``hash``)
        for an index."""
        found = connection.exec_driver_sql(
            "SELECT c.relname, CASE WHEN c.relkind = 'r' THEN 'table' ELSE am.amname END FROM pg_class c "
            'LEFT JOIN pg_am am ON am.oid = c.relam WHERE c.relname = ANY(%(names)s)',
            {'names': list(names)},
        )
        return {str(name): str(kind) for name, kind in found}

    def relation_sizes(self, connection: Connection) -> dict[str, dict[str, int]]:
        rows = connection.exec_driver_sql(
            'SELECT c.relname, c.relkind, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n '
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') ORDER BY 1"
        )
        sizes: dict[str, dict[str, int]] = {'tables': {}, 'indexes': {}}
        for name, kind, size in rows:
            sizes['tables' if kind == 'r' else 'indexes'][str(name)] = int(size)
        return sizes

    def explain(self, connection: Connection, statement: Any) -> str:
        compiled = statement.compile(connection, compile_kwargs={'render_postcompile': True})
        rows = connection.exec_driver_sql('EXPLAIN ' + str(compiled), compiled.params)
        return '\n'.join(str(row[0]) for row in rows)


def _path_variables(value: Any) -> str:
    return json.dumps({'value': value})


def _json_texts(values: Sequence[Any]) -> list[str]:
    return [json.dumps(value) for value in values]


def _loads_first(values: Sequence[Any]) -> Any:
    return None if values[0] is None else json.loads(values[0])
