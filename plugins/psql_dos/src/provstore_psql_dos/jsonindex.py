"""Declared JSON indexes: their names, and the number tables PostgreSQL keeps for them. Which statements each
database runs is its dialect's (:meth:`~provstore_psql_dos.dialects.base.Dialect.index_statements`); what is
built, so that filters on a JSON path are answered from an index:

On PostgreSQL a declared path gets:

* a **hash index** on its ``jsonb`` value (``attributes -> 'a'``, the very expression the compiler writes), serving
  ``==`` and ``in`` of every JSON type. A hash index keeps a hash of each value, so a value of any length can be
  stored; a btree index refuses entries over 2,704 bytes, so that one long string at the path would make storing
  its node fail.
* for nodes, a **number table** ``(id, node_type, number)``: one row per node whose value at the path is a JSON
  number, indexed on ``(number, node_type)`` and kept in step with ``db_dbnode`` by statement triggers. It serves
  numeric comparisons, and counts by node class without reading the nodes, which no expression index can do
  (PostgreSQL then still reads every row's ``attributes``); its *tally* makes a count of a range cost a few rows.

A number cannot outgrow a btree entry: Python writes no integer of more than 4,300 digits, and a float has at most
17. SQLite gets one index of the value, its JSON type and (for nodes) ``node_type``: SQLite answers a query from an
expression index alone.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Column, Integer, MetaData, Numeric, String, Table

from provstore.exceptions import QueryError

__all__ = [
    'BOUNDARIES',
    'NumberTable',
    'Statements',
    'bucket_ceiling',
    'bucket_floor',
    'bucket_of',
    'index_name',
    'quote',
    'sqlite_json_path',
]

NODE_TABLE = 'db_dbnode'


def quote(text: str) -> str:
    """``text`` as an SQL string literal (standard SQL: a quote is doubled, nothing else is special)."""
    if '\x00' in text:
        raise QueryError(f'A JSON key cannot hold a NUL character: {text!r}')
    return "'" + text.replace("'", "''") + "'"


def sqlite_json_path(path: Sequence[str]) -> str:
    """The SQLite JSON path of keys: ``('a', 'b')`` -> ``$."a"."b"``."""
    return '$' + ''.join(f'."{key}"' for key in path)


def postgres_value(field: str, path: Sequence[str], row: str = '') -> str:
    """The PostgreSQL expression of the ``jsonb`` value at ``path`` (of the row alias ``row``, if given)."""
    return (f'{row}.' if row else '') + field + ''.join(f' -> {quote(key)}' for key in path)


def _digest(table: str, field: str, path: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([table, field, list(path)]).encode()).hexdigest()[:10]


def index_name(table: str, field: str, path: Sequence[str]) -> str:
    """The name of the index on a JSON path: readable, unique, at most 60 characters (63 is PostgreSQL's limit)."""
    readable = '_'.join(key for key in path if key.isidentifier())[:20]
    return f'ix_provstore_{table.removeprefix("db_db")}_{field}_{readable}'[:49] + f'_{_digest(table, field, path)}'


BOUNDARIES: tuple[Decimal, ...] = tuple(
    sorted(
        {
            sign * Decimal(f'{mantissa}e{exponent}')
            for sign in (1, -1)
            for exponent in range(-16, 15)
            for mantissa in range(10, 100)
        }
        | {Decimal(0)}
    )
)
"""The bucket boundaries of the number tables' tallies: two significant digits from 1e-15 to 9.9e16, either sign.
A number's bucket is how many boundaries are at or below it (``width_bucket`` in SQL, ``bisect_right`` here)."""

FOLD_AT = 8
"""A tally's rows of one bucket and node type are summed into one once there are this many."""


def bucket_of(value: Any) -> int:
    """The bucket of a JSON number, read as ``numeric`` reads it (its JSON text, exactly)."""
    return bisect.bisect_right(BOUNDARIES, Decimal(json.dumps(value)))


def bucket_floor(value: Any) -> str | None:
    """The lowest number of the bucket of ``value``, as text (None: the bucket has no lower bound)."""
    bucket = bucket_of(value)
    return str(BOUNDARIES[bucket - 1]) if bucket > 0 else None


def bucket_ceiling(value: Any) -> str | None:
    """The boundary just above the bucket of ``value``, as text (None: the bucket has no upper bound)."""
    bucket = bucket_of(value)
    return str(BOUNDARIES[bucket]) if bucket < len(BOUNDARIES) else None


@dataclass(frozen=True)
class NumberTable:
    """The number table of a declared path of node attributes or extras (PostgreSQL): see the module's text.

    Beside it, its *tally* holds how many of its numbers each node type has in each bucket of :data:`BOUNDARIES`:
    rows ``(node_type, bucket, rows)``, added by the triggers (negative when rows go) and summed every
    :data:`FOLD_AT` rows, so that a count of a range reads a few tally rows and the numbers of one bucket. Writers
    never wait for each other on it: they add rows, and sum only rows no other writer holds.
    """

    field: str
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        readable = '_'.join(key for key in self.path if key.isidentifier())[:16]
        return f'provstore_number_{readable}_{_digest(NODE_TABLE, self.field, self.path)}'

    @property
    def index(self) -> str:
        """Its index on ``(number, node_type)``: the path's index name with ``_n``, so plans show whose it is."""
        return index_name(NODE_TABLE, self.field, self.path) + '_n'

    def table(self) -> Table:
        """The table, for statements (it is not part of the mirrored schema: it has a metadata of its own)."""
        return _number_table(self.name)

    def tally(self) -> Table:
        """The tally, for statements."""
        return _tally_table(self.name + '_tally')

    def create_statements(self) -> list[str]:
        """Make the table, its tally and their triggers afresh, empty (one transaction; :meth:`fill_statement`
        then copies the nodes stored, while the triggers keep up with the writers)."""
        table, tally = self.name, self.name + '_tally'
        changed = (
            f'(node.node_type IS DISTINCT FROM previous.node_type OR '
            f'{postgres_value(self.field, self.path, "node")} IS DISTINCT FROM '
            f'{postgres_value(self.field, self.path, "previous")})'
        )
        new_changed = f' AND EXISTS (SELECT FROM old_rows previous WHERE previous.id = node.id AND {changed})'
        old_changed = f' AND EXISTS (SELECT FROM new_rows node WHERE node.id = previous.id AND {changed})'

        def add(condition: str = '') -> str:
            numbers = self._numbers('node', 'new_rows', condition)
            return self._moved(f'{self._insert} {numbers} {self._returning}', '')

        def remove(condition: str = '') -> str:
            deleted = f'DELETE FROM {table} USING old_rows previous WHERE {table}.id = previous.id{condition}'
            return self._moved(f'{deleted} RETURNING {table}.node_type, {table}.number', '-')

        boundaries = '{' + ','.join(map(str, BOUNDARIES)) + '}'
        return [
            *self.drop_statements(),
            f'CREATE TABLE {table} (id integer PRIMARY KEY, node_type varchar(255) NOT NULL, number numeric NOT NULL)',
            f'CREATE INDEX {self.index} ON {table} (number, node_type)',
            f'CREATE TABLE {tally} (node_type varchar(255) NOT NULL, bucket integer NOT NULL, rows bigint NOT NULL)',
            f'CREATE INDEX {tally}_ix ON {tally} (bucket, node_type)',
            f'CREATE FUNCTION {table}_bucket(numeric) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE '
            f"AS $body$ SELECT width_bucket($1, '{boundaries}'::numeric[]) $body$",
            _function(f'{table}_add', add()),
            _function(f'{table}_remove', remove()),
            _function(f'{table}_change', f'{remove(old_changed)} {add(new_changed)}'),
            _function(f'{table}_clear', f'TRUNCATE {table}, {tally};'),
            f'CREATE TRIGGER {table}_add AFTER INSERT ON {NODE_TABLE} REFERENCING NEW TABLE AS new_rows '
            f'FOR EACH STATEMENT EXECUTE FUNCTION {table}_add()',
            f'CREATE TRIGGER {table}_remove AFTER DELETE ON {NODE_TABLE} REFERENCING OLD TABLE AS old_rows '
            f'FOR EACH STATEMENT EXECUTE FUNCTION {table}_remove()',
            f'CREATE TRIGGER {table}_change AFTER UPDATE ON {NODE_TABLE} REFERENCING OLD TABLE AS old_rows '
            f'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {table}_change()',
            f'CREATE TRIGGER {table}_clear AFTER TRUNCATE ON {NODE_TABLE} '
            f'FOR EACH STATEMENT EXECUTE FUNCTION {table}_clear()',
        ]

    def fill_statement(self) -> str:
        """Copy the numbers of the nodes with ``%(after)s < id <= %(upto)s`` into the table and the tally.

        The nodes copied are share-locked, so that a writer changing or deleting one meanwhile waits for the copy
        (its trigger then finds the row) or is waited for (the copy then reads what it wrote). A row a trigger
        already added is left as it is, and only rows added count in the tally.
        """
        numbers = self._numbers('node', NODE_TABLE, ' AND node.id > %(after)s AND node.id <= %(upto)s')
        return self._moved(f'{self._insert} SELECT * FROM ({numbers} FOR SHARE OF node) AS found {self._returning}', '')

    @property
    def _insert(self) -> str:
        return f'INSERT INTO {self.name} (id, node_type, number)'

    @property
    def _returning(self) -> str:
        return 'ON CONFLICT (id) DO NOTHING RETURNING node_type, number'

    def _numbers(self, alias: str, source: str, condition: str = '') -> str:
        """The rows ``(id, node_type, number)`` of ``source`` whose value at the path is a number."""
        value = postgres_value(self.field, self.path, alias)
        return (
            f'SELECT {alias}.id, {alias}.node_type, ({value})::numeric AS number FROM {source} {alias} '
            f"WHERE jsonb_typeof({value}) = 'number'{condition}"
        )

    def _moved(self, change: str, sign: str) -> str:
        """Run ``change`` (an insert into or delete from the table, returning ``node_type`` and ``number`` of the
        rows it added or removed) and count those rows in the tally (``sign``: ``-`` for rows removed); then sum the
        buckets that have :data:`FOLD_AT` rows, skipping rows that another writer holds."""
        table, tally = self.name, self.name + '_tally'
        return (
            f'WITH moved AS ({change}), '
            f'counted AS (SELECT node_type, {table}_bucket(number) AS bucket, {sign}count(*) AS rows '
            f'FROM moved GROUP BY 1, 2), '
            f'added AS (INSERT INTO {tally} (node_type, bucket, rows) SELECT * FROM counted '
            f'RETURNING node_type, bucket), '
            f'crowded AS (SELECT kept.node_type, kept.bucket FROM {tally} kept JOIN added USING (node_type, bucket) '
            f'GROUP BY 1, 2 HAVING count(*) >= {FOLD_AT - 1}), '
            f'taken AS (SELECT kept.ctid AS place FROM {tally} kept JOIN crowded USING (node_type, bucket) '
            f'FOR UPDATE OF kept SKIP LOCKED), '
            f'folded AS (DELETE FROM {tally} kept USING taken WHERE kept.ctid = taken.place '
            f'RETURNING kept.node_type, kept.bucket, kept.rows) '
            f'INSERT INTO {tally} (node_type, bucket, rows) SELECT node_type, bucket, sum(rows) FROM folded '
            f'GROUP BY 1, 2 HAVING sum(rows) <> 0;'
        )

    def drop_statements(self) -> list[str]:
        """Remove the table, its tally, their triggers and functions (nothing happens for those that do not exist)."""
        table = self.name
        statements = [f'DROP TRIGGER IF EXISTS {table}_{event} ON {NODE_TABLE}' for event in _EVENTS]
        statements += [f'DROP FUNCTION IF EXISTS {table}_{event}()' for event in _EVENTS]
        statements.append(f'DROP FUNCTION IF EXISTS {table}_bucket(numeric)')
        return [*statements, f'DROP TABLE IF EXISTS {table}', f'DROP TABLE IF EXISTS {table}_tally']


_EVENTS = ('add', 'remove', 'change', 'clear')


def _function(name: str, body: str) -> str:
    return f'CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN {body} RETURN NULL; END $body$'


@functools.cache
def _tally_table(name: str) -> Table:
    return Table(
        name,
        MetaData(),
        Column('node_type', String(255), nullable=False),
        Column('bucket', Integer, nullable=False),
        Column('rows', BigInteger, nullable=False),
    )


@functools.cache
def _number_table(name: str) -> Table:
    return Table(
        name,
        MetaData(),
        Column('id', Integer, primary_key=True),
        Column('node_type', String(255), nullable=False),
        Column('number', Numeric, nullable=False),
    )


class Statements(NamedTuple):
    """The statements making an index, in order: each of ``before`` alone (outside a transaction); ``transaction``
    in one; ``fill`` (if any) once per range of node ids, each in a transaction of its own; each of ``after`` alone."""

    before: list[str]
    transaction: list[str]
    fill: str | None
    after: list[str]
