"""The abstract dialect: every way the SQL of PostgreSQL and SQLite differs, asked by the entity statements, the query
compiler, the traversal, the transactions and the JSON indexes.

One subclass per database (:mod:`~provstore_psql_dos.dialects.postgresql`, :mod:`~provstore_psql_dos.dialects.sqlite`),
chosen once when a storage opens (:func:`~provstore_psql_dos.dialects.dialect_of`). What both databases share
lives in the modules that ask: a method is here only when its SQL differs.
"""

from __future__ import annotations

import abc
import operator as operator_module
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from provstore.exceptions import QueryError
from provstore.storage import EntityType
from provstore.storage.query import FIELDS
from provstore_psql_dos.jsonindex import index_name
from provstore_psql_dos.tables import ROWS_PER_STATEMENT

if TYPE_CHECKING:
    from sqlalchemy import CTE, Select
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.sql.selectable import FromClause
    from sqlalchemy.types import TypeEngine

    from provstore.storage.query import Condition, Filter
    from provstore_psql_dos.jsonindex import NumberTable, Statements
    from provstore_psql_dos.tables import Kind, TableInfo

__all__ = ['COMPARISONS', 'COUNTED_FIELDS', 'LENGTH_OPERATORS', 'RANGES', 'Binder', 'Dialect', 'compare', 'is_number']


COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    '==': operator_module.eq,
    '>': operator_module.gt,
    '>=': operator_module.ge,
    '<': operator_module.lt,
    '<=': operator_module.le,
}

RANGES = ('>', '>=', '<', '<=')

LENGTH_OPERATORS = {'of_length': '==', 'longer': '>', 'shorter': '<'}

COUNTED_FIELDS = {name: FIELDS[EntityType.NODE][name] for name in ('id', 'node_type')}
"""The node columns a number table holds besides the number."""


def compare(left: ColumnElement[Any], operator: str, right: Any) -> ColumnElement[bool]:
    """``left operator right`` for one of :data:`COMPARISONS`."""
    return COMPARISONS[operator](left, right)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number (an int or a float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Binder(Protocol):
    """What a dialect asks of the query compiler while it compiles one query."""

    def given(self, item: Condition, type_: Any = None, form: Callable[[Any], Any] | None = None) -> Any:
        """The value of ``item`` (in the ``form`` the statement takes) as a bind parameter."""

    def filter(self, source: FromClause, kinds: Mapping[str, str], item: Filter) -> ColumnElement[bool]:
        """The SQL condition of ``item`` on the columns of ``source``."""


class Dialect(abc.ABC):
    """Every difference between the SQL of two databases; an instance serves one open storage and its threads."""

    name: ClassVar[str]
    """The SQLAlchemy name of the database (``engine.dialect.name``)."""

    autocommit_single_statement: ClassVar[bool]
    """Whether one statement outside a transaction block runs in autocommit (one round trip instead of three)."""

    snapshot_isolation: ClassVar[str | None]
    """The isolation level under which every statement of a read transaction sees one snapshot, or ``None`` when
    the database's default transaction already does."""

    failed_statement_keeps_transaction: ClassVar[bool]
    """Whether a failed statement undoes itself and leaves the transaction usable: one statement inside a block then
    needs no savepoint, even when it writes."""

    # -- entity statements ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def in_values(self, column: ColumnElement[Any], kind: Kind, values: Sequence[Any]) -> ColumnElement[bool]:
        """Return the condition ``column`` is one of ``values`` (checked values of ``kind``), with one parameter."""

    @abc.abstractmethod
    def id_set(self, name: str) -> str:
        """Return SQL selecting the integers of the list parameter ``name`` as one column ``id``."""

    @abc.abstractmethod
    def list_parameter(self, values: Sequence[Any]) -> Any:
        """Return the value of a list parameter used by :meth:`id_set`."""

    @abc.abstractmethod
    def starts_with(self, column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
        """Return the condition the text ``column`` starts with ``prefix`` (non-empty), exactly, using its index."""

    def bind_forms(self) -> dict[Kind, Callable[[Any], Any]]:
        """Return, for the kinds the dialect's statements bind differently, a function checking and converting."""
        return {}

    def rows_per_insert(self, info: TableInfo) -> int:
        """Return how many rows of ``info``'s table one INSERT statement carries."""
        return ROWS_PER_STATEMENT

    def one_insert_statement(self, entity: EntityType, count: int) -> bool:
        """Return whether ``count`` rows of ``entity`` surely go into the table with one INSERT statement."""
        return count == 1

    @abc.abstractmethod
    def insert_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        """Insert checked rows holding every column but ``id`` in one statement; return their ids in order."""

    @abc.abstractmethod
    def text_column(self, column: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
        """Return ``column`` read in :mod:`text form <provstore.storage.textrows>` (JSON text, UTC time text)."""

    @abc.abstractmethod
    def insert_text_chunk(self, connection: Connection, info: TableInfo, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows in text form (checked and completed; JSON columns not yet checked to hold JSON); return the
        ids in order.

        :raises StorageError: naming the row, for JSON text that is not JSON.
        """

    @abc.abstractmethod
    def update_group(
        self, connection: Connection, info: TableInfo, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> int:
        """Set ``columns`` of checked rows (each with ``id`` and ``columns``); return how many rows were found."""

    @abc.abstractmethod
    def patch_statement(self, column: str, has_sets: bool) -> str:
        """Return the UPDATE patching JSON column ``column`` of node ``:id`` (parameters ``:remove``, ``:set``)."""

    @abc.abstractmethod
    def patch_parameters(self, set_keys: Mapping[str, str], delete_keys: Sequence[str]) -> dict[str, Any]:
        """Return the ``:remove`` and ``:set`` parameters of :meth:`patch_statement` for JSON-encoded values."""

    @abc.abstractmethod
    def add_group_nodes_statement(self) -> str:
        """Return the INSERT adding nodes ``:ids`` to group ``:group_id``, skipping those already in it."""

    # -- the query compiler ------------------------------------------------------------------------------------

    def checked_form(self, form: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``form`` (how a value is bound) refusing, with a :class:`QueryError`, values the database cannot take."""
        return form

    @abc.abstractmethod
    def json_condition(self, column: ColumnElement[Any], item: Condition, binder: Binder) -> ColumnElement[bool]:
        """The condition ``item`` on the value at ``item.path`` of the JSON ``column``, typed: false for a value of
        another type than the operator compares."""

    @abc.abstractmethod
    def json_present(self, column: ColumnElement[Any], path: tuple[str, ...]) -> ColumnElement[Any]:
        """An expression that is NULL exactly where the JSON ``column`` has no value at ``path`` (for ``count``)."""

    @abc.abstractmethod
    def like(self, text: ColumnElement[Any], pattern: str, fold: bool) -> ColumnElement[bool]:
        """``text LIKE pattern`` (``fold``: ignoring case, all of Unicode), with PostgreSQL's meaning."""

    def ordered_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` (text) compared and sorted by code point."""
        return column

    @abc.abstractmethod
    def integer_type(self) -> TypeEngine[Any]:
        """The type a value is cast to as an integer (64 bits)."""

    @abc.abstractmethod
    def json_projection(
        self, column: ColumnElement[Any], path: tuple[str, ...]
    ) -> tuple[list[ColumnElement[Any]], Callable[[Sequence[Any]], Any]]:
        """The SQL columns of the JSON value at ``path`` and the function making the value of them."""

    @abc.abstractmethod
    def json_cast(self, column: ColumnElement[Any], path: tuple[str, ...], cast_to: str | None) -> ColumnElement[Any]:
        """The value at ``path`` as a float, integer, text or boolean; NULL where it cannot be one.

        ``f``/``i``: numbers, and strings that hold a number (``i`` truncates towards zero); ``t``: strings, numbers
        and booleans as text; ``b``: booleans. Arrays, objects and null give NULL.
        """

    @abc.abstractmethod
    def json_sort_keys(self, column: ColumnElement[Any], path: tuple[str, ...]) -> list[ColumnElement[Any]]:
        """Sort keys of JSON values of any type: null, booleans, numbers, strings, arrays, objects; then the value."""

    def without_type_index(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``node_type`` in a prefix test that a declared JSON index (holding ``node_type`` too) should answer."""
        return column

    # -- number tables (where the database keeps them) ----------------------------------------------------------

    def number_table(self, table: str, field: str, path: Sequence[str]) -> NumberTable | None:
        """The number table of a declared path, if the database keeps one for it."""
        return None

    def number_condition(self, number: ColumnElement[Any], item: Condition, binder: Binder) -> ColumnElement[bool]:
        """A numeric comparison on a number table's ``number``."""
        raise QueryError(f'{self.name} keeps no number tables')  # pragma: no cover - number_table gives None

    def count_from_tally(
        self, numbers: NumberTable, condition: Condition, others: list[Filter], binder: Binder
    ) -> Select[Any]:
        """A count of a numeric range from a number table's tally."""
        raise QueryError(f'{self.name} keeps no number tables')  # pragma: no cover - number_table gives None

    # -- the traversal ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def link_type_key(self, link_type: ColumnElement[Any], reached_id: ColumnElement[Any]) -> ColumnElement[Any]:
        """The link type of a traversal step, as an expression that keeps the planner on the index of link ends."""

    @abc.abstractmethod
    def recursive_union(
        self, cte: CTE, steps: list[Select[Any]], with_depth: bool, bound: list[ColumnElement[bool]], name: str
    ) -> CTE:
        """``cte`` joined recursively with its ``steps`` (each selecting the reached ``id`` from ``cte``'s rows)."""

    # -- JSON indexes -------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def index_statements(self, table: str, field: str, path: Sequence[str], numbers: bool = True) -> Statements:
        """The statements making the index of a JSON path, and the planner statistics of what they made.

        :param numbers: make the number table (afresh) too, where there is one.
        """

    def drop_index_statements(self, table: str, field: str, path: Sequence[str]) -> list[str]:
        """The statements removing what :meth:`index_statements` made (one transaction)."""
        numbers = self.number_table(table, field, path)
        dropped = [f'DROP INDEX IF EXISTS {index_name(table, field, path)}']
        return dropped + (numbers.drop_statements() if numbers else [])

    def relation_kinds(self, connection: Connection, names: Sequence[str]) -> dict[str, str]:
        """Of the relations ``names`` that exist, ``table`` for a table and the access method for an index (where
        the database tells; else nothing)."""
        return {}

    @abc.abstractmethod
    def relation_sizes(self, connection: Connection) -> dict[str, dict[str, int]]:
        """The bytes each table and each index of the database takes: ``{'tables': {...}, 'indexes': {...}}``."""

    @abc.abstractmethod
    def explain(self, connection: Connection, statement: Any) -> str:
        """The database's plan of ``statement``."""
