"""The QueryBuilder around its query language (covered by the query contract of ``provstore.testing``): declared JSON
indexes, streaming, the export traversal rules, and the ``query``, ``storage index`` and ``node list`` commands, on
``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provstore.cli import cli
from provstore.orm import (
    EXPORT_RULES,
    CalcJobNode,
    Data,
    Dict,
    Int,
    LinkType,
    Node,
    NotExistentError,
    QueryBuilder,
    QueryError,
    Str,
    WorkChainNode,
    get_nodes_export,
    store_nodes,
)
from provstore.storage import EntityStorage, EntityType

FILTERS = [
    {'attributes.a': {'>': 5}},
    {'attributes.a': {'<=': 5}},
    {'attributes.a': 7},
    {'attributes.a': {'in': [1, 2, 'x', True]}},
    {'attributes.a': {'!>': 5}},
    {'attributes.a': None},
    {'attributes.a': 'x'},
]
"""Filters on the indexed path: their rows must not change when the index exists."""


@pytest.fixture
def dicts(storage: EntityStorage) -> list[Dict]:
    """Store Dict nodes whose ``a`` is a number, a string, a boolean, null or missing."""
    values: list[object] = [*range(10), 2.5, 'x', True, False, None]
    nodes = [Dict({'a': value}, label=f'a={value!r}') for value in values]
    nodes.append(Dict({'b': 1}, label='no a'))
    nodes.append(Int(7, label='int'))
    store_nodes(nodes)
    return [node for node in nodes if isinstance(node, Dict)]


def labels(filters: dict[str, object]) -> list[str]:
    """Return the sorted labels of the Dict nodes passing ``filters``."""
    query = QueryBuilder().append(Dict, tag='d', filters=filters, project='label')
    return sorted(query.all(flat=True))


def test_declared_json_index_serves_typed_filters(storage: EntityStorage, dicts: list[Dict]) -> None:
    """A declared index on attributes.a is in the plan of typed filters on it, and changes none of their rows."""
    before = [labels(filters) for filters in FILTERS]
    assert labels({'attributes.a': {'>': 5}}) == ['a=6', 'a=7', 'a=8', 'a=9']
    query = QueryBuilder().append(Dict, filters={'attributes.a': {'>': 5}}, project='id')
    assert 'ix_provstore' not in query.explain()
    name = storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    assert storage.add_json_index(EntityType.NODE, 'attributes', ['a']) == name  # a second time changes nothing
    assert storage.list_json_indexes() == [(EntityType.NODE, 'attributes', ('a',))]
    if 'psql' not in type(storage).__name__.lower():
        # NOTE: PostgreSQL's planner scans a table this small whatever the indexes; SQLite always takes the index.
        assert name in query.explain()
    assert [labels(filters) for filters in FILTERS] == before
    storage.drop_json_index(EntityType.NODE, 'attributes', ['a'])
    assert storage.list_json_indexes() == []
    assert name not in query.explain()
    assert [labels(filters) for filters in FILTERS] == before


def test_declared_index_serves_a_selective_filter(storage: EntityStorage) -> None:
    """On a table where a filter picks a few rows of thousands, both databases answer it from the declared index."""
    store_nodes([Dict({'a': number}) for number in range(3000)])
    name = storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    plan = QueryBuilder().append(Dict, filters={'attributes.a': {'>': 2990}}, project='id').explain()
    assert name in plan
    assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': 2990}}).count() == 9


NUMERIC_FILTERS = [
    {'extras.rank': {'>': 3}},
    {'extras.rank': {'<=': 2.5}},
    {'extras.rank': 4},
    {'extras.rank': {'in': [1, 4.0, 7]}},
    {'extras.rank': {'>=': 2}, 'label': {'like': 'node-%'}},
]
"""Numeric filters on an indexed path of extras (which stored nodes may change), with and without other columns."""


def _matches(rank: object, filters: dict[str, object]) -> bool:
    """Whether a node whose extra ``rank`` is ``rank`` passes ``filters`` (every node here is labelled node-...)."""
    if isinstance(rank, bool) or not isinstance(rank, (int, float)):
        return False
    condition = filters['extras.rank']
    if not isinstance(condition, dict):
        return rank == condition
    ((operator, value),) = condition.items()
    if operator == 'in':
        return rank in value  # type: ignore[operator]
    return {'>': rank > value, '<=': rank <= value, '>=': rank >= value}[operator]  # type: ignore[operator]


def test_counts_on_an_indexed_path_follow_every_write(storage: EntityStorage) -> None:
    """Counts by numeric filters on an indexed path (answered from the index's own table on PostgreSQL) stay exact
    through new nodes, changed and removed values, and deleted nodes."""
    from provstore.orm import delete_nodes

    values: list[object] = [1, 2, 2.5, 3, 4, 4.0, 7, 'seven', True, None, [4], {'rank': 4}]
    nodes = [Int(number, label=f'node-{number}') for number in range(len(values) + 1)]
    store_nodes(nodes)
    ranks: dict[int, object] = {}
    for node, value in zip(nodes, values, strict=False):  # the last node has no rank
        node.base.extras.set('rank', value)
        ranks[node.pk] = value
    storage.add_json_index(EntityType.NODE, 'extras', ['rank'])

    def check() -> None:
        for filters in NUMERIC_FILTERS:
            expected = sum(1 for rank in ranks.values() if _matches(rank, filters))
            assert QueryBuilder().append(Int, filters=filters).count() == expected, filters
            assert QueryBuilder().append(Data, filters=filters).count() == expected, filters
            assert QueryBuilder().append(Str, filters=filters).count() == 0, filters

    check()
    later = [Int(100, label='node-later'), Int(101, label='node-later-too')]
    store_nodes(later)
    later[0].base.extras.set('rank', 5)
    ranks[later[0].pk] = 5
    check()
    changes: list[object] = ['four', 9, 3, None]
    for node, value in zip(nodes, changes, strict=False):
        node.base.extras.set('rank', value)
        ranks[node.pk] = value
    nodes[5].base.extras.delete('rank')
    del ranks[nodes[5].pk]
    check()
    delete_nodes([nodes[6].pk, later[0].pk], dry_run=False)
    del ranks[nodes[6].pk], ranks[later[0].pk]
    check()
    storage.drop_json_index(EntityType.NODE, 'extras', ['rank'])
    check()


def test_a_long_value_at_an_indexed_path_is_stored_and_found(storage: EntityStorage) -> None:
    """A value of any length at an indexed path can be stored and found (a btree index entry is at most 2,704
    bytes on PostgreSQL: its index is a hash index there)."""
    import secrets

    storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    long = secrets.token_hex(8000)
    node = Dict({'a': long})
    store_nodes([node, Dict({'a': [long, long]}), Dict({'a': 1})])
    assert QueryBuilder().append(Dict, filters={'attributes.a': long}, project='id').all(flat=True) == [node.pk]
    assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': 0}}).count() == 1


RANGE_VALUES: list[object] = [
    0, 0.0, -0.0, 1, 1.0, 0.1, 0.15, 2, 9.9, 10, 10.5, 99, 100, 101, 12345, 500_000, 500_000.5, 999_999,
    -1, -0.1, -2.5, -99, -100, -1e6, 1e-20, -1e-20, 1e20, -1e20, 2**63 - 1, -(2**63), 1.7976931348623157e308,
    2**53 + 1, 'text', None, True, [1],
]  # fmt: skip
"""Numbers on and between the tally's bucket boundaries, beyond its first and last ones, and values of other types."""


@pytest.mark.parametrize(
    'threshold', [0, 1, 0.1, 10, 10.0, 99.5, 100, 500_000, -1, -100, 1e-20, 1e20, 2**63 - 1, -(2**63), 2**53]
)
def test_counts_of_indexed_ranges_are_exact(storage: EntityStorage, threshold: float) -> None:
    """Counts of ``>``, ``>=``, ``<`` and ``<=`` on an indexed path (on PostgreSQL: tally buckets plus one bucket's
    numbers) equal the numbers of stored values in range, for thresholds on, between and beyond bucket boundaries;
    by class, with nodes stored one by one and in batches, and after deletions."""
    from provstore.orm import delete_nodes

    storage.add_json_index(EntityType.NODE, 'attributes', ['v'])
    nodes = [Dict({'v': value}) for value in RANGE_VALUES]
    store_nodes(nodes[: len(nodes) // 2])
    for node in nodes[len(nodes) // 2 :]:
        node.store()
    others = [Int(3, label='int'), Str('x')]
    store_nodes(others)
    for node in others:
        node.base.extras.set('v', 5)
    alive = list(nodes)

    def check() -> None:
        numbers = [node.base.attributes.get('v') for node in alive]
        numbers = [value for value in numbers if isinstance(value, (int, float)) and not isinstance(value, bool)]
        comparisons = {'>': float.__gt__, '>=': float.__ge__, '<': float.__lt__, '<=': float.__le__}
        for operator in comparisons:
            expected = sum(1 for value in numbers if _compare_exactly(value, operator, threshold))
            counted = QueryBuilder().append(Dict, filters={'attributes.v': {operator: threshold}}).count()
            assert counted == expected, (operator, threshold)
            assert QueryBuilder().append(Int, filters={'attributes.v': {operator: threshold}}).count() == 0

    check()
    delete_nodes([nodes[0].pk, nodes[10].pk, nodes[-5].pk], dry_run=False)
    alive = [node for index, node in enumerate(nodes) if index not in (0, 10, len(nodes) - 5)]
    check()


def _compare_exactly(value: float, operator: str, threshold: float) -> bool:
    """``value operator threshold`` on the exact decimal values of their JSON texts (as the databases compare)."""
    import decimal

    left, right = decimal.Decimal(json.dumps(value)), decimal.Decimal(json.dumps(threshold))
    return {'>': left > right, '>=': left >= right, '<': left < right, '<=': left <= right}[operator]


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_concurrent_writers_keep_the_tally_exact(storage: EntityStorage) -> None:
    """Threads storing and deleting nodes of one bucket at once, each in transactions of its own, neither block
    each other for good nor lose a number: the count of the range is exact afterwards."""
    import threading

    from provstore.orm import delete_nodes

    storage.add_json_index(EntityType.NODE, 'attributes', ['v'])
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for number in range(40):
                node = Dict({'v': 7 + (offset * 40 + number) / 10_000})
                with storage.transaction():
                    node.store()
                    Dict({'v': 7.5}).store()
                if number % 4 == 0:
                    delete_nodes([node.pk], dry_run=False)
        except BaseException as exception:  # reported by the assertion below
            errors.append(exception)

    threads = [threading.Thread(target=write, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert QueryBuilder().append(Dict, filters={'attributes.v': {'>=': 7}}).count() == 4 * (40 - 10 + 40)
    assert QueryBuilder().append(Dict, filters={'attributes.v': {'<': 7.5}}).count() == 4 * (40 - 10)


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_declaring_an_index_while_others_write(storage: EntityStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declaring a path while another thread stores nodes, changes their values and deletes nodes blocks nobody
    for long, and leaves the number table and its tally exactly as the nodes are."""
    import threading

    from provstore.orm import delete_nodes
    from provstore_psql_dos.indexes import JsonIndexes
    from provstore_psql_dos.jsonindex import NumberTable

    nodes = [Int(number) for number in range(300)]
    store_nodes(nodes)
    for node in nodes[::3]:
        node.base.extras.set('rank', node.value % 17)
    monkeypatch.setattr(JsonIndexes, 'FILL_BATCH', 7)
    declared = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            turn = 0
            while not declared.is_set() or turn < 20:
                node = nodes[turn % len(nodes)]
                node.base.extras.set('rank', turn % 23 if turn % 5 else 'none')
                Int(turn).store().base.extras.set('rank', turn % 19)
                if turn % 7 == 0 and turn < len(nodes):
                    delete_nodes([nodes[-1 - turn].pk], dry_run=False)
                turn += 1
        except BaseException as exception:  # reported by the assertion below
            errors.append(exception)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        storage.add_json_index(EntityType.NODE, 'extras', ['rank'])
    finally:
        declared.set()
        writer.join(timeout=120)
    assert not errors and not writer.is_alive()
    ranks = QueryBuilder().append(Int, project='extras.rank').all(flat=True)
    numbers = [rank for rank in ranks if isinstance(rank, int)]
    for threshold in (0, 5, 11.5, 22):
        counted = QueryBuilder().append(Int, filters={'extras.rank': {'>': threshold}}).count()
        assert counted == sum(1 for rank in numbers if rank > threshold)
    table = NumberTable('extras', ('rank',)).name
    with storage.connection() as connection:  # type: ignore[attr-defined]
        held = connection.exec_driver_sql(f'SELECT count(*) FROM {table}').scalar_one()
        tallied = connection.exec_driver_sql(f'SELECT sum(rows) FROM {table}_tally').scalar_one()
    assert held == tallied == len(numbers)


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_a_failed_declaration_leaves_nothing_behind(storage: EntityStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """When filling the number table fails (here: the connection is lost), the path is not declared, the table and
    its triggers are gone, and nodes are stored and counted as before."""
    from provstore_psql_dos.indexes import JsonIndexes
    from provstore_psql_dos.jsonindex import NumberTable

    store_nodes([Dict({'a': number}) for number in range(10)])

    def lost(self: object, statement: str) -> None:
        raise ConnectionError('connection to the server lost')

    monkeypatch.setattr(JsonIndexes, '_fill', lost)
    with pytest.raises(ConnectionError, match='lost'):
        storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    assert storage.list_json_indexes() == []
    assert storage._indexes.relation_kinds([NumberTable('attributes', ('a',)).name]) == {}  # type: ignore[attr-defined]
    store_nodes([Dict({'a': 20})])
    assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': 4}}).count() == 6


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_an_index_declared_by_an_earlier_provstore_serves_and_upgrades(storage: EntityStorage) -> None:
    """A path declared by an earlier provstore (a btree index, no number table) is queried correctly; declaring it
    again makes the hash index and the number table."""
    from provstore_psql_dos.jsonindex import NumberTable, index_name

    store_nodes([Dict({'a': number}) for number in range(10)])
    name = index_name('db_dbnode', 'attributes', ['a'])
    with storage.connection(write=True) as connection:  # type: ignore[attr-defined]
        connection.exec_driver_sql(f"CREATE INDEX {name} ON db_dbnode ((attributes -> 'a'))")
        connection.exec_driver_sql(
            'INSERT INTO db_dbsetting (key, val, description, time) VALUES '
            '(\'provstore|json_indexes\', \'[["node", "attributes", ["a"]]]\', \'\', now())'
        )
    assert storage.list_json_indexes() == [(EntityType.NODE, 'attributes', ('a',))]
    assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': 4}}).count() == 5
    assert storage.add_json_index(EntityType.NODE, 'attributes', ['a']) == name
    with storage.connection() as connection:  # type: ignore[attr-defined]
        definition = connection.exec_driver_sql(f"SELECT indexdef FROM pg_indexes WHERE indexname = '{name}'")
        assert 'USING hash' in definition.scalar_one()
    count = storage._queries.compiler().count(QueryBuilder().append(Dict, filters={'attributes.a': {'>': 4}})._query())  # type: ignore[attr-defined]
    assert NumberTable('attributes', ('a',)).name in str(count.statement)
    assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': 4}}).count() == 5


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_an_index_dropped_by_another_process_is_noticed(storage: EntityStorage) -> None:
    """A storage whose declared index another opener of the profile drops finds its number table gone, reads the
    declared indexes again and answers; inside a block it says what happened instead."""
    store_nodes([Dict({'a': number}) for number in range(10)])
    storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    query = QueryBuilder().append(Dict, filters={'attributes.a': {'>': 4}})
    assert query.count() == 5 and len(query.all()) == 5
    other = type(storage)(storage._profile)  # type: ignore[call-arg, attr-defined]
    try:
        other.drop_json_index(EntityType.NODE, 'attributes', ['a'])
    finally:
        other.close()
    with storage.connection(), pytest.raises(QueryError, match='does not exist'):  # type: ignore[attr-defined]
        query.count()
    assert query.count() == 5 and len(query.all()) == 5
    assert storage.list_json_indexes() == []


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)
def test_the_tally_of_a_number_table_stays_small(storage: EntityStorage) -> None:
    """Nodes stored one by one (a statement each) add rows to the tally of their bucket; every few are summed into
    one, so that the tally stays a few rows per bucket however many nodes there are."""
    from provstore_psql_dos.jsonindex import FOLD_AT, NumberTable

    storage.add_json_index(EntityType.NODE, 'attributes', ['v'])
    for number in range(60):
        Dict({'v': 5 + number / 1000}).store()  # all in the bucket [5, 5.1)
    tally = NumberTable('attributes', ('v',)).name + '_tally'
    with storage.connection() as connection:  # type: ignore[attr-defined]
        rows = connection.exec_driver_sql(f'SELECT rows FROM {tally}').scalars().all()
    assert sum(rows) == 60
    assert len(rows) <= FOLD_AT
    assert QueryBuilder().append(Dict, filters={'attributes.v': {'>=': 5}}).count() == 60


@pytest.mark.parametrize('storage', ['psql_dos'], indirect=True)  # SQLite answers from its expression index alone
def test_a_count_on_indexed_numbers_reads_no_node_row(storage: EntityStorage) -> None:
    """On PostgreSQL a count by node class and numeric filters on indexed paths is made from the number tables
    alone: its statement does not name the node table. Other counts still read it."""
    store_nodes([Dict({'a': number, 'b': -number}) for number in range(10)])
    storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    storage.add_json_index(EntityType.NODE, 'attributes', ['b'])

    def count_sql(filters: dict[str, object]) -> tuple[str, int]:
        query = QueryBuilder().append(Dict, filters=filters)
        statement = storage._queries.compiler().count(query._query()).statement  # type: ignore[attr-defined]
        return str(statement), query.count()

    sql, counted = count_sql({'attributes.a': {'>': 4}, 'attributes.b': {'in': [-5, -6, -9]}})
    assert 'db_dbnode' not in sql and counted == 3, sql
    sql, counted = count_sql({'attributes.a': {'>': 4}, 'label': ''})
    assert 'db_dbnode' in sql and counted == 5
    sql, counted = count_sql({'attributes.a': {'!>': 4}})  # a negation keeps nodes without a number: not covered
    assert 'db_dbnode' in sql and counted == 5


def test_queries_of_one_shape_share_a_statement(storage: EntityStorage, dicts: list[Dict]) -> None:
    """A query run again with other values reuses the statement made for the first (the values are parameters),
    and each run gives the rows of its own values: on plain columns, on JSON paths, and in counts, with and
    without a declared index."""
    numbers: list[object] = [*range(10), 2.5]
    kept = storage._queries.statements  # type: ignore[attr-defined]

    def check() -> None:
        before = len(kept)
        for threshold in (-1, 3, 5, 8, 20):
            expected = sorted(f'a={number!r}' for number in numbers if number > threshold)  # type: ignore[operator]
            assert labels({'attributes.a': {'>': threshold}}) == expected
            assert QueryBuilder().append(Dict, filters={'attributes.a': {'>': threshold}}).count() == len(expected)
        for node in dicts[:5]:
            found = QueryBuilder().append(Node, filters={'id': node.pk}, project='label').all(flat=True)
            assert found == [node.label]
            assert labels({'label': node.label}) == [node.label]
        assert labels({'attributes.a': 'x'}) == ["a='x'"]
        assert labels({'attributes.a': 7.0}) == ['a=7']  # a float is another shape: 7.0 finds 7
        assert len(kept) - before == 6  # a range's rows and count, id, label, JSON == with a str and with a float

    check()
    storage.add_json_index(EntityType.NODE, 'attributes', ['a'])
    assert not kept  # the statements made without the index are forgotten
    check()


@pytest.mark.parametrize(
    ('entity', 'field', 'path', 'match'),
    [
        ('node', 'label', ['a'], "node has no JSON field 'label'"),
        ('node', 'attributes', [], 'give non-empty keys'),
        ('node', 'attributes', ['a"b'], 'give non-empty keys'),
        ('spaceship', 'attributes', ['a'], "Unknown entity 'spaceship'"),
    ],
)
def test_bad_json_indexes_are_refused(
    storage: EntityStorage, entity: str, field: str, path: list[str], match: str
) -> None:
    """A path that names no JSON field, or cannot be queried, is refused with a clear error and nothing is made."""
    with pytest.raises(QueryError, match=match):
        storage.add_json_index(entity, field, path)  # type: ignore[arg-type]
    assert storage.list_json_indexes() == []


def test_iterall_streams_and_allows_writes_in_the_loop(storage: EntityStorage, dicts: list[Dict]) -> None:
    """Iterating in batches reads lazily from one snapshot while the loop changes extras of the rows it reads."""
    query = QueryBuilder().append(Dict, tag='d', project='*').order_by({'d': 'id'})
    seen = []
    for (node,) in query.iterall(batch_size=3):
        node.base.extras.set('seen', True)
        seen.append(node.pk)
    assert seen == sorted(node.pk for node in dicts)
    marked = QueryBuilder().append(Dict, filters={'extras.seen': True}).count()
    assert marked == len(dicts)


def test_first_one_and_empty_queries(storage: EntityStorage, dicts: list[Dict]) -> None:
    """first() gives None when nothing matches, one() raises for none and for several."""
    nothing = QueryBuilder().append(Dict, filters={'label': 'nobody'})
    assert nothing.first() is None
    with pytest.raises(NotExistentError):
        nothing.one()
    several = QueryBuilder().append(Dict, filters={'attributes.a': {'<': 3}})
    with pytest.raises(Exception, match='more than one'):
        several.one()
    only = QueryBuilder().append(Dict, filters={'attributes.a': 'x'}, project='label')
    assert only.one() == ["a='x'"]
    assert only.first(flat=True) == "a='x'"


def test_sql_of_a_hostile_value_is_a_parameter(storage: EntityStorage, dicts: list[Dict]) -> None:
    """A value made of SQL stays a value: the query finds nothing, the inline SQL quotes it, the table is intact."""
    hostile = "x'; DELETE FROM db_dbnode; --"
    query = QueryBuilder().append(Dict, filters={'label': hostile, 'attributes.a': hostile})
    assert query.all() == []
    assert hostile not in query.as_sql()
    assert QueryBuilder().append(Node).count() == len(dicts) + 1


@pytest.fixture
def workflow_graph(storage: EntityStorage) -> dict[str, Node]:
    """A workflow calling a calculation with an input and an output, the workflow returning the output."""
    data = Int(1, label='data')
    workflow = WorkChainNode(label='workflow')
    workflow.base.links.add_incoming(data, LinkType.INPUT_WORK, 'x')
    calculation = CalcJobNode(label='calculation')
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'step')
    output = Str('result', label='output')
    output.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    output.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    other = Int(2, label='unrelated')
    store_nodes([data, workflow, calculation, output, other])
    return {node.label: node for node in (data, workflow, calculation, output, other)}


def _labels_of(pks: set[int], graph: dict[str, Node]) -> set[str]:
    return {label for label, node in graph.items() if node.pk in pks}


def test_export_closure_follows_the_export_rules(storage: EntityStorage, workflow_graph: dict[str, Node]) -> None:
    """Exporting the output takes its creator, the creator's inputs and the calling workflow, as aiida-core does."""
    output = workflow_graph['output']
    assert output.pk is not None
    closure = get_nodes_export([output.pk])
    assert _labels_of(closure, workflow_graph) == {'output', 'calculation', 'data', 'workflow'}
    only_output = get_nodes_export([output.pk], create_backward=False)
    assert _labels_of(only_output, workflow_graph) == {'output'}
    data = workflow_graph['data']
    assert data.pk is not None
    assert _labels_of(get_nodes_export([data.pk]), workflow_graph) == {'data'}
    assert _labels_of(get_nodes_export([data.pk], input_calc_forward=True), workflow_graph) == {
        'data',
        'calculation',
        'output',
        'workflow',
    }


def test_export_rules_are_aiida_cores() -> None:
    """The EXPORT rules follow, fix and let switch what aiida-core's do."""
    followed = {name for name, rule in EXPORT_RULES.items() if rule.default}
    assert followed == {
        'input_calc_backward',
        'create_forward',
        'create_backward',
        'return_forward',
        'input_work_backward',
        'call_calc_forward',
        'call_calc_backward',
        'call_work_forward',
        'call_work_backward',
    }
    toggleable = {name for name, rule in EXPORT_RULES.items() if rule.toggleable}
    assert toggleable == {
        'input_calc_forward',
        'create_backward',
        'return_backward',
        'input_work_forward',
        'call_calc_backward',
        'call_work_backward',
    }


def test_export_refuses_fixed_rules_and_missing_nodes(storage: EntityStorage, workflow_graph: dict[str, Node]) -> None:
    """A fixed rule cannot be switched, and a pk with no node is named."""
    output = workflow_graph['output']
    assert output.pk is not None
    with pytest.raises(ValueError, match="export rule 'create_forward' is fixed to True"):
        get_nodes_export([output.pk], create_forward=False)
    with pytest.raises(NotExistentError, match='No node with pk 999999'):
        get_nodes_export([999_999])


def test_ancestors_with_extended_link_types(storage: EntityStorage, workflow_graph: dict[str, Node]) -> None:
    """Data provenance does not see the workflow; link_types='all' does, and max_depth bounds the steps."""
    query = QueryBuilder().append(Str, tag='o', filters={'label': 'output'})
    query.append(Node, with_descendants='o', project='label')
    assert sorted(query.all(flat=True)) == ['calculation', 'data']
    extended = QueryBuilder().append(Str, tag='o', filters={'label': 'output'})
    extended.append(Node, with_descendants='o', project='label', link_types='all', edge_project='depth')
    assert sorted(map(tuple, extended.all())) == [('calculation', 1), ('data', 2), ('workflow', 1)]
    near = QueryBuilder().append(Str, tag='o', filters={'label': 'output'})
    near.append(Data, with_descendants='o', project='label', link_types='all', max_depth=1)
    assert near.all() == []


# -- the command line -------------------------------------------------------------------------------------------


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in this process."""
    return CliRunner().invoke(cli, list(args), input=input)


def one_error(result: Result) -> str:
    """Check that a command failed with exit code 1 and one line, and return it."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def query_file(tmp_path: Path) -> Iterator[Path]:
    """A query file asking for the labels and ``a`` of Dict nodes with ``a`` above 7, by label."""
    path = tmp_path / 'query.json'
    document = {
        'path': [{'tag': 'd', 'entity_type': 'data.core.dict.Dict.'}],
        'filters': {'d': {'attributes.a': {'>': 7}}},
        'project': {'d': ['label', 'attributes.a']},
        'order_by': [{'d': ['label']}],
    }
    path.write_text(json.dumps(document))
    yield path


def test_query_command(storage: EntityStorage, dicts: list[Dict], query_file: Path) -> None:
    """provstore query prints a table, JSON rows, a count, the SQL and the plan of a query file or stdin."""
    table = invoke('query', str(query_file))
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == ['d.label', 'd.attributes.a']
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ['a=8', 'a=9']
    rows = json.loads(invoke('query', '--json', str(query_file)).stdout)
    assert rows == [{'d': {'label': 'a=8', 'attributes.a': 8}}, {'d': {'label': 'a=9', 'attributes.a': 9}}]
    assert invoke('query', '--count', '-', input=query_file.read_text()).stdout.strip() == '2'
    assert 'db_dbnode' in invoke('query', '--sql', str(query_file)).stdout
    assert invoke('query', '--explain', str(query_file)).exit_code == 0
    limited = json.loads(invoke('query', '--json', '--limit', '1', str(query_file)).stdout)
    assert len(limited) == 1


@pytest.mark.parametrize(
    ('document', 'match'),
    [
        ('not json', 'The query is not valid JSON'),
        ('{"path": 3}', 'A serialised query is a dict with a "path" list'),
        ('{"path": [{"tag": "d", "entity_type": "node"}], "filters": {"d": {"label": {"~": 1}}}}',
         "unknown operator '~'"),
        ('{"path": [{"tag": "d", "entity_type": "node"}], "filters": {"d": {"colour": 1}}}', "no field 'colour'"),
        ('{"path": [{"tag": "d", "entity_type": "node"}, '
         '{"tag": "e", "entity_type": "node", "with_incoming": "x"}]}', "no entity has the tag 'x'"),
    ],
)  # fmt: skip
def test_query_command_refuses_bad_queries(storage: EntityStorage, document: str, match: str) -> None:
    """A query that is not JSON, not a query, or names what does not exist fails with one line naming it."""
    assert match in one_error(invoke('query', '-', input=document))


def test_storage_index_commands(storage: EntityStorage) -> None:
    """storage index add, list (table and JSON) and drop."""
    assert invoke('storage', 'index', 'list').stdout.strip() == 'No JSON path has an index.'
    added = invoke('storage', 'index', 'add', 'attributes.process_state')
    assert added.exit_code == 0, added.output
    assert 'ix_provstore_node_attributes_process_state' in added.stdout
    assert json.loads(invoke('storage', 'index', 'list', '--json').stdout) == [
        {'entity': 'node', 'path': 'attributes.process_state'}
    ]
    assert invoke('storage', 'index', 'drop', 'attributes.process_state').exit_code == 0
    assert json.loads(invoke('storage', 'index', 'list', '--json').stdout) == []
    refused = invoke('storage', 'index', 'add', 'label.x')
    assert "node has no JSON field 'label'" in one_error(refused)
    assert invoke('storage', 'index', 'add', 'attributes').exit_code == 2  # a usage error: not a path


def test_node_list_filters_through_the_querybuilder(storage: EntityStorage, dicts: list[Dict]) -> None:
    """node list --type and --label select through the QueryBuilder, newest first."""
    rows = json.loads(invoke('node', 'list', '--type', 'Dict', '--json', '--limit', '3').stdout)
    newest = sorted((node.pk for node in dicts), reverse=True)[:3]
    assert [row['pk'] for row in rows] == newest
    only = json.loads(invoke('node', 'list', '--label', 'int', '--json').stdout)
    assert [row['node_type'] for row in only] == ['data.core.int.Int.']


def test_entities_as_filter_values(storage: EntityStorage, dicts: list[Dict]) -> None:
    """A stored entity stands for its pk in a filter; an unstored one is refused, naming it."""
    first = dicts[0]
    query = QueryBuilder().append(Dict, filters={'id': first}, project='id')
    assert query.one() == [first.pk]
    assert QueryBuilder.from_dict(query.as_dict()).one() == [first.pk]
    with pytest.raises(QueryError, match='Cannot filter by the unstored'):
        QueryBuilder().append(Dict, filters={'id': Dict()})
