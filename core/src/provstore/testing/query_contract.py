"""The QueryBuilder conformance contract: the cases of :mod:`provstore.testing.query_cases` on a fixed graph.

Two base classes of pytest tests, parameterised like the other storage contracts by ``backend_class`` and a
``profile`` fixture, except that the graph is stored once per class (so the fixtures are class-scoped):

:class:`QueryConformanceContract`
    for a writable storage: the contract stores the graph (:func:`~provstore.testing.query_graph.build_query_graph`)
    in the new storage of ``query_profile`` and runs every case. Set :attr:`~QueryConformanceContract.index_json_paths`
    in a second subclass to run them again with every filtered JSON path declared indexed (``add_json_index``),
    which must change no result::

        class TestMyQueries(QueryConformanceContract):
            backend_class = MyStorageBackend

        class TestMyQueriesIndexed(QueryConformanceContract):
            backend_class = MyStorageBackend
            index_json_paths = True

:class:`ReadOnlyQueryConformanceContract`
    for a storage that cannot be written (a backend over an archive): the author overrides the class-scoped fixture
    ``query_storage`` to yield an open storage that already holds the graph, typically stored by
    ``build_query_graph`` in a writable backend and then turned into the read-only backend's own files. The contract
    reads the graph back (:func:`~provstore.testing.query_graph.read_query_graph`) and runs the same reading cases::

        class TestMyArchiveQueries(ReadOnlyQueryConformanceContract):
            backend_class = MyArchiveBackend

            @pytest.fixture(scope='class')
            def query_storage(self, tmp_path_factory):
                source = new_profile(SomeWritableBackend, tmp_path_factory.mktemp('source'))
                with opened_storage(SomeWritableBackend, source, initialise=True, erase=True) as writable:
                    build_query_graph(writable)
                    archive = export_to_my_format(writable, tmp_path_factory.mktemp('archive'))
                profile = new_profile(MyArchiveBackend, archive.parent, filepath=str(archive))
                with opened_storage(MyArchiveBackend, profile) as storage:
                    yield storage

The profiles' default user is :data:`~provstore.testing.CONTRACT_EMAIL`, the graph's first user.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from provstore.config import Profile
from provstore.exceptions import ReadOnlyStorageError
from provstore.orm import Float, Node, QueryBuilder, QueryError
from provstore.storage import EntityStorage, EntityType, StorageBackend
from provstore.testing.profiles import new_profile, opened_storage
from provstore.testing.query_cases import (
    CASES,
    N_NODES,
    Case,
    check_result,
    expected_result,
    flat_rows,
    labels,
    rows,
    run_case,
)
from provstore.testing.query_graph import LINKS, QueryGraph, build_query_graph, read_query_graph

__all__ = ['INDEXED_PATHS', 'QueryConformanceContract', 'ReadOnlyQueryConformanceContract']

INDEXED_PATHS = [
    *(
        ('attributes', key)
        for key in ('value', 'n', 's', 'w', 'x', 'b', 'f', 'a', 'when', 'tags', 'nested', 'list', 'exit_status')
    ),
    ('attributes', 'process_state'),
    *(('extras', key) for key in ('tag', 'rank', 'n', 'flag')),
]
"""The node JSON paths declared indexed when ``index_json_paths`` is set: every path the cases filter on."""


class _QueryCases:
    """The reading tests, on the class-scoped fixture ``graph``."""

    backend_class: ClassVar[type[StorageBackend]]
    """The backend class under test: a :class:`~provstore.storage.StorageBackend` and an ``EntityStorage``."""

    @pytest.fixture(scope='class')
    @classmethod
    def graph(cls, query_storage: EntityStorage) -> QueryGraph:
        """The graph in ``query_storage``, read back from its rows."""
        return read_query_graph(query_storage)

    def test_the_graph_is_stored(self, graph: QueryGraph) -> None:
        """The graph has every entity its definition lists, read through the ORM (not through the QueryBuilder)."""
        storage = graph.storage
        assert storage.count_rows(EntityType.NODE) == N_NODES == len(graph.nodes)
        assert storage.count_rows(EntityType.LINK) == len(LINKS)
        assert storage.count_rows(EntityType.GROUP) == 3
        assert storage.count_rows(EntityType.USER) == 2
        assert storage.count_rows(EntityType.AUTHINFO) == 3
        assert storage.count_rows(EntityType.COMMENT) == 3
        assert storage.count_rows(EntityType.LOG) == 4
        float_one = Node.collection(storage).get(pk=graph.pk('float-1.0'))
        assert isinstance(float_one, Float)
        assert type(float_one.value) is float
        assert Node.collection(storage).get(pk=graph.pk('dict-h')).base.attributes.get('a"b') == 'dq'

    @pytest.mark.parametrize('case', CASES, ids=lambda case: case.id)
    def test_query(self, graph: QueryGraph, case: Case) -> None:
        """The query of ``case`` gives the expected result (or raises the expected error) on this backend."""
        if case.raises is not None:
            with pytest.raises(case.raises, match=case.match):
                run_case(case, graph)
            return
        check_result(run_case(case, graph), expected_result(case, graph))

    @pytest.mark.parametrize('case', [case for case in CASES if case.raises is None], ids=lambda case: case.id)
    def test_query_through_as_dict(self, graph: QueryGraph, case: Case) -> None:
        """The query rebuilt by ``QueryBuilder.from_dict(qb.as_dict())`` gives the same expected result."""
        check_result(run_case(case, graph, via_dict=True), expected_result(case, graph))

    @pytest.mark.parametrize(
        'case', [case for case in CASES if case.read is rows and case.raises is None], ids=lambda case: case.id
    )
    def test_count_is_the_number_of_rows(self, graph: QueryGraph, case: Case) -> None:
        """``count()`` gives as many as ``all()`` returns rows, whichever way the storage counts."""
        qb = QueryBuilder(storage=graph.storage, **case.init)
        case.build(qb, graph)
        assert qb.count() == len(qb.all())

    def test_in_with_100000_values(self, graph: QueryGraph) -> None:
        """``in`` and ``!in`` take a list of 100,000 values, on columns and on JSON values."""
        ids = [*range(10**9, 10**9 + 99_998), graph.pk('int-1'), graph.pk('int-2')]
        qb = QueryBuilder(storage=graph.storage)
        qb.append(Node, tag='n', filters={'id': {'in': ids}}, project='label')
        check_result(flat_rows(qb.all()), labels('int-1', 'int-2'))
        values = [f'value-{index}' for index in range(99_999)] + ['hello']
        qb = QueryBuilder(storage=graph.storage)
        qb.append(Node, tag='n', filters={'attributes.value': {'in': values}}, project='label')
        check_result(flat_rows(qb.all()), {'str-hello'})
        qb = QueryBuilder(storage=graph.storage)
        qb.append(Node, tag='n', filters={'id': {'!in': ids}})
        assert qb.count() == N_NODES - 2

    def test_filter_values_are_never_sql(self, graph: QueryGraph) -> None:
        """Values that look like SQL are compared as values: they match nothing here, and every table is still there."""
        fragment = "x'; DROP TABLE db_dbnode; --"
        storage = graph.storage
        for filters in (
            {'label': fragment},
            {'label': {'like': fragment}},
            {'label': {'in': [fragment, "'); DELETE FROM db_dbnode; --"]}},
            {'attributes.s': fragment},
            {'attributes.tags': {'contains': [fragment]}},
            {'attributes': {'has_key': fragment}},
            {'extras.tag': {'ilike': f'%{fragment}%'}},
        ):
            qb = QueryBuilder(storage=storage)
            qb.append(Node, tag='n', filters=filters)
            assert qb.count() == 0, filters
        qb = QueryBuilder(storage=storage)
        qb.append(Node, tag='n', filters={'label': {'!==': fragment}})
        assert qb.count() == N_NODES
        assert storage.count_rows(EntityType.NODE) == N_NODES
        assert storage.count_rows(EntityType.LINK) == len(LINKS)

    @pytest.mark.parametrize(
        ('path', 'value'),
        [("attributes.it's", 'apostrophe'), ('attributes.a"b', 'dq'), ("attributes.x'; DROP TABLE db_dbnode; --", 1)],
    )
    def test_json_paths_with_quotes(self, graph: QueryGraph, path: str, value: Any) -> None:
        """A JSON path with quotes in a key filters and projects correctly, or is refused with a QueryError."""
        storage = graph.storage
        expected = {'dict-h'} if value != 1 else set()
        try:
            qb = QueryBuilder(storage=storage)
            qb.append(Node, tag='n', filters={path: value}, project=['label', path])
            result = qb.all()
        except QueryError as exc:
            assert '\n' not in str(exc).strip()
        else:
            assert {row[0] for row in result} == expected
            assert all(row[1] == value for row in result)
        assert storage.count_rows(EntityType.NODE) == N_NODES


class QueryConformanceContract(_QueryCases):
    """Every case of the conformance table, on the graph stored once per class in a new storage of the backend.

    Subclass it (with a name starting with ``Test``), set :attr:`backend_class`, and override the class-scoped
    fixture ``query_profile`` when the backend's default options do not work.
    """

    index_json_paths: ClassVar[bool] = False
    """Declare every path of :data:`INDEXED_PATHS` indexed before the cases run (results must not change)."""

    @pytest.fixture(scope='class')
    @classmethod
    def query_profile(cls, tmp_path_factory: pytest.TempPathFactory) -> Profile:
        """A profile of :attr:`backend_class` with its default options, in a folder of its own; override if needed."""
        return new_profile(cls.backend_class, tmp_path_factory.mktemp('query-profile'))

    @pytest.fixture(scope='class')
    @classmethod
    def query_storage(cls, query_profile: Profile) -> Iterator[EntityStorage]:
        """The storage of ``query_profile``, holding the graph (and its indexes); closed and erased at the end."""
        with opened_storage(cls.backend_class, query_profile, initialise=True, erase=True) as storage:
            assert isinstance(storage, EntityStorage), f'{cls.backend_class.__name__} is not an EntityStorage'
            built = build_query_graph(storage)
            assert read_query_graph(storage) == built, 'the rows read back differ from the graph that was stored'
            for field_name, key in INDEXED_PATHS if cls.index_json_paths else []:
                storage.add_json_index(EntityType.NODE, field_name, [key])
            yield storage


class ReadOnlyQueryConformanceContract(_QueryCases):
    """The reading cases on a storage the author provides, holding the graph; nothing is written to it.

    Subclass it (with a name starting with ``Test``), set :attr:`backend_class` and override the class-scoped fixture
    ``query_storage`` (see the module's text).
    """

    @pytest.fixture(scope='class')
    @classmethod
    def query_storage(cls) -> EntityStorage:
        """An open storage of :attr:`backend_class` that holds the query graph: the plugin author provides it.

        The author's fixture may be a generator, to close what it opened.
        """
        raise NotImplementedError(
            f'{cls.__name__} must override the class-scoped fixture `query_storage`: an open storage holding '
            'the graph of provstore.testing.query_graph.build_query_graph'
        )

    def test_storage_is_read_only(self, graph: QueryGraph) -> None:
        """The storage is of the class under test and refuses to be written."""
        storage = graph.storage
        assert isinstance(storage, self.backend_class)
        with pytest.raises(ReadOnlyStorageError):
            storage.check_writable()
        with pytest.raises(ReadOnlyStorageError):
            storage.insert_rows(EntityType.USER, [{'email': 'intruder@example.org'}])
        assert storage.count_rows(EntityType.USER) == 2
