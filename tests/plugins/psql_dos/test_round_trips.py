"""What a small write costs in statements: the hot paths of storing one node stay short on both dialects.

These count statements and transactions, never time (benchmarks/ measures time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from provstore.config import Profile
from provstore.exceptions import StorageError
from provstore.orm import CalculationNode, Dict, Int, LinkType, User, WorkflowNode
from provstore.storage import EntityType
from provstore_psql_dos.base import DosStorageBackend
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend

E = EntityType


@pytest.fixture(params=('sqlite', 'postgresql'))
def storage(request: pytest.FixtureRequest, make_profile: Callable[..., Profile]) -> Iterator[DosStorageBackend]:
    """An initialised, open storage of each dialect in turn; closed and erased after the test."""
    backend_class: type[DosStorageBackend] = SqliteDosStorageBackend
    options: dict[str, Any] = {}
    if request.param == 'postgresql':
        request.getfixturevalue('postgres_server')
        backend_class, options = PsqlDosStorageBackend, request.getfixturevalue('psql_options')
    profile = make_profile(backend_class, **options)
    backend_class.initialise(profile)
    opened = backend_class(profile)
    yield opened
    opened.close()
    backend_class.erase(profile)


@pytest.fixture
def statements(storage: DosStorageBackend) -> Iterator[list[str]]:
    """The SQL ``storage`` sends through SQLAlchemy from now on (savepoints included)."""
    sent: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *arguments: Any) -> None:
        sent.append(statement.split(maxsplit=1)[0].upper())

    event.listen(storage.engine, 'before_cursor_execute', record)
    yield sent
    event.remove(storage.engine, 'before_cursor_execute', record)


def test_one_row_inside_a_block_needs_a_savepoint_only_on_postgresql(
    storage: DosStorageBackend, statements: list[str]
) -> None:
    """On SQLite a failed statement undoes itself, so a one-statement write inside a block takes no savepoint."""
    with storage.transaction():
        statements.clear()
        storage.insert_rows(E.USER, [{'email': 'one@x'}])
        storage.get_rows(E.USER, 'email', ['one@x'])
        with pytest.raises(StorageError, match=r'(?i:unique)'):
            storage.insert_rows(E.USER, [{'email': 'one@x'}])
        storage.insert_rows(E.USER, [{'email': 'two@x'}])
    savepoints = statements.count('SAVEPOINT')
    assert savepoints == (0 if storage.name == 'sqlite_dos' else 3)
    assert sorted(row['email'] for row in storage.iter_rows(E.USER)) == ['one@x', 'two@x']


def test_storing_a_node_without_links_is_one_insert(storage: DosStorageBackend, statements: list[str]) -> None:
    """``store()`` of a node without links or files sends one INSERT: no savepoint, no lookup of links.

    (SQLite's ``BEGIN IMMEDIATE`` is sent as SQL; psycopg's BEGIN, if any, is not seen here.)
    """
    user = User('bench@x', storage=storage).store()
    statements.clear()
    node = Dict({'a': 2}, user=user, storage=storage).store()
    assert statements == (['BEGIN', 'INSERT'] if storage.name == 'sqlite_dos' else ['INSERT'])
    assert storage.get_rows(E.NODE, 'id', [node.pk])[0]['attributes'] == {'a': 2}


def test_storing_a_node_with_links_is_one_transaction(storage: DosStorageBackend, statements: list[str]) -> None:
    """A node with links from stored nodes: the links are checked and written in one transaction, no more."""
    user = User('bench@x', storage=storage).store()
    workflow = WorkflowNode(user=user, storage=storage).store()
    result = Int(2, user=user, storage=storage)
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    statements.clear()
    result.store()
    assert statements.count('INSERT') == 2
    assert statements.count('SELECT') == 1  # the links of the stored source, counted inside the transaction
    assert statements.count('SAVEPOINT') == (0 if storage.name == 'sqlite_dos' else 2)
    assert [row['input_id'] for row in storage.get_links([result.pk], 'incoming')] == [workflow.pk]


def test_inputs_of_a_new_calculation_read_no_links(storage: DosStorageBackend, statements: list[str]) -> None:
    """Links a source may have once per (target, label) cannot clash with stored links when the target is new.

    Adding them and storing the calculation reads no links: the node and its links are two INSERTs.
    """
    user = User('bench@x', storage=storage).store()
    data = Int(1, user=user, storage=storage).store()
    workflow = WorkflowNode(user=user, storage=storage).store()
    calculation = CalculationNode(user=user, storage=storage)
    statements.clear()
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
    assert statements == []
    calculation.store()
    assert 'SELECT' not in statements
    assert statements.count('INSERT') == 2
    stored = storage.get_links([calculation.pk], 'incoming')
    assert sorted((row['input_id'], row['type']) for row in stored) == sorted(
        [(data.pk, 'input_calc'), (workflow.pk, 'call_calc')]
    )
