"""Running the QueryBuilder's queries on an open storage: statements compiled once per shape of query and kept, then
run with the values of each query as parameters.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import DBAPIError

from provstore.exceptions import QueryError
from provstore_psql_dos.compiler import CompiledQuery, QueryCompiler, query_shape
from provstore_psql_dos.errors import one_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from provstore.storage.query import Query
    from provstore_psql_dos.dialects.base import Dialect
    from provstore_psql_dos.indexes import DeclaredIndexes

__all__ = ['STATEMENTS_KEPT', 'QueryRunner']

STATEMENTS_KEPT = 256
"""How many query statements an open storage keeps for reuse (the oldest made goes first)."""


class _Storage(Protocol):
    """What running queries asks of the storage: its checks and the connection of this thread's transaction block."""

    def check_open(self) -> None: ...

    @property
    def open_connection(self) -> Connection | None: ...

    def _block(self, write: bool, single: bool = False) -> contextlib.AbstractContextManager[Connection]: ...


class QueryRunner:
    """The queries of one open storage, and the statements kept for them (shared by its threads)."""

    def __init__(
        self, storage: _Storage, engine: Engine, dialect: Dialect, declared: Callable[[], DeclaredIndexes]
    ) -> None:
        """:param declared: reads the declared JSON indexes, when a compiler first needs them."""
        self._storage = storage
        self._engine = engine
        self._dialect = dialect
        self._declared = declared
        self._json_indexes: DeclaredIndexes | None = None
        self.statements: dict[tuple[bool, Hashable], CompiledQuery] = {}
        self._statements_lock = threading.Lock()

    def run(self, query: Query, batch_size: int | None = None) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of ``query``, fetched ``batch_size`` at a time (a server-side cursor on PostgreSQL).

        The rows come from one snapshot: the thread's open transaction if there is one, else a read transaction on
        a connection of the iteration's own, so that the loop may write through the storage meanwhile.

        :raises QueryError: for a query the database refuses (a value it cannot take), naming the problem.
        """
        self._storage.check_open()
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise QueryError(f'The batch size must be a positive integer or None, got {batch_size!r}')
        if batch_size is None and self._storage.open_connection is None:
            # NOTE: all rows at once, outside a block: one statement in autocommit (one round trip on PostgreSQL),
            # its rows read before the loop runs, so that the loop may write.
            compiled, rows = self._read_query(query, count=False)
            return iter([compiled.convert(row) for row in rows])
        compiled, parameters = self._prepared(query, count=False)
        return self._iter_query(compiled.statement, parameters, compiled.convert, batch_size)

    def count(self, query: Query) -> int:
        """Return the number of rows of ``query``, counted by the database."""
        _, ((counted,),) = self._read_query(query, count=True)
        return int(counted)

    def _read_query(self, query: Query, count: bool) -> tuple[CompiledQuery, list[Any]]:
        """Run ``query`` (or its count) as one statement and return it with its rows.

        Another process may have dropped a declared JSON index since this storage read them: a statement that
        finds a table missing outside a block is made again from the indexes as they are now, once.
        """
        compiled, parameters = self._prepared(query, count)
        try:
            return compiled, self._read(compiled.statement, parameters)
        except QueryError as exc:
            missing_table = getattr(getattr(exc.__cause__, 'orig', None), 'sqlstate', None) == '42P01'
            if self._storage.open_connection is not None or not missing_table:
                raise
        self.forget()
        compiled, parameters = self._prepared(query, count)
        return compiled, self._read(compiled.statement, parameters)

    def _prepared(self, query: Query, count: bool) -> tuple[CompiledQuery, dict[str, Any]]:
        """The statement of ``query`` (or of its count) and its parameters; made once per shape of query.

        Statements are kept by :func:`~provstore_psql_dos.compiler.query_shape`, the query without the values
        that are parameters: building a statement costs more than running most queries.
        """
        shape = query_shape(query)
        if shape is None:
            compiler = self.compiler()
            return (compiler.count(query) if count else compiler.compile(query)), {}
        key = (count, shape.key)
        compiled = self.statements.get(key)
        if compiled is None:
            compiler = self.compiler()
            compiled = compiler.count(query, shape.conditions) if count else compiler.compile(query, shape.conditions)
            if compiled.reusable:
                with self._statements_lock:
                    if len(self.statements) >= STATEMENTS_KEPT:
                        self.statements.pop(next(iter(self.statements)))
                    self.statements[key] = compiled
        return compiled, compiled.bind(shape.values)

    def compiler(self) -> QueryCompiler:
        """A compiler for one query, told which JSON paths have an index (read once per open storage).

        A compiler serves one query: it keeps state while compiling, and threads share the storage.
        """
        if self._json_indexes is None:
            self._json_indexes = self._declared()
        return QueryCompiler(self._dialect, *self._json_indexes)

    def forget(self) -> None:
        """Read the declared JSON indexes again before the next query, and forget the statements made without."""
        self._json_indexes = None
        with self._statements_lock:
            self.statements.clear()

    def _read(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        """Run one reading statement and return its rows (in autocommit outside a block, on PostgreSQL)."""
        self._storage.check_open()
        try:
            with self._storage._block(False, single=True) as connection:
                return list(connection.execute(statement, parameters))
        except DBAPIError as exc:
            raise QueryError(f'The database refused the query: {one_line(exc)}') from exc

    def _iter_query(
        self, statement: Any, parameters: dict[str, Any], convert: Any, batch_size: int | None
    ) -> Iterator[tuple[Any, ...]]:
        with contextlib.ExitStack() as stack:
            connection = self._storage.open_connection
            if connection is None:
                connection = stack.enter_context(self._engine.connect())
                stack.enter_context(connection.begin())
            try:
                if batch_size is None:
                    result = connection.execute(statement, parameters)
                else:
                    # NOTE: the option goes with this statement only: set on the connection, it would stay there and
                    # make every later statement of the thread's transaction (a write in the loop) a server-side cursor.
                    options = {'yield_per': batch_size}
                    result = connection.execute(statement, parameters, execution_options=options)
                stack.callback(result.close)  # a loop left early (break, exception) closes its cursor at once
                for row in result:
                    yield convert(row)
            except DBAPIError as exc:
                raise QueryError(f'The database refused the query: {one_line(exc)}') from exc

    def statement(self, query: Query) -> Any:
        """The statement of ``query``, made afresh (with its values), for showing or explaining."""
        return self.compiler().compile(query).statement

    def sql(self, query: Query, inline: bool = False) -> str:
        """Return the SQL of ``query`` in this storage's dialect (``inline``: values written in, to read only)."""
        statement = self.statement(query)
        if inline:
            try:
                return str(statement.compile(self._engine, compile_kwargs={'literal_binds': True}))
            except Exception:
                pass
        return str(statement.compile(self._engine))
