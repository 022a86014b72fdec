"""The cases of the QueryBuilder conformance contract: one table of queries with their expected results.

The graph (:mod:`provstore.testing.query_graph`) is stored once per storage. Every case of :data:`CASES`
builds a query, reads its result in one way (rows, count, first, one, dict, ...) and compares it with an
expectation written by hand from the graph's definition and the QueryBuilder's documented behaviour:

- a ``set``: the rows in any order, each exactly once (so a duplicate fails);
- a :class:`Bag`: the rows in any order, duplicates counted;
- a ``list``: the rows in this order;
- anything else: the value itself.

Values are compared through their JSON text, so ``1``, ``1.0`` and ``true`` differ; ORM entities compare by
:func:`~provstore.testing.query_graph.identity`. A case with ``raises`` must raise that exception (``match`` a regex
of its message) while it is built or read. Each case also runs through ``as_dict()`` / ``from_dict()`` and must give
the same.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provstore.orm import (
    AuthInfo,
    Bool,
    CalcFunctionNode,
    CalcJobNode,
    CalculationNode,
    Comment,
    Computer,
    Data,
    Dict,
    Entity,
    Float,
    FolderData,
    Group,
    Int,
    List,
    Log,
    MultipleObjectsError,
    Node,
    NotExistentError,
    ProcessNode,
    QueryBuilder,
    QueryError,
    SinglefileData,
    Str,
    User,
    WorkChainNode,
    WorkflowNode,
)
from provstore.testing.profiles import CONTRACT_EMAIL as EMAIL
from provstore.testing.query_graph import (
    ALICE,
    ALICE_NODES,
    BIG,
    DICTS,
    LISTS,
    LOG_TIME,
    NODE_LABELS,
    PLAIN_DATA,
    VALUES,
    QueryGraph,
    identity,
)

Build = Callable[[QueryBuilder, QueryGraph], object]
Reader = Callable[[QueryBuilder, QueryGraph], Any]

N_NODES = len(NODE_LABELS)
INTS = {label for label in VALUES if label.startswith('int-')}
FLOATS = {label for label in VALUES if label.startswith('float-')}
STRS = {label for label in VALUES if label.startswith('str-')}
ALL_DICTS = set(DICTS)
ALL_LISTS = set(LISTS)
INT_ORDER = ['int-1', 'int-2', 'int-5', 'int-big', 'int-neg']
"""The Int labels in code point order."""


class Bag(list[Any]):
    """Expected rows in any order, duplicates counted."""


def labels(*names: str) -> set[str]:
    """Return the set of node labels ``names``; ``dict-x`` may be written ``@x`` (``labels('@a', '@b')``)."""
    return {f'dict-{name[1:]}' if name.startswith('@') else name for name in names}


# -- reading results -----------------------------------------------------------------------------------------------


def normal(value: Any) -> Any:
    """Return ``value`` with entities replaced by their identity, tuples by lists, datetimes by ISO text."""
    if isinstance(value, Entity):
        return identity(value)
    if isinstance(value, (list, tuple)):
        return [normal(item) for item in value]
    if isinstance(value, dict):
        return {key: normal(item) for key, item in value.items()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def canon(value: Any) -> str:
    """Return the JSON text of ``normal(value)``: ``1``, ``1.0`` and ``true`` stay different."""
    return json.dumps(normal(value), sort_keys=True, ensure_ascii=False, default=repr)


def flat_rows(rows: list[Any]) -> list[Any]:
    """Return ``rows`` with each row of one value replaced by that value."""
    return [row[0] if len(row) == 1 else list(row) for row in rows]


def rows(qb: QueryBuilder, graph: QueryGraph) -> list[Any]:
    """``qb.all()``, a row of one projection as its value."""
    return flat_rows(qb.all())


def count(qb: QueryBuilder, graph: QueryGraph) -> int:
    """``qb.count()``."""
    return qb.count()


def first(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.first()``."""
    return qb.first()


def first_flat(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.first(flat=True)``."""
    return qb.first(flat=True)


def one(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.one()``."""
    return qb.one()


def flat(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.all(flat=True)``."""
    return qb.all(flat=True)


def dicts(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.dict()``."""
    return qb.dict()


def iterdicts(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``list(qb.iterdict(batch_size=2))``."""
    return list(qb.iterdict(batch_size=2))


def iterall(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``list(qb.iterall(batch_size=2))``, a row of one projection as its value."""
    return flat_rows(list(qb.iterall(batch_size=2)))


def all_batched(qb: QueryBuilder, graph: QueryGraph) -> Any:
    """``qb.all(batch_size=2)``, a row of one projection as its value."""
    return flat_rows(qb.all(batch_size=2))


def pick(*paths: tuple[str, str], pks: tuple[int, ...] = ()) -> Reader:
    """Read ``qb.dict()`` as tuples of ``row[tag][key]`` for each ``(tag, key)``; positions in ``pks`` are node pks,
    given as labels."""

    def read(qb: QueryBuilder, graph: QueryGraph) -> list[Any]:
        result = []
        for row in qb.dict():
            values = [row[tag][key] for tag, key in paths]
            values = [graph.node_label(value) if index in pks else value for index, value in enumerate(values)]
            result.append(values[0] if len(values) == 1 else values)
        return result

    return read


# -- the table -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One query of the table: how to build it, how to read it, what it must give (or raise)."""

    id: str
    build: Build
    expect: Any = None
    read: Reader = rows
    raises: type[BaseException] | None = None
    match: str | None = None
    init: dict[str, Any] = field(default_factory=dict)


Filters = dict[str, Any] | Callable[[QueryGraph], dict[str, Any]]


def _resolve(filters: Filters | None, graph: QueryGraph) -> dict[str, Any] | None:
    return filters(graph) if callable(filters) else filters


def nodes(filters: Filters | None, cls: Any = Node, project: Any = 'label', **kwargs: Any) -> Build:
    """Build: ``cls`` tagged ``n`` with ``filters``, projecting ``project``."""

    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(cls, tag='n', filters=_resolve(filters, graph), project=project, **kwargs)

    return build


def ofnode(label: str, relationship: str, cls: Any = Node, project: Any = 'label', **kwargs: Any) -> Build:
    """Build: the node ``label`` tagged ``t``, then ``cls`` tagged ``n`` joined by ``relationship='t'``."""

    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(Node, tag='t', filters={'label': label})
        qb.append(cls, tag='n', project=project, **{relationship: 't', **kwargs})

    return build


def case(id: str, filters: Filters | None, expect: Any, cls: Any = Node, **kwargs: Any) -> Case:
    """A case on nodes of ``cls`` with ``filters``, comparing their labels with ``expect``."""
    return Case(id, nodes(filters, cls, **kwargs), expect)


def counted(id: str, filters: Filters | None, expect: int, cls: Any = Node, **kwargs: Any) -> Case:
    """A case on nodes of ``cls`` with ``filters``, comparing ``qb.count()`` with ``expect``."""
    return Case(id, nodes(filters, cls, **kwargs), expect, read=count)


def refused(id: str, build: Build, match: str) -> Case:
    """A case that must raise :class:`QueryError` with a message matching ``match``."""
    return Case(id, build, raises=QueryError, match=match)


def _ordered(
    cls: Any, order: Any, project: Any = 'label', filters: Filters | None = None, **kwargs: Any
) -> Callable[[QueryBuilder, QueryGraph], None]:
    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(cls, tag='n', filters=_resolve(filters, graph), project=project, **kwargs)
        qb.order_by({'n': order})

    return build


def _limited(limit: int | None, offset: int | None) -> Build:
    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(Int, tag='n', project='label')
        qb.order_by({'n': 'label'})
        if limit is not None:
            qb.limit(limit)
        if offset is not None:
            qb.offset(offset)

    return build


def _calcjob_inputs(distinct: bool) -> Build:
    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(CalcJobNode, tag='c')
        qb.append(Data, tag='n', with_outgoing='c', project='label')
        if distinct:
            qb.distinct()

    return build


def _two(first_cls: Any, first_filters: Filters | None, relationship: str, second_cls: Any, **kwargs: Any) -> Build:
    """Build: ``first_cls`` tagged ``a`` projecting its identity field, then ``second_cls`` tagged ``b``."""
    project_a = kwargs.pop('project_a', 'label')
    project_b = kwargs.pop('project_b', 'label')

    def build(qb: QueryBuilder, graph: QueryGraph) -> None:
        qb.append(first_cls, tag='a', filters=_resolve(first_filters, graph), project=project_a)
        qb.append(second_cls, tag='b', project=project_b, **{relationship: 'a', **kwargs})

    return build


def _nested(depth: int) -> dict[str, Any]:
    """Return filters nesting ``and`` and ``or`` ``depth`` deep, matching exactly ``int-1``."""
    filters: dict[str, Any] = {'label': 'int-1'}
    for level in range(depth):
        if level % 2:
            filters = {'or': [filters, {'label': f'no-such-label-{level}'}]}
        else:
            filters = {'and': [filters, {'id': {'>': 0}}]}
    return filters


def _depth_of_descendants(qb: QueryBuilder, graph: QueryGraph) -> None:
    qb.append(Int, tag='s', filters={'label': 'int-2'})
    qb.append(Node, tag='d', with_ancestors='s', edge_tag='e', edge_project=['depth'], project='label')


def _depth_of_ancestors(qb: QueryBuilder, graph: QueryGraph) -> None:
    qb.append(List, tag='s', filters={'label': 'list-3'})
    qb.append(Node, tag='d', with_descendants='s', edge_tag='e', edge_project='depth', project='label')


def _two_sources(qb: QueryBuilder, graph: QueryGraph) -> None:
    qb.append(Int, tag='s', filters={'label': {'in': ['int-1', 'int-2']}}, project='label')
    qb.append(Node, tag='d', with_ancestors='s', project='label')


def _groups_with_members(qb: QueryBuilder, graph: QueryGraph) -> None:
    qb.append(Group, tag='g', project='label')
    qb.append(Node, tag='n', with_group='g', outerjoin=True, project='label')


def _workchains_with_outputs(qb: QueryBuilder, graph: QueryGraph) -> None:
    qb.append(WorkChainNode, tag='w', project='label')
    qb.append(Node, tag='n', with_incoming='w', outerjoin=True, project='label')


def _star_all_columns(qb: QueryBuilder, graph: QueryGraph) -> Any:
    row = qb.dict()
    keys = ('id', 'uuid', 'label', 'node_type', 'process_type', 'attributes', 'extras', 'user_id', 'dbcomputer_id')
    return [{key: item['n'][key] for key in keys} for item in row]


def _datetime_text(qb: QueryBuilder, graph: QueryGraph) -> Any:
    value = qb.one()[0]
    assert isinstance(value, datetime.datetime), f'cast d gave {value!r}'
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.isoformat()


def _type_of_ctime(qb: QueryBuilder, graph: QueryGraph) -> Any:
    return [type(value).__name__ for value in qb.all(flat=True)]


CASES: list[Case] = [
    # -- columns of nodes: every operator, negations, and/or ----------------------------------------------------------
    case('label_eq', {'label': 'int-1'}, {'int-1'}),
    case('label_eq_operator', {'label': {'==': 'int-1'}}, {'int-1'}),
    case('label_not_eq', {'label': {'!==': 'int-1'}}, INTS - {'int-1'}, cls=Int),
    case('label_in', {'label': {'in': ['int-1', 'dict-a', 'no-such-label']}}, labels('int-1', '@a')),
    case('label_not_in', {'label': {'!in': ['int-1', 'int-2']}}, labels('int-5', 'int-neg', 'int-big'), cls=Int),
    case('label_in_empty_list', {'label': {'in': []}}, set()),
    counted('label_not_in_empty_list', {'label': {'!in': []}}, N_NODES),
    case('label_like_prefix', {'label': {'like': 'int-%'}}, INTS),
    case('label_like_is_case_sensitive', {'label': {'like': 'mixed%'}}, {'mixed_case'}),
    case('label_ilike', {'label': {'ilike': 'MIXED%'}}, {'Mixed_Case', 'mixed_case'}),
    case('label_ilike_suffix', {'label': {'ilike': '%CASE'}}, {'Mixed_Case', 'mixed_case'}),
    case('label_like_underscore_wildcard', {'label': {'like': 'under_score'}}, {'under_score', 'underXscore'}),
    case('label_like_escaped_underscore', {'label': {'like': 'under\\_score'}}, {'under_score'}),
    case('label_like_percent_wildcard', {'label': {'like': '50%off'}}, {'50%off', '50Xoff'}),
    case('label_like_escaped_percent', {'label': {'like': '50\\%off'}}, {'50%off'}),
    case(
        'label_not_like',
        {'label': {'!like': '%\\_%'}},
        {'50%off', '50Xoff', 'underXscore'},
        cls=Data,
        subclassing=False,
    ),
    case(
        'label_not_ilike',
        {'label': {'!ilike': 'MIXED%'}},
        {'50%off', '50Xoff', 'under_score', 'underXscore'},
        cls=Data,
        subclassing=False,
    ),
    case(
        'label_gt_by_code_point',
        {'label': {'>': 'a'}},
        {'mixed_case', 'under_score', 'underXscore'},
        cls=Data,
        subclassing=False,
    ),
    case(
        'label_le_by_code_point',
        {'label': {'<=': 'Mixed_Case'}},
        {'50%off', '50Xoff', 'Mixed_Case'},
        cls=Data,
        subclassing=False,
    ),
    case('label_not_ge', {'label': {'!>=': 'int-5'}}, {'int-1', 'int-2'}, cls=Int),
    case('node_type_eq', {'node_type': 'data.core.int.Int.'}, INTS),
    case(
        'node_type_like',
        {'node_type': {'like': 'process.calculation.%'}},
        labels('calcjob-1', 'calcjob-2', 'calcfunc-1', 'calcfunc-2'),
    ),
    counted('process_type_is_null', {'process_type': None}, N_NODES - 6),
    case(
        'process_type_is_not_null',
        {'process_type': {'!==': None}},
        labels('wc-top', 'wf-sub', 'calcjob-1', 'calcfunc-1', 'calcjob-2', 'wc-idle'),
    ),
    case('process_type_null_on_processes', {'process_type': None}, {'calcfunc-2'}, cls=ProcessNode),
    case(
        'process_type_like',
        {'process_type': {'like': 'provstore.workflows:%'}},
        labels('wc-top', 'wf-sub', 'wc-idle'),
    ),
    case('process_type_in', {'process_type': {'in': ['provstore.calculations:job']}}, labels('calcjob-1', 'calcjob-2')),
    case('id_eq', lambda g: {'id': g.pk('dict-c')}, {'dict-c'}),
    case('pk_alias', lambda g: {'pk': g.pk('dict-c')}, {'dict-c'}),
    case('id_in', lambda g: {'id': {'in': [g.pk('int-1'), g.pk('list-3')]}}, labels('int-1', 'list-3')),
    case(
        'id_or_per_field',
        lambda g: {'id': {'or': [{'==': g.pk('int-1')}, {'==': g.pk('int-big')}]}},
        labels('int-1', 'int-big'),
    ),
    case(
        'id_and_per_field',
        lambda g: {'id': {'and': [{'>=': g.pk('dict-a')}, {'<=': g.pk('dict-a')}]}},
        {'dict-a'},
    ),
    Case(
        'id_gt',
        nodes(lambda g: {'id': {'>': g.pk('int-2')}}, Int),
        lambda g: {label for label in INTS if g.pk(label) > g.pk('int-2')},
    ),
    Case(
        'id_not_lt',
        nodes(lambda g: {'id': {'!<': g.pk('int-5')}}, Int),
        lambda g: {label for label in INTS if g.pk(label) >= g.pk('int-5')},
    ),
    case('uuid_eq', lambda g: {'uuid': g.uuids['int-5']}, {'int-5'}),
    case('uuid_in', lambda g: {'uuid': {'in': [g.uuids['int-5'], g.uuids['dict-j']]}}, labels('int-5', '@j')),
    case(
        'description_like',
        {'description': {'like': 'node calc%'}},
        labels('calcjob-1', 'calcjob-2', 'calcfunc-1', 'calcfunc-2'),
    ),
    counted('ctime_after_2000', {'ctime': {'>': datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)}}, N_NODES),
    counted('ctime_before_2000', {'ctime': {'<': datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)}}, 0),
    case('user_id', lambda g: {'user_id': g.users[ALICE]}, ALICE_NODES),
    case('user_id_not', lambda g: {'user_id': {'!==': g.users[EMAIL]}}, ALICE_NODES),
    case('dbcomputer_id', lambda g: {'dbcomputer_id': g.computers['hpc-Alpha']}, labels('calcjob-1', 'file-1')),
    counted('dbcomputer_id_is_null', {'dbcomputer_id': None}, N_NODES - 3),
    case(
        'several_keys_and',
        {'label': {'like': 'int-%'}, 'attributes.value': {'>': 1}},
        labels('int-2', 'int-5', 'int-big'),
    ),
    case('top_level_or', {'or': [{'label': 'int-1'}, {'label': 'dict-a'}]}, labels('int-1', '@a')),
    case(
        'top_level_and',
        {'and': [{'label': {'like': 'dict-%'}}, {'attributes.n': {'>': 2}}]},
        labels('@a', '@b', '@c'),
    ),
    case(
        'nested_or_of_ands',
        {
            'or': [
                {'and': [{'node_type': 'data.core.int.Int.'}, {'attributes.value': {'<': 0}}]},
                {'and': [{'node_type': 'data.core.float.Float.'}, {'attributes.value': {'<': 0}}]},
            ]
        },
        labels('int-neg', 'float-neg'),
    ),
    case('or_of_a_filter_and_its_negation', {'or': [{'label': {'!==': 'int-1'}}, {'label': 'int-1'}]}, INTS, cls=Int),
    case('and_of_a_filter_and_its_negation', {'and': [{'label': {'!==': 'int-1'}}, {'label': 'int-1'}]}, set()),
    case(
        'or_per_field_mixed_operators',
        {'label': {'or': [{'like': 'list-%'}, {'==': 'int-5'}]}},
        ALL_LISTS | {'int-5'},
    ),
    case(
        'and_per_field',
        {'label': {'and': [{'like': 'dict-%'}, {'!in': ['dict-a', 'dict-b']}]}},
        ALL_DICTS - labels('@a', '@b'),
    ),
    case('deep_and_or_120', _nested(120), {'int-1'}),
    refused('deep_and_or_200', nodes(_nested(200)), match='nest deeper than 128 levels'),
    # -- JSON values of the single-value nodes: typed comparisons -------------------------------------------------
    case('value_eq_int_matches_float', {'attributes.value': 1}, labels('int-1', 'float-1.0')),
    case('value_eq_float_matches_int', {'attributes.value': 1.0}, labels('int-1', 'float-1.0')),
    case('value_eq_true_is_not_one', {'attributes.value': True}, {'bool-true'}),
    case('value_eq_false_is_not_zero', {'attributes.value': False}, {'bool-false'}),
    case('value_eq_zero', {'attributes.value': 0}, set()),
    case('value_eq_string_one', {'attributes.value': '1'}, {'str-1'}),
    case('value_gt', {'attributes.value': {'>': 1}}, labels('int-2', 'int-5', 'int-big', 'float-2.5')),
    case(
        'value_ge',
        {'attributes.value': {'>=': 1}},
        labels('int-1', 'int-2', 'int-5', 'int-big', 'float-1.0', 'float-2.5'),
    ),
    case('value_lt_zero', {'attributes.value': {'<': 0}}, labels('int-neg', 'float-neg')),
    case('value_le', {'attributes.value': {'<=': -0.5}}, labels('int-neg', 'float-neg')),
    case('value_gt_beyond_32_bits', {'attributes.value': {'>': 999_999_999_999}}, {'int-big'}),
    case('value_eq_beyond_32_bits', {'attributes.value': BIG}, {'int-big'}),
    case('value_gt_string', {'attributes.value': {'>': 'h'}}, labels('str-hello', 'str-quote')),
    counted('value_not_eq', {'attributes.value': {'!==': 1}}, N_NODES - 2),
    counted('value_not_gt', {'attributes.value': {'!>': 1}}, N_NODES - 4),
    case('value_not_lt_floats', {'attributes.value': {'!<': 0}}, labels('float-1.0', 'float-2.5'), cls=Float),
    case('value_not_eq_true_bools', {'attributes.value': {'!==': True}}, {'bool-false'}, cls=Bool),
    case(
        'value_in_is_typed',
        {'attributes.value': {'in': [1, 'hello', True]}},
        labels('int-1', 'float-1.0', 'str-hello', 'bool-true'),
    ),
    case('value_in_strings_only', {'attributes.value': {'in': ['1', '2']}}, {'str-1'}),
    case('value_in_numbers_only', {'attributes.value': {'in': [2, 2.5, -3]}}, labels('int-2', 'float-2.5', 'int-neg')),
    counted('value_not_in', {'attributes.value': {'!in': [1, 'hello', True]}}, N_NODES - 4),
    case('value_like', {'attributes.value': {'like': 'he%'}}, {'str-hello'}),
    case('value_like_matches_only_strings', {'attributes.value': {'like': '1%'}}, {'str-1'}),
    case('value_ilike', {'attributes.value': {'ilike': 'HELLO'}}, {'str-hello'}),
    case('value_not_like', {'attributes.value': {'!like': '%l%'}}, STRS - {'str-hello'}, cls=Str),
    case('value_unicode_eq', {'attributes.value': 'Grüße ☃ 日本'}, {'str-unicode'}),
    case('value_unicode_like', {'attributes.value': {'like': '%☃%'}}, {'str-unicode'}),
    case('value_quotes_eq', {'attributes.value': 'it\'s "quoted"'}, {'str-quote'}),
    case('value_quotes_like', {'attributes.value': {'like': 'it\'s "%'}}, {'str-quote'}),
    case('value_empty_string', {'attributes.value': ''}, {'str-empty'}),
    case('value_of_type_string', {'attributes.value': {'of_type': 'string'}}, STRS),
    case('value_of_type_number', {'attributes.value': {'of_type': 'number'}}, INTS | FLOATS),
    case('value_of_type_boolean', {'attributes.value': {'of_type': 'boolean'}}, labels('bool-true', 'bool-false')),
    counted('value_not_of_type_number', {'attributes.value': {'!of_type': 'number'}}, N_NODES - 8),
    # -- JSON attributes of the Dict nodes ------------------------------------------------------------------------
    case('n_eq_3', {'attributes.n': 3}, {'dict-a'}),
    case('n_eq_string_3', {'attributes.n': '3'}, {'dict-d'}),
    case('n_eq_1_matches_1_0', {'attributes.n': 1}, labels('@h', '@i')),
    case('n_eq_true', {'attributes.n': True}, {'dict-e'}),
    case('n_is_json_null_not_missing', {'attributes.n': None}, {'dict-f'}),
    case('n_gt_2', {'attributes.n': {'>': 2}}, labels('@a', '@b', '@c')),
    case('n_gt_2_5', {'attributes.n': {'>': 2.5}}, labels('@a', '@c')),
    case('n_ge_2_5', {'attributes.n': {'>=': 2.5}}, labels('@a', '@b', '@c')),
    case('n_lt_3', {'attributes.n': {'<': 3}}, labels('@b', '@h', '@i')),
    case('n_le_1', {'attributes.n': {'<=': 1}}, labels('@h', '@i')),
    case('n_not_eq_3', {'attributes.n': {'!==': 3}}, ALL_DICTS - {'dict-a'}, cls=Dict),
    case('n_not_gt_2', {'attributes.n': {'!>': 2}}, ALL_DICTS - labels('@a', '@b', '@c'), cls=Dict),
    case('n_not_le_1', {'attributes.n': {'!<=': 1}}, ALL_DICTS - labels('@h', '@i'), cls=Dict),
    case('n_in_typed', {'attributes.n': {'in': [3, '1', True]}}, labels('@a', '@j', '@e')),
    case('n_in_one', {'attributes.n': {'in': [1]}}, labels('@h', '@i')),
    case('n_not_in_typed', {'attributes.n': {'!in': [3, '1', True]}}, ALL_DICTS - labels('@a', '@j', '@e'), cls=Dict),
    case('n_of_type_number', {'attributes.n': {'of_type': 'number'}}, labels('@a', '@b', '@c', '@h', '@i')),
    case('n_of_type_string', {'attributes.n': {'of_type': 'string'}}, labels('@d', '@j')),
    case('n_of_type_boolean', {'attributes.n': {'of_type': 'boolean'}}, {'dict-e'}),
    # NOTE: as aiida-core's (psql_dos): a missing key counts as null for of_type
    case('n_of_type_null', {'attributes.n': {'of_type': 'null'}}, labels('@f', '@g'), cls=Dict),
    case('n_not_of_type_null', {'attributes.n': {'!of_type': 'null'}}, ALL_DICTS - labels('@f', '@g'), cls=Dict),
    counted('missing_key_of_type_null', {'attributes.no_such_key': {'of_type': 'null'}}, N_NODES),
    counted('missing_key_not_of_type_null', {'attributes.no_such_key': {'!of_type': 'null'}}, 0),
    case(
        'n_not_of_type_number',
        {'attributes.n': {'!of_type': 'number'}},
        labels('@d', '@e', '@f', '@g', '@j'),
        cls=Dict,
    ),
    case('n_not_null', {'attributes.n': {'!==': None}}, ALL_DICTS - {'dict-f'}, cls=Dict),
    case('n_or_per_field_typed', {'attributes.n': {'or': [{'==': 3}, {'==': '1'}]}}, labels('@a', '@j')),
    case('n_and_per_field', {'attributes.n': {'and': [{'>': 1}, {'<': 10}]}}, labels('@a', '@b')),
    case('x_null', {'attributes.x': None}, {'dict-a'}),
    case('x_zero', {'attributes.x': 0}, {'dict-c'}),
    case('x_false', {'attributes.x': False}, {'dict-d'}),
    case('x_string_null', {'attributes.x': 'null'}, {'dict-e'}),
    case('x_not_null', {'attributes.x': {'!==': None}}, ALL_DICTS - {'dict-a'}, cls=Dict),
    case('b_true', {'attributes.b': True}, {'dict-a'}),
    case('b_string_true', {'attributes.b': 'true'}, {'dict-d'}),
    case('b_false', {'attributes.b': False}, {'dict-b'}),
    case('f_eq_2_0_matches_2', {'attributes.f': 2.0}, {'dict-b'}),
    case('attributes_has_key', {'attributes': {'has_key': 'x'}}, labels('@a', '@c', '@d', '@e')),
    case(
        'attributes_not_has_key',
        {'attributes': {'!has_key': 'x'}},
        ALL_DICTS - labels('@a', '@c', '@d', '@e'),
        cls=Dict,
    ),
    case('nested_has_key', {'attributes.nested': {'has_key': 'k'}}, labels('@a', '@b', '@c', '@f')),
    case('nested_path_eq', {'attributes.nested.k': 1}, labels('@a', '@f')),
    case('nested_path_eq_string', {'attributes.nested.k': 'one'}, {'dict-c'}),
    case('deep_path_eq', {'attributes.nested.deep.z': 'zz'}, {'dict-a'}),
    case('nested_path_gt_typed', {'attributes.nested.k': {'>': 1}}, {'dict-b'}),
    case('nested_path_not_eq', {'attributes.nested.k': {'!==': 1}}, ALL_DICTS - labels('@a', '@f'), cls=Dict),
    case('s_like', {'attributes.s': {'like': 'a%'}}, labels('@a', '@j')),
    case('s_ilike', {'attributes.s': {'ilike': 'a%'}}, labels('@a', '@i', '@j')),
    case('s_like_infix', {'attributes.s': {'like': '%an%'}}, labels('@b', '@e')),
    case('s_like_escaped_percent', {'attributes.s': {'like': 'a\\%b'}}, {'dict-j'}),
    case('s_like_underscore_wildcard_case', {'attributes.s': {'like': 'A_B'}}, {'dict-i'}),
    case('s_ilike_underscore_wildcard', {'attributes.s': {'ilike': 'a_b'}}, labels('@i', '@j')),
    case('s_like_ends_with_percent', {'attributes.s': {'like': '%\\%'}}, {'dict-h'}),
    case('s_like_underscore_is_one_unicode_character', {'attributes.s': {'like': '_lan'}}, {'dict-e'}),
    case('s_like_five_characters', {'attributes.s': {'like': '_____'}}, {'dict-a'}),
    case('s_eq_apostrophe', {'attributes.s': "o'clock"}, {'dict-f'}),
    case('s_not_like', {'attributes.s': {'!like': 'a%'}}, ALL_DICTS - labels('@a', '@j'), cls=Dict),
    case('s_gt_by_code_point', {'attributes.s': {'>': 'b'}}, labels('@c', '@d', '@e', '@f')),
    case('s_in', {'attributes.s': {'in': ['apple', 'Banana', 'banana']}}, labels('@a', '@b')),
    case('tags_contains', {'attributes.tags': {'contains': ['red']}}, labels('@a', '@b', '@d')),
    case('tags_contains_two', {'attributes.tags': {'contains': ['red', 'green']}}, labels('@a', '@d')),
    case('tags_contains_numbers', {'attributes.tags': {'contains': [1, 4]}}, {'dict-f'}),
    case(
        'tags_not_contains',
        {'attributes.tags': {'!contains': ['red']}},
        ALL_DICTS - labels('@a', '@b', '@d'),
        cls=Dict,
    ),
    case('tags_of_length_1', {'attributes.tags': {'of_length': 1}}, labels('@b', '@h')),
    case('tags_of_length_0', {'attributes.tags': {'of_length': 0}}, {'dict-c'}),
    case('tags_of_length_3_not_a_string', {'attributes.tags': {'of_length': 3}}, {'dict-d'}),
    case('tags_longer', {'attributes.tags': {'longer': 1}}, labels('@a', '@d', '@f')),
    case('tags_shorter', {'attributes.tags': {'shorter': 2}}, labels('@b', '@c', '@h')),
    case('tags_not_of_length_1', {'attributes.tags': {'!of_length': 1}}, ALL_DICTS - labels('@b', '@h'), cls=Dict),
    case('tags_of_type_array', {'attributes.tags': {'of_type': 'array'}}, labels('@a', '@b', '@c', '@d', '@f', '@h')),
    case('tags_of_type_string', {'attributes.tags': {'of_type': 'string'}}, {'dict-e'}),
    case('nested_of_type_object', {'attributes.nested': {'of_type': 'object'}}, labels('@a', '@b', '@c', '@d', '@f')),
    case('nested_contains', {'attributes.nested': {'contains': {'k': 1}}}, labels('@a', '@f')),
    case('nested_contains_deep', {'attributes.nested': {'contains': {'deep': {'z': 'zz'}}}}, {'dict-a'}),
    case('nested_contains_list_item', {'attributes.nested': {'contains': {'extra': [2]}}}, {'dict-f'}),
    case('attributes_contains', {'attributes': {'contains': {'s': 'apple'}}}, {'dict-a'}),
    case('attributes_contains_empty_object', {'attributes': {'contains': {}}}, ALL_DICTS, cls=Dict),
    case('attributes_special_key_has_key', {'attributes': {'has_key': "it's"}}, {'dict-h'}),
    # -- JSON lists -------------------------------------------------------------------------------------------------
    case('list_of_length_0', {'attributes.list': {'of_length': 0}}, {'list-empty'}),
    case('list_of_length_3', {'attributes.list': {'of_length': 3}}, labels('list-3', 'list-nested')),
    case('list_longer', {'attributes.list': {'longer': 3}}, {'list-5'}),
    case('list_shorter', {'attributes.list': {'shorter': 3}}, {'list-empty'}),
    case('list_not_longer', {'attributes.list': {'!longer': 3}}, ALL_LISTS - {'list-5'}, cls=List),
    case('list_contains', {'attributes.list': {'contains': [1]}}, labels('list-3', 'list-5')),
    case('list_contains_3_matches_3_0', {'attributes.list': {'contains': [3]}}, labels('list-3', 'list-5')),
    case('list_contains_two_types', {'attributes.list': {'contains': [1, 'two']}}, {'list-3'}),
    case('list_contains_empty', {'attributes.list': {'contains': []}}, ALL_LISTS),
    case('list_contains_nested_list', {'attributes.list': {'contains': [[1]]}}, {'list-nested'}),
    case('list_contains_object', {'attributes.list': {'contains': [{'a': 1}]}}, {'list-nested'}),
    case('list_contains_null', {'attributes.list': {'contains': [None]}}, {'list-nested'}),
    case('list_not_contains', {'attributes.list': {'!contains': [1]}}, labels('list-empty', 'list-nested'), cls=List),
    # -- extras -----------------------------------------------------------------------------------------------------
    case('extras_eq', {'extras.tag': 'x'}, labels('int-1', '@a')),
    case('extras_null', {'extras.tag': None}, {'str-hello'}),
    case('extras_has_key', {'extras': {'has_key': 'tag'}}, labels('int-1', 'int-2', '@a', 'str-hello')),
    counted('extras_not_has_key', {'extras': {'!has_key': 'tag'}}, N_NODES - 4),
    case('extras_gt', {'extras.rank': {'>': 1}}, {'int-2'}),
    case('extras_bool', {'extras.flag': True}, {'dict-a'}),
    case('extras_not_eq', {'extras.tag': {'!==': 'x'}}, INTS - {'int-1'}, cls=Int),
    case('extras_in', {'extras.tag': {'in': ['x', 'y']}}, labels('int-1', 'int-2', '@a')),
    # -- process nodes ----------------------------------------------------------------------------------------------
    case(
        'process_state',
        {'attributes.process_state': 'finished'},
        labels('wc-top', 'wf-sub', 'calcjob-1', 'calcfunc-1', 'calcjob-2'),
    ),
    case('exit_status_zero', {'attributes.exit_status': 0}, labels('wc-top', 'wf-sub', 'calcjob-1', 'calcfunc-1')),
    case(
        'exit_status_not_zero',
        {'attributes.exit_status': {'!==': 0}},
        labels('calcjob-2', 'calcfunc-2', 'wc-idle'),
        cls=ProcessNode,
    ),
    # -- classes, subclassing, tuples, entity types -----------------------------------------------------------------
    counted('class_node', None, N_NODES),
    counted('class_data', None, N_NODES - 7, cls=Data),
    case('class_data_exact', None, set(PLAIN_DATA), cls=Data, subclassing=False),
    case('class_int_exact', None, INTS, cls=Int, subclassing=False),
    case('class_process_exact', None, set(), cls=ProcessNode, subclassing=False),
    case(
        'class_calculation',
        None,
        labels('calcjob-1', 'calcjob-2', 'calcfunc-1', 'calcfunc-2'),
        cls=CalculationNode,
    ),
    case('class_workflow', None, labels('wc-top', 'wf-sub', 'wc-idle'), cls=WorkflowNode),
    case('class_singlefile', None, {'file-1'}, cls=SinglefileData),
    case('class_folder', None, {'folder-1'}, cls=FolderData),
    case('class_tuple', None, INTS | FLOATS, cls=(Int, Float)),
    case(
        'class_tuple_processes',
        None,
        labels('calcjob-1', 'calcjob-2', 'wc-top', 'wc-idle'),
        cls=(CalcJobNode, WorkChainNode),
    ),
    case('class_tuple_exact', None, set(PLAIN_DATA) | INTS, cls=(Data, Int), subclassing=False),
    Case('entity_type_node', lambda qb, g: qb.append(entity_type='node', tag='n'), N_NODES, read=count),
    Case(
        'entity_type_node_type',
        lambda qb, g: qb.append(entity_type='data.core.dict.Dict.', tag='n', project='label'),
        ALL_DICTS,
    ),
    Case(
        'entity_type_node_type_subclassing',
        lambda qb, g: qb.append(entity_type='process.workflow.WorkflowNode.', tag='n', project='label'),
        labels('wc-top', 'wf-sub', 'wc-idle'),
    ),
    Case(
        'entity_type_group',
        lambda qb, g: qb.append(entity_type='group', tag='g', project='label'),
        {'grp-core', 'grp-Upf', 'grp-empty'},
    ),
    Case('entity_type_user', lambda qb, g: qb.append(entity_type='user', tag='u', project='email'), {EMAIL, ALICE}),
    Case(
        'entity_type_computer',
        lambda qb, g: qb.append(entity_type='computer', tag='c', project='label'),
        {'hpc-Alpha', 'laptop_b'},
    ),
    Case('entity_type_authinfo', lambda qb, g: qb.append(entity_type='authinfo', tag='a'), 3, read=count),
    Case('entity_type_comment', lambda qb, g: qb.append(entity_type='comment', tag='c'), 3, read=count),
    Case('entity_type_log', lambda qb, g: qb.append(entity_type='log', tag='l'), 4, read=count),
    # -- links: with_incoming / with_outgoing, edge filters and projections -----------------------------------------
    Case('outputs', ofnode('calcjob-1', 'with_incoming'), labels('@b', 'float-2.5')),
    Case('outputs_of_workchain', ofnode('wc-top', 'with_incoming'), labels('wf-sub', 'calcjob-1', '@b', 'str-hello')),
    Case(
        'outputs_edge_type',
        ofnode('wc-top', 'with_incoming', edge_filters={'type': 'return'}),
        labels('@b', 'str-hello'),
    ),
    Case(
        'outputs_edge_type_in',
        ofnode('wc-top', 'with_incoming', edge_filters={'type': {'in': ['call_calc', 'call_work']}}),
        labels('wf-sub', 'calcjob-1'),
    ),
    Case(
        'outputs_edge_type_not',
        ofnode('wc-top', 'with_incoming', edge_filters={'type': {'!==': 'return'}}),
        labels('wf-sub', 'calcjob-1'),
    ),
    Case('outputs_of_data', ofnode('int-1', 'with_incoming'), labels('wc-top', 'wf-sub', 'calcjob-1')),
    Case(
        'outputs_of_data_edge_type',
        ofnode('int-1', 'with_incoming', edge_filters={'type': 'input_work'}),
        labels('wc-top', 'wf-sub'),
    ),
    Case('inputs_of_every_link_type', ofnode('calcjob-1', 'with_outgoing'), labels('int-1', 'int-2', '@a', 'wc-top')),
    Case(
        'links_as_entities_into_a_node',
        lambda qb, g: qb.append(
            entity_type='link', filters={'output_id': g.pk('calcjob-1')}, project=['label', 'type']
        ),
        {('x', 'input_calc'), ('y', 'input_calc'), ('parameters', 'input_calc'), ('job', 'call_calc')},
    ),
    Case(
        'default_join_of_nodes_is_with_incoming',
        lambda qb, g: (qb.append(Node, filters={'label': 'calcjob-1'}), qb.append(Node, project='label')),
        labels('@b', 'float-2.5'),
    ),
    Case(
        'direction_back_one_is_with_outgoing',
        lambda qb, g: (qb.append(Node, filters={'label': 'calcjob-1'}), qb.append(Node, direction=-1, project='label')),
        labels('int-1', 'int-2', '@a', 'wc-top'),
    ),
    Case(
        'direction_forward_two',
        lambda qb, g: (
            qb.append(Int, filters={'label': 'int-1'}),
            qb.append(CalcJobNode, filters={'label': 'calcjob-1'}),
            qb.append(Data, direction=1, project='label'),
        ),
        labels('@b', 'float-2.5'),
    ),
    Case(
        'relationship_and_filter_by_class',
        lambda qb, g: (
            qb.append(CalcJobNode),
            qb.append(Data, with_incoming=CalcJobNode, project='label'),
            qb.add_filter(CalcJobNode, {'label': 'calcjob-1'}),
        ),
        labels('@b', 'float-2.5'),
    ),
    Case(
        'default_join_of_group_is_with_node',
        lambda qb, g: (qb.append(Node, filters={'label': 'int-1'}), qb.append(Group, project='label')),
        {'grp-core'},
    ),
    Case(
        'constructor_path_and_keywords',
        lambda qb, g: QueryBuilder.__init__(
            qb,
            qb._storage,
            path=[{'cls': Node, 'tag': 't'}, 'data.Data.'],
            filters={'t': {'label': 'calcjob-1'}},
            project={'Data_1': 'label'},
            order_by={'Data_1': {'label': 'desc'}},
            limit=1,
        ),
        ['float-2.5'],
    ),
    Case(
        'inputs_edge_type_input_calc',
        ofnode('calcjob-1', 'with_outgoing', edge_filters={'type': 'input_calc'}),
        labels('int-1', 'int-2', '@a'),
    ),
    Case(
        'inputs_edge_label',
        ofnode('calcjob-1', 'with_outgoing', edge_tag='e', edge_project='label'),
        {('int-1', 'x'), ('int-2', 'y'), ('dict-a', 'parameters'), ('wc-top', 'job')},
        read=pick(('n', 'label'), ('e', 'label')),
    ),
    Case(
        'inputs_edge_type',
        ofnode('str-hello', 'with_outgoing', edge_tag='e', edge_project=['type', 'label']),
        {('calcfunc-1', 'create', 'out'), ('wf-sub', 'return', 'out'), ('wc-top', 'return', 'final')},
        read=pick(('n', 'label'), ('e', 'type'), ('e', 'label')),
    ),
    Case(
        'inputs_edge_filter_label',
        ofnode('wc-top', 'with_outgoing', edge_filters={'label': 'params'}),
        {'dict-a'},
    ),
    Case(
        'inputs_edge_filter_label_like',
        ofnode('calcjob-1', 'with_outgoing', edge_filters={'label': {'like': 'p%'}}),
        {'dict-a'},
    ),
    Case(
        'outputs_edge_ids',
        ofnode('calcjob-2', 'with_incoming', edge_tag='e', edge_project=['input_id', 'output_id']),
        {('dict-c', 'calcjob-2', 'dict-c')},
        read=pick(('n', 'label'), ('e', 'input_id'), ('e', 'output_id'), pks=(1, 2)),
    ),
    Case('data_inputs_of_calcjobs', _calcjob_inputs(False), Bag(['int-1', 'int-2', 'dict-a', 'dict-b', 'int-2'])),
    Case('data_inputs_of_calcjobs_distinct', _calcjob_inputs(True), labels('int-1', 'int-2', '@a', '@b')),
    Case('data_inputs_of_calcjobs_count', _calcjob_inputs(False), 5, read=count),
    Case('data_inputs_of_calcjobs_count_distinct', _calcjob_inputs(True), 4, read=count),
    Case(
        'two_tags_projected',
        _two(CalcJobNode, None, 'with_incoming', Data),
        {('calcjob-1', 'dict-b'), ('calcjob-1', 'float-2.5'), ('calcjob-2', 'dict-c')},
    ),
    Case(
        'filter_on_joined_entity',
        lambda qb, g: (
            qb.append(CalcFunctionNode, tag='c'),
            qb.append(Node, tag='n', with_outgoing='c', filters={'node_type': {'like': 'data.core.dict.%'}}),
            qb.add_projection('n', 'label'),
        ),
        labels('@b', '@c'),
    ),
    Case(
        'chain_of_three',
        lambda qb, g: (
            qb.append(Int, tag='i', filters={'label': 'int-2'}),
            qb.append(CalcJobNode, tag='c', with_incoming='i'),
            qb.append(Dict, tag='n', with_incoming='c', project='label'),
        ),
        labels('@b', '@c'),
    ),
    Case(
        'add_filter_after_append',
        lambda qb, g: (qb.append(Int, tag='n', project='label'), qb.add_filter('n', {'attributes.value': {'<': 2}})),
        labels('int-1', 'int-neg'),
    ),
    # -- ancestors and descendants ----------------------------------------------------------------------------------
    Case(
        'descendants',
        ofnode('int-1', 'with_ancestors'),
        labels('calcjob-1', '@b', 'float-2.5', 'calcfunc-1', 'calcjob-2', 'str-hello', '@c', 'calcfunc-2', 'list-3'),
    ),
    Case(
        'descendants_diamond_once',
        ofnode('int-2', 'with_ancestors'),
        labels('calcjob-1', 'calcjob-2', '@b', 'float-2.5', '@c', 'calcfunc-1', 'str-hello', 'calcfunc-2', 'list-3'),
    ),
    Case('descendants_count', ofnode('int-2', 'with_ancestors'), 9, read=count),
    Case(
        'descendants_depth_is_shortest',
        _depth_of_descendants,
        {
            ('calcjob-1', 1),
            ('calcjob-2', 1),
            ('dict-b', 2),
            ('float-2.5', 2),
            ('dict-c', 2),
            ('calcfunc-1', 3),
            ('calcfunc-2', 3),
            ('str-hello', 4),
            ('list-3', 4),
        },
        read=pick(('d', 'label'), ('e', 'depth')),
    ),
    Case(
        'descendants_edge_ids',
        lambda qb, g: (
            qb.append(Int, tag='s', filters={'label': 'int-2'}),
            qb.append(
                Node,
                tag='d',
                with_ancestors='s',
                filters={'label': {'like': 'dict-%'}},
                edge_tag='e',
                edge_project=['ancestor_id', 'descendant_id'],
                project='label',
            ),
        ),
        {('dict-b', 'int-2', 'dict-b'), ('dict-c', 'int-2', 'dict-c')},
        read=pick(('d', 'label'), ('e', 'ancestor_id'), ('e', 'descendant_id'), pks=(1, 2)),
    ),
    Case('descendants_max_depth_1', ofnode('int-2', 'with_ancestors', max_depth=1), labels('calcjob-1', 'calcjob-2')),
    Case(
        'descendants_max_depth_2',
        ofnode('int-2', 'with_ancestors', max_depth=2),
        labels('calcjob-1', 'calcjob-2', '@b', 'float-2.5', '@c'),
    ),
    Case(
        'descendants_max_depth_3',
        ofnode('int-2', 'with_ancestors', max_depth=3),
        labels('calcjob-1', 'calcjob-2', '@b', 'float-2.5', '@c', 'calcfunc-1', 'calcfunc-2'),
    ),
    Case(
        'descendants_edge_filter_depth',
        ofnode('int-2', 'with_ancestors', edge_filters={'depth': {'<=': 2}}),
        labels('calcjob-1', 'calcjob-2', '@b', 'float-2.5', '@c'),
    ),
    Case('descendants_of_workflow_default_links', ofnode('wc-top', 'with_ancestors'), set()),
    Case(
        'descendants_all_link_types',
        ofnode('wc-top', 'with_ancestors', link_types='all'),
        labels('wf-sub', 'calcjob-1', '@b', 'str-hello', 'calcfunc-1', 'float-2.5', 'calcjob-2', '@c', 'calcfunc-2')
        | {'list-3'},
    ),
    Case(
        'descendants_call_links',
        ofnode('wc-top', 'with_ancestors', link_types=['call_calc', 'call_work']),
        labels('wf-sub', 'calcjob-1', 'calcfunc-1'),
    ),
    Case(
        'descendants_call_and_create_links',
        ofnode('wc-top', 'with_ancestors', link_types=['call_calc', 'call_work', 'create']),
        labels('wf-sub', 'calcjob-1', 'calcfunc-1', '@b', 'float-2.5', 'str-hello'),
    ),
    Case(
        'descendants_all_max_depth_1',
        ofnode('wc-top', 'with_ancestors', link_types='all', max_depth=1),
        labels('wf-sub', 'calcjob-1', '@b', 'str-hello'),
    ),
    Case(
        'descendants_of_data_all_link_types',
        ofnode('int-1', 'with_ancestors', link_types='all'),
        labels('wc-top', 'wf-sub', 'calcjob-1', '@b', 'str-hello', 'calcfunc-1', 'float-2.5', 'calcjob-2', '@c')
        | labels('calcfunc-2', 'list-3'),
    ),
    Case(
        'descendants_pairs_of_two_sources',
        _two_sources,
        {
            (source, target)
            for source in ('int-1', 'int-2')
            for target in (
                'calcjob-1',
                'dict-b',
                'float-2.5',
                'calcfunc-1',
                'calcjob-2',
                'str-hello',
                'dict-c',
                'calcfunc-2',
                'list-3',
            )
        },
    ),
    Case(
        'ancestors',
        ofnode('list-3', 'with_descendants'),
        labels('calcfunc-2', '@c', 'str-hello', 'calcjob-2', 'calcfunc-1', '@b', 'int-2', 'float-2.5', 'calcjob-1')
        | labels('int-1', '@a'),
    ),
    Case(
        'ancestors_depth_is_shortest',
        _depth_of_ancestors,
        {
            ('calcfunc-2', 1),
            ('dict-c', 2),
            ('str-hello', 2),
            ('calcjob-2', 3),
            ('calcfunc-1', 3),
            ('dict-b', 4),
            ('int-2', 4),
            ('float-2.5', 4),
            ('calcjob-1', 5),
            ('int-1', 6),
            ('dict-a', 6),
        },
        read=pick(('d', 'label'), ('e', 'depth')),
    ),
    Case(
        'ancestors_max_depth_3',
        ofnode('list-3', 'with_descendants', max_depth=3),
        labels('calcfunc-2', '@c', 'str-hello', 'calcjob-2', 'calcfunc-1'),
    ),
    Case(
        'ancestors_all_link_types',
        ofnode('list-3', 'with_descendants', link_types='all'),
        labels('calcfunc-2', '@c', 'str-hello', 'calcjob-2', 'calcfunc-1', '@b', 'int-2', 'float-2.5', 'calcjob-1')
        | labels('int-1', '@a', 'wf-sub', 'wc-top'),
    ),
    Case('ancestors_of_a_class', ofnode('dict-c', 'with_descendants', cls=Int), labels('int-1', 'int-2')),
    Case('ancestors_of_a_source', ofnode('int-1', 'with_descendants', link_types='all'), set()),
    # -- groups, users, computers, authinfos, comments, logs --------------------------------------------------------
    Case(
        'group_members',
        lambda qb, g: (
            qb.append(Group, tag='g', filters={'label': 'grp-Upf'}),
            qb.append(Node, tag='n', with_group='g', project='label'),
        ),
        labels('@a', 'str-hello', 'list-3'),
    ),
    Case(
        'group_members_of_a_class',
        lambda qb, g: (
            qb.append(Group, tag='g', filters={'label': 'grp-core'}),
            qb.append(Int, tag='n', with_group='g', project='label'),
        ),
        labels('int-1', 'int-2'),
    ),
    Case('groups_of_node', ofnode('dict-a', 'with_node', cls=Group), {'grp-core', 'grp-Upf'}),
    Case(
        'groups_of_node_edge',
        ofnode('dict-a', 'with_node', cls=Group, edge_tag='e', edge_project=['dbnode_id']),
        {('grp-core', 'dict-a'), ('grp-Upf', 'dict-a')},
        read=pick(('n', 'label'), ('e', 'dbnode_id'), pks=(1,)),
    ),
    Case(
        'groups_of_node_edge_group_id',
        ofnode('dict-a', 'with_node', cls=Group, edge_tag='e', edge_project='dbgroup_id'),
        lambda g: {('grp-core', g.groups['grp-core']), ('grp-Upf', g.groups['grp-Upf'])},
        read=pick(('n', 'label'), ('e', 'dbgroup_id')),
    ),
    Case(
        'groups_outerjoin_members',
        _groups_with_members,
        {
            ('grp-core', 'int-1'),
            ('grp-core', 'int-2'),
            ('grp-core', 'dict-a'),
            ('grp-core', 'calcjob-1'),
            ('grp-Upf', 'dict-a'),
            ('grp-Upf', 'str-hello'),
            ('grp-Upf', 'list-3'),
            ('grp-empty', None),
        },
    ),
    Case(
        'workchains_outerjoin_outputs',
        _workchains_with_outputs,
        {
            ('wc-top', 'wf-sub'),
            ('wc-top', 'calcjob-1'),
            ('wc-top', 'dict-b'),
            ('wc-top', 'str-hello'),
            ('wc-idle', None),
        },
    ),
    Case(
        'group_type_string',
        nodes({'type_string': 'core'}, Group),
        {'grp-core', 'grp-empty'},
    ),
    Case(
        'group_type_string_like', nodes({'type_string': {'like': 'core%'}}, Group), {'grp-core', 'grp-Upf', 'grp-empty'}
    ),
    Case('group_type_string_not', nodes({'type_string': {'!==': 'core'}}, Group), {'grp-Upf'}),
    Case('group_label_like_case', nodes({'label': {'like': 'grp-U%'}}, Group), {'grp-Upf'}),
    Case('group_label_ilike', nodes({'label': {'ilike': 'GRP-%'}}, Group), {'grp-core', 'grp-Upf', 'grp-empty'}),
    Case('group_extras', nodes({'extras.n': 1}, Group), {'grp-core'}),
    Case('group_extras_has_key', nodes({'extras': {'has_key': 'purpose'}}, Group), {'grp-core'}),
    Case('group_with_user', _two(User, {'email': ALICE}, 'with_user', Group, project_a=None), {'grp-Upf'}),
    Case(
        'user_with_group',
        _two(Group, {'label': 'grp-core'}, 'with_group', User, project_a=None, project_b='email'),
        {EMAIL},
    ),
    Case(
        'group_member_counts',
        _two(Group, None, 'with_group', Node, project_b={'id': {'func': 'count'}}),
        {('grp-core', 4), ('grp-Upf', 3)},
    ),
    Case('users', nodes(None, User, project='email'), {EMAIL, ALICE}),
    Case('user_first_name', nodes({'first_name': 'Alice'}, User, project='email'), {ALICE}),
    Case('user_email_like', nodes({'email': {'like': '%@example.org'}}, User, project='email'), {EMAIL, ALICE}),
    Case('user_institution_ilike', nodes({'institution': {'ilike': 'wonder%'}}, User, project='email'), {ALICE}),
    Case('user_of_node', ofnode('calcjob-2', 'with_node', cls=User, project='email'), {ALICE}),
    Case('nodes_of_user', _two(User, {'email': ALICE}, 'with_user', Node, project_a=None), ALICE_NODES),
    Case(
        'node_counts_per_user',
        _two(User, None, 'with_user', Node, project_a='email', project_b={'id': {'func': 'count'}}),
        {(EMAIL, N_NODES - 3), (ALICE, 3)},
    ),
    Case('computers', nodes(None, Computer), {'hpc-Alpha', 'laptop_b'}),
    Case('computer_metadata_gt', nodes({'metadata.cores': {'>': 10}}, Computer), {'hpc-Alpha'}),
    Case('computer_metadata_bool', nodes({'metadata.gpu': True}, Computer), {'hpc-Alpha'}),
    Case('computer_metadata_not_has_key', nodes({'metadata': {'!has_key': 'gpu'}}, Computer), {'laptop_b'}),
    Case('computer_scheduler_in', nodes({'scheduler_type': {'in': ['slurm', 'pbs']}}, Computer), {'hpc-Alpha'}),
    Case('computer_label_escaped_like', nodes({'label': {'like': 'laptop\\_b'}}, Computer), {'laptop_b'}),
    Case('computer_of_node', ofnode('calcjob-2', 'with_node', cls=Computer), {'laptop_b'}),
    Case(
        'nodes_of_computer',
        _two(Computer, {'label': 'hpc-Alpha'}, 'with_computer', Node, project_a=None),
        labels('calcjob-1', 'file-1'),
    ),
    Case(
        'computers_and_nodes',
        _two(Computer, None, 'with_computer', Node),
        {('hpc-Alpha', 'calcjob-1'), ('hpc-Alpha', 'file-1'), ('laptop_b', 'calcjob-2')},
    ),
    Case(
        'authinfos_of_user',
        _two(User, {'email': EMAIL}, 'with_user', AuthInfo, project_a=None, project_b='*'),
        {'auth-tester-alpha', 'auth-tester-laptop'},
    ),
    Case(
        'authinfos_of_computer',
        _two(Computer, {'label': 'hpc-Alpha'}, 'with_computer', AuthInfo, project_a=None, project_b='metadata.name'),
        {'auth-tester-alpha', 'auth-alice-alpha'},
    ),
    Case(
        'authinfo_enabled',
        nodes({'enabled': True}, AuthInfo, project='metadata.name'),
        {'auth-tester-alpha', 'auth-tester-laptop'},
    ),
    Case(
        'authinfo_not_enabled',
        nodes({'enabled': {'!==': True}}, AuthInfo, project='metadata.name'),
        {'auth-alice-alpha'},
    ),
    Case(
        'authinfo_auth_params_has_key',
        nodes({'auth_params': {'has_key': 'port'}}, AuthInfo, project='metadata.name'),
        {'auth-tester-alpha'},
    ),
    Case(
        'authinfo_metadata_like',
        nodes({'metadata.name': {'like': '%laptop'}}, AuthInfo, project='metadata.name'),
        {'auth-tester-laptop'},
    ),
    Case(
        'user_of_disabled_authinfo',
        _two(AuthInfo, {'enabled': False}, 'with_authinfo', User, project_a=None, project_b='email'),
        {ALICE},
    ),
    Case(
        'computer_of_authinfo',
        _two(AuthInfo, {'auth_params.username': 'tester'}, 'with_authinfo', Computer, project_a=None),
        {'hpc-Alpha'},
    ),
    Case(
        'computers_of_user_through_authinfo',
        lambda qb, g: (
            qb.append(User, tag='u', filters={'email': ALICE}),
            qb.append(AuthInfo, tag='a', with_user='u'),
            qb.append(Computer, tag='c', with_authinfo='a', project='label'),
        ),
        {'hpc-Alpha'},
    ),
    Case(
        'comments_of_node',
        ofnode('int-1', 'with_node', cls=Comment, project='content'),
        {'first comment', 'second comment'},
    ),
    Case(
        'comments_of_user',
        _two(User, {'email': ALICE}, 'with_user', Comment, project_a=None, project_b='content'),
        {'second comment', 'calc note'},
    ),
    Case(
        'node_of_comment',
        _two(Comment, {'content': 'calc note'}, 'with_comment', Node, project_a=None),
        {'calcjob-1'},
    ),
    Case(
        'users_of_comments_of_node',
        lambda qb, g: (
            qb.append(Node, tag='n', filters={'label': 'int-1'}),
            qb.append(Comment, tag='c', with_node='n'),
            qb.append(User, tag='u', with_comment='c', project='email'),
        ),
        {EMAIL, ALICE},
    ),
    Case(
        'comment_content_like',
        nodes({'content': {'like': '%comment'}}, Comment, project='*'),
        {'first comment', 'second comment'},
    ),
    Case('logs_of_node', ofnode('calcjob-1', 'with_node', cls=Log, project='message'), {'job submitted', 'job slow'}),
    Case('node_of_log', _two(Log, {'message': 'job failed'}, 'with_log', Node, project_a=None), {'calcjob-2'}),
    Case(
        'log_levelname_in',
        nodes({'levelname': {'in': ['WARNING', 'ERROR']}}, Log, project='message'),
        {'job slow', 'job failed'},
    ),
    Case('log_metadata_gt', nodes({'metadata.attempt': {'>': 1}}, Log, project='message'), {'job slow'}),
    Case(
        'log_metadata_eq',
        nodes({'metadata.attempt': 1}, Log, project='message'),
        {'job submitted', 'workflow started'},
    ),
    Case(
        'log_metadata_not_has_key', nodes({'metadata': {'!has_key': 'attempt'}}, Log, project='message'), {'job failed'}
    ),
    Case('log_time_eq', nodes({'time': LOG_TIME}, Log, project='message'), 4, read=count),
    Case(
        'log_time_before',
        nodes({'time': {'<': LOG_TIME + datetime.timedelta(seconds=1)}}, Log, project='message'),
        4,
        read=count,
    ),
    Case('log_time_after', nodes({'time': {'>': LOG_TIME}}, Log, project='message'), 0, read=count),
    Case(
        'log_order_levelname',
        _ordered(Log, 'levelname', project='*'),
        ['job failed', 'job submitted', 'workflow started', 'job slow'],
    ),
    # -- projections ------------------------------------------------------------------------------------------------
    case('project_star', None, INTS, cls=Int, project='*'),
    Case('project_star_groups', nodes(None, Group, project='*'), {'grp-core', 'grp-Upf', 'grp-empty'}),
    Case('project_star_users', nodes(None, User, project='*'), {EMAIL, ALICE}),
    Case('project_int_value', nodes({'label': 'int-1'}, project='attributes.value'), [1]),
    Case('project_float_value_stays_float', nodes({'label': 'float-1.0'}, project='attributes.value'), [1.0]),
    Case('project_bool_value', nodes({'label': 'bool-true'}, project='attributes.value'), [True]),
    Case('project_string_value', nodes({'label': 'str-1'}, project='attributes.value'), ['1']),
    Case('project_big_value', nodes({'label': 'int-big'}, project='attributes.value'), [BIG]),
    Case('project_unicode_value', nodes({'label': 'str-unicode'}, project='attributes.value'), ['Grüße ☃ 日本']),
    Case('project_attributes', nodes({'label': 'dict-i'}, project='attributes'), [{'n': 1.0, 's': 'A_B'}]),
    Case('project_nested_object', nodes({'label': 'dict-a'}, project='attributes.nested'), [DICTS['dict-a']['nested']]),
    Case('project_list', nodes({'label': 'dict-d'}, project='attributes.tags'), [['green', 'blue', 'red']]),
    Case('project_nested_list', nodes({'label': 'list-nested'}, project='attributes.list'), [LISTS['list-nested']]),
    Case('project_missing_key_is_none', nodes({'label': 'dict-g'}, project='attributes.nested'), [None]),
    Case('project_json_null_is_none', nodes({'label': 'dict-a'}, project='attributes.x'), [None]),
    Case('project_deep_path', nodes({'label': 'dict-a'}, project='attributes.nested.deep.z'), ['zz']),
    Case(
        'project_label_and_json',
        nodes(None, Dict, project=['label', 'attributes.n']),
        Bag([[label, attributes.get('n')] for label, attributes in DICTS.items()]),
    ),
    Case('project_cast_text', nodes({'label': 'dict-a'}, project={'attributes.w': {'cast': 't'}}), ['9']),
    Case('project_cast_float', nodes({'label': 'dict-a'}, project={'attributes.w': {'cast': 'f'}}), [9.0]),
    Case('project_cast_int', nodes({'label': 'dict-c'}, project={'attributes.w': {'cast': 'i'}}), [100]),
    Case('project_cast_int_of_string', nodes({'label': 'dict-d'}, project={'attributes.n': {'cast': 'i'}}), [3]),
    Case('project_cast_int_big', nodes({'label': 'int-big'}, project={'attributes.value': {'cast': 'i'}}), [BIG]),
    Case('project_cast_float_big', nodes({'label': 'int-big'}, project={'attributes.value': {'cast': 'f'}}), [1e12]),
    Case(
        'project_cast_text_of_float',
        nodes({'label': 'float-2.5'}, project={'attributes.value': {'cast': 't'}}),
        ['2.5'],
    ),
    Case('project_cast_bool', nodes({'label': 'dict-a'}, project={'attributes.b': {'cast': 'b'}}), [True]),
    Case('project_cast_json', nodes({'label': 'dict-b'}, project={'attributes.nested': {'cast': 'j'}}), [{'k': 2}]),
    Case(
        'project_cast_datetime',
        nodes({'label': 'dict-c'}, project={'attributes.when': {'cast': 'd'}}),
        '2024-01-02T03:04:05',
        read=_datetime_text,
    ),
    Case('project_node_type', nodes({'label': 'int-1'}, project='node_type'), ['data.core.int.Int.']),
    Case('project_process_type', nodes({'label': 'calcjob-1'}, project='process_type'), ['provstore.calculations:job']),
    Case('project_process_type_null', nodes({'label': 'calcfunc-2'}, project='process_type'), [None]),
    Case('project_uuid', nodes({'label': 'int-5'}, project='uuid'), lambda g: [g.uuids['int-5']]),
    Case('project_id_and_pk', nodes({'label': 'int-5'}, project=['id', 'pk']), lambda g: [[g.pk('int-5')] * 2]),
    Case('project_user_id', nodes({'label': 'calcjob-2'}, project='user_id'), lambda g: [g.users[ALICE]]),
    Case(
        'project_computer_id',
        nodes({'label': 'calcjob-1'}, project='dbcomputer_id'),
        lambda g: [g.computers['hpc-Alpha']],
    ),
    Case('project_description', nodes({'label': 'wf-sub'}, project='description'), ['node wf-sub']),
    Case('project_extras', nodes({'label': 'int-2'}, project='extras'), [{'tag': 'y', 'rank': 2}]),
    Case('project_ctime_is_datetime', nodes({'label': 'int-2'}, project='ctime'), ['datetime'], read=_type_of_ctime),
    Case(
        'project_all_columns',
        nodes({'label': 'int-1'}, project='**'),
        lambda g: [
            {
                'id': g.pk('int-1'),
                'uuid': g.uuids['int-1'],
                'label': 'int-1',
                'node_type': 'data.core.int.Int.',
                'process_type': None,
                'attributes': {'value': 1},
                'extras': {'tag': 'x', 'rank': 1},
                'user_id': g.users[EMAIL],
                'dbcomputer_id': None,
            }
        ],
        read=_star_all_columns,
    ),
    Case(
        'project_user_columns',
        nodes({'email': ALICE}, User, project=['first_name', 'last_name']),
        [['Alice', 'Liddell']],
    ),
    Case('project_group_extras', nodes({'label': 'grp-core'}, Group, project='extras'), [{'purpose': 'test', 'n': 1}]),
    Case('project_log_metadata_path', nodes(None, Log, project='metadata.attempt'), Bag([1, 2, None, 1])),
    Case(
        'project_computer_metadata',
        nodes({'label': 'hpc-Alpha'}, Computer, project='metadata'),
        [{'cores': 64, 'gpu': True}],
    ),
    Case(
        'project_authinfo_auth_params_path',
        nodes({'metadata.name': 'auth-tester-alpha'}, AuthInfo, project='auth_params.port'),
        [22],
    ),
    Case('project_nothing_gives_the_entity', nodes({'label': 'int-1'}, project=None), ['int-1']),
    # -- aggregates and grouping ------------------------------------------------------------------------------------
    Case('count_func', nodes(None, Int, project={'id': {'func': 'count'}}), [5]),
    Case('count_func_all_nodes', nodes(None, project={'id': {'func': 'count'}}), [N_NODES]),
    Case('count_func_of_nothing', nodes({'label': 'no-such-label'}, Int, project={'id': {'func': 'count'}}), [0]),
    Case('max_of_nothing', nodes({'label': 'no-such-label'}, Int, project={'id': {'func': 'max'}}), [None]),
    Case('min_int_cast', nodes(None, Int, project={'attributes.value': {'cast': 'i', 'func': 'min'}}), [-3]),
    Case('max_int_cast', nodes(None, Int, project={'attributes.value': {'cast': 'i', 'func': 'max'}}), [BIG]),
    Case('sum_int_cast', nodes(None, Int, project={'attributes.value': {'cast': 'i', 'func': 'sum'}}), [BIG + 5]),
    Case('min_is_numeric_minimum', nodes(None, Dict, project={'attributes.w': {'cast': 'f', 'func': 'min'}}), [9.0]),
    Case('max_is_numeric_maximum', nodes(None, Dict, project={'attributes.w': {'cast': 'f', 'func': 'max'}}), [100.0]),
    Case('sum_float_cast', nodes(None, Dict, project={'attributes.w': {'cast': 'f', 'func': 'sum'}}), [119.0]),
    Case('sum_mixed_numbers', nodes(None, Dict, project={'attributes.f': {'cast': 'f', 'func': 'sum'}}), [2.5]),
    Case('min_float_values', nodes(None, Float, project={'attributes.value': {'cast': 'f', 'func': 'min'}}), [-0.5]),
    Case('sum_float_values', nodes(None, Float, project={'attributes.value': {'cast': 'f', 'func': 'sum'}}), [3.0]),
    Case('max_label', nodes(None, Int, project={'label': {'func': 'max'}}), ['int-neg']),
    Case('min_label', nodes(None, Int, project={'label': {'func': 'min'}}), ['int-1']),
    Case(
        'min_id',
        nodes(None, Int, project={'id': {'func': 'min'}}),
        lambda g: [min(g.pk(label) for label in INTS)],
    ),
    Case(
        'count_and_max',
        nodes(None, Dict, project=[{'id': {'func': 'count'}}, {'attributes.w': {'cast': 'f', 'func': 'max'}}]),
        [[10, 100.0]],
    ),
    Case(
        'group_by_node_type',
        nodes(None, project=['node_type', {'id': {'func': 'count'}}]),
        {
            ('data.core.int.Int.', 5),
            ('data.core.float.Float.', 3),
            ('data.core.str.Str.', 5),
            ('data.core.bool.Bool.', 2),
            ('data.core.dict.Dict.', 10),
            ('data.core.list.List.', 4),
            ('data.Data.', 6),
            ('data.core.singlefile.SinglefileData.', 1),
            ('data.core.folder.FolderData.', 1),
            ('process.calculation.calcjob.CalcJobNode.', 2),
            ('process.calculation.calcfunction.CalcFunctionNode.', 2),
            ('process.workflow.workchain.WorkChainNode.', 2),
            ('process.workflow.workfunction.WorkFunctionNode.', 1),
        },
    ),
    Case(
        'group_by_json_path',
        nodes(None, ProcessNode, project=['attributes.process_state', {'id': {'func': 'count'}}]),
        {('finished', 5), ('excepted', 1), ('created', 1)},
    ),
    # -- order, limit, offset, distinct -----------------------------------------------------------------------------
    Case(
        'order_int_cast_asc',
        _ordered(Int, {'attributes.value': {'order': 'asc', 'cast': 'i'}}),
        ['int-neg', 'int-1', 'int-2', 'int-5', 'int-big'],
    ),
    Case(
        'order_int_cast_desc',
        _ordered(Int, {'attributes.value': {'order': 'desc', 'cast': 'i'}}),
        ['int-big', 'int-5', 'int-2', 'int-1', 'int-neg'],
    ),
    Case(
        'order_float_cast',
        _ordered(Float, [{'attributes.value': {'order': 'asc', 'cast': 'f'}}]),
        ['float-neg', 'float-1.0', 'float-2.5'],
    ),
    Case(
        'order_label_code_points',
        _ordered(Data, 'label', subclassing=False),
        ['50%off', '50Xoff', 'Mixed_Case', 'mixed_case', 'underXscore', 'under_score'],
    ),
    Case(
        'order_label_desc',
        _ordered(Data, {'label': 'desc'}, subclassing=False),
        ['under_score', 'underXscore', 'mixed_case', 'Mixed_Case', '50Xoff', '50%off'],
    ),
    Case('order_label_dict_form', _ordered(Int, {'label': {'order': 'desc'}}), INT_ORDER[::-1]),
    Case('order_label_list_form', _ordered(Int, ['label']), INT_ORDER),
    Case(
        'order_text_cast_missing_last',
        _ordered(Dict, [{'attributes.s': {'order': 'asc', 'cast': 't'}}]),
        ['dict-h', 'dict-i', 'dict-b', 'dict-j', 'dict-a', 'dict-c', 'dict-d', 'dict-f', 'dict-e', 'dict-g'],
    ),
    Case(
        'order_text_cast_desc_missing_first',
        _ordered(Dict, [{'attributes.s': {'order': 'desc', 'cast': 't'}}]),
        ['dict-g', 'dict-e', 'dict-f', 'dict-d', 'dict-c', 'dict-a', 'dict-j', 'dict-b', 'dict-i', 'dict-h'],
    ),
    Case(
        'order_json_strings_without_cast',
        _ordered(Str, [{'attributes.value': {'order': 'asc'}}]),
        ['str-empty', 'str-1', 'str-unicode', 'str-hello', 'str-quote'],
    ),
    Case(
        'order_strings_desc',
        _ordered(Str, [{'attributes.value': {'order': 'desc', 'cast': 't'}}]),
        ['str-quote', 'str-hello', 'str-unicode', 'str-1', 'str-empty'],
    ),
    Case(
        'order_float_cast_then_label',
        _ordered(Dict, [{'attributes.w': {'order': 'asc', 'cast': 'f'}}, 'label']),
        ['dict-a', 'dict-b', 'dict-c', 'dict-d', 'dict-e', 'dict-f', 'dict-g', 'dict-h', 'dict-i', 'dict-j'],
    ),
    Case(
        'order_float_cast_desc_nulls_first',
        _ordered(Dict, [{'attributes.w': {'order': 'desc', 'cast': 'f'}}, {'label': {'order': 'asc'}}]),
        ['dict-d', 'dict-e', 'dict-f', 'dict-g', 'dict-h', 'dict-i', 'dict-j', 'dict-c', 'dict-b', 'dict-a'],
    ),
    Case(
        'order_numbers_as_text',
        _ordered(Dict, [{'attributes.w': {'order': 'asc', 'cast': 't'}}, 'label']),
        ['dict-b', 'dict-c', 'dict-a', 'dict-d', 'dict-e', 'dict-f', 'dict-g', 'dict-h', 'dict-i', 'dict-j'],
    ),
    Case(
        'order_extras_missing_last',
        _ordered(Int, [{'extras.rank': {'order': 'asc', 'cast': 'i'}}, 'label']),
        ['int-1', 'int-2', 'int-5', 'int-big', 'int-neg'],
    ),
    Case(
        'order_extras_desc_missing_first',
        _ordered(Int, [{'extras.rank': {'order': 'desc', 'cast': 'i'}}, 'label']),
        ['int-5', 'int-big', 'int-neg', 'int-2', 'int-1'],
    ),
    Case('order_id', _ordered(Int, 'id'), lambda g: sorted(INTS, key=g.pk)),
    Case('order_id_desc', _ordered(Int, {'id': 'desc'}), lambda g: sorted(INTS, key=g.pk, reverse=True)),
    Case(
        'order_two_tags',
        lambda qb, g: (
            qb.append(CalcJobNode, tag='c', project='label'),
            qb.append(Data, tag='d', with_outgoing='c', project='label'),
            qb.order_by({'c': 'label', 'd': 'label'}),
        ),
        [
            ['calcjob-1', 'dict-a'],
            ['calcjob-1', 'int-1'],
            ['calcjob-1', 'int-2'],
            ['calcjob-2', 'dict-b'],
            ['calcjob-2', 'int-2'],
        ],
    ),
    Case('order_groups', _ordered(Group, 'label'), ['grp-Upf', 'grp-core', 'grp-empty']),
    Case('order_users_desc', _ordered(User, {'email': 'desc'}, project='email'), [EMAIL, ALICE]),
    Case(
        'order_then_limit',
        lambda qb, g: (_ordered(Dict, [{'attributes.s': {'order': 'asc', 'cast': 't'}}])(qb, g), qb.limit(3)),
        ['dict-h', 'dict-i', 'dict-b'],
    ),
    Case('limit', _limited(2, None), INT_ORDER[:2]),
    Case('limit_offset', _limited(2, 2), INT_ORDER[2:4]),
    Case('offset', _limited(None, 4), INT_ORDER[4:]),
    Case('offset_beyond', _limited(None, 10), []),
    Case('limit_zero', _limited(0, None), []),
    Case('limit_in_constructor', _ordered(Int, 'label'), INT_ORDER[:3], init={'limit': 3}),
    Case('offset_in_constructor', _ordered(Int, 'label'), INT_ORDER[3:], init={'offset': 3}),
    Case(
        'distinct_in_constructor',
        _calcjob_inputs(False),
        labels('int-1', 'int-2', '@a', '@b'),
        init={'distinct': True},
    ),
    Case(
        'distinct_type_strings',
        lambda qb, g: (qb.append(Group, tag='g', project='type_string'), qb.distinct()),
        {'core', 'core.upf'},
    ),
    Case(
        'distinct_data_node_types',
        lambda qb, g: (qb.append(Data, tag='n', project='node_type'), qb.distinct()),
        {
            'data.core.int.Int.',
            'data.core.float.Float.',
            'data.core.str.Str.',
            'data.core.bool.Bool.',
            'data.core.dict.Dict.',
            'data.core.list.List.',
            'data.Data.',
            'data.core.singlefile.SinglefileData.',
            'data.core.folder.FolderData.',
        },
    ),
    # -- first, one, count, dict, iterdict, iterall -----------------------------------------------------------------
    Case('first', _ordered(Int, 'label'), ['int-1'], read=first),
    Case('first_flat', _ordered(Int, 'label'), 'int-1', read=first_flat),
    Case('first_of_nothing', nodes({'label': 'no-such-label'}), None, read=first),
    Case(
        'first_two_projections', _ordered(Int, 'label', project=['label', 'attributes.value']), ['int-1', 1], read=first
    ),
    Case('one', nodes({'label': 'int-5'}), ['int-5'], read=one),
    Case('one_star', nodes({'label': 'int-5'}, project='*'), ['int-5'], read=one),
    Case('one_of_nothing', nodes({'label': 'no-such-label'}), read=one, raises=NotExistentError),
    Case('one_of_several', nodes(None, Int), read=one, raises=MultipleObjectsError),
    Case('count_of_nothing', nodes({'label': 'no-such-label'}), 0, read=count),
    Case('all_flat', _ordered(Int, 'label'), INT_ORDER, read=flat),
    Case(
        'dict_shape',
        lambda qb, g: qb.append(Int, tag='i', filters={'label': 'int-1'}, project=['label', 'attributes.value']),
        [{'i': {'label': 'int-1', 'attributes.value': 1}}],
        read=dicts,
    ),
    Case(
        'dict_star',
        lambda qb, g: qb.append(Int, tag='i', filters={'label': 'int-2'}, project='*'),
        [{'i': {'*': 'int-2'}}],
        read=dicts,
    ),
    Case(
        'dict_cast_key',
        lambda qb, g: qb.append(Dict, tag='d', filters={'label': 'dict-a'}, project={'attributes.w': {'cast': 'f'}}),
        [{'d': {'attributes.w': 9.0}}],
        read=dicts,
    ),
    Case(
        'dict_two_tags',
        lambda qb, g: (
            qb.append(CalcJobNode, tag='c', project='label'),
            qb.append(Node, tag='o', with_incoming='c', edge_tag='e', edge_project='label', project='label'),
        ),
        Bag(
            [
                {'c': {'label': 'calcjob-1'}, 'e': {'label': 'result'}, 'o': {'label': 'dict-b'}},
                {'c': {'label': 'calcjob-1'}, 'e': {'label': 'energy'}, 'o': {'label': 'float-2.5'}},
                {'c': {'label': 'calcjob-2'}, 'e': {'label': 'result'}, 'o': {'label': 'dict-c'}},
            ]
        ),
        read=dicts,
    ),
    Case(
        'dict_only_projected_tags',
        lambda qb, g: (
            qb.append(CalcJobNode, tag='c', filters={'label': 'calcjob-2'}),
            qb.append(Node, tag='o', with_incoming='c', project='label'),
        ),
        [{'o': {'label': 'dict-c'}}],
        read=dicts,
    ),
    Case(
        'iterdict',
        _ordered(Int, 'label'),
        [{'n': {'label': label}} for label in INT_ORDER],
        read=iterdicts,
    ),
    Case('iterall_batches', _ordered(Int, 'label'), INT_ORDER, read=iterall),
    Case('iterall_star', _ordered(Int, 'label', project='*'), INT_ORDER, read=iterall),
    Case('all_batches', _ordered(Int, 'label'), INT_ORDER, read=all_batched),
    # -- refusals ---------------------------------------------------------------------------------------------------
    refused('unknown_operator', nodes({'attributes.n': {'~=': 3}}), '~='),
    refused('unknown_negated_operator', nodes({'label': {'!~=': 'x'}}), '~='),
    refused('unknown_field_filter', nodes({'no_such_field': 1}), 'no_such_field'),
    refused('unknown_field_projection', nodes(None, project='no_such_field'), 'no_such_field'),
    refused('unknown_field_order', _ordered(Int, 'no_such_field'), 'no_such_field'),
    refused('field_of_another_entity', nodes({'type_string': 'core'}), 'type_string'),
    refused('json_path_on_text_column', nodes({'label.x': 1}), 'label'),
    refused('in_with_a_string', nodes({'label': {'in': 'int-1'}}), 'in'),
    refused('not_in_with_a_number', nodes({'id': {'!in': 3}}), 'in'),
    refused('relationship_to_unknown_tag', nodes(None, with_incoming='no_such_tag'), 'no_such_tag'),
    refused(
        'add_filter_unknown_tag',
        lambda qb, g: (qb.append(Int, tag='n'), qb.add_filter('no_such_tag', {})),
        'no_such_tag',
    ),
    refused('bad_cast', nodes(None, Dict, project={'attributes.w': {'cast': 'z'}}), 'cast'),
    refused('unknown_function', nodes(None, project={'id': {'func': 'median'}}), 'median'),
    refused('of_type_unknown_type', nodes({'attributes.n': {'of_type': 'integer'}}), 'integer'),
    refused('like_with_a_number', nodes({'label': {'like': 5}}), 'like'),
    refused('of_length_with_a_string', nodes({'attributes.tags': {'of_length': 'two'}}), 'of_length'),
    refused('comparison_with_an_object', nodes({'attributes.n': {'>': {'a': 1}}}), '>'),
    refused('contains_on_a_text_column', nodes({'label': {'contains': ['a']}}), 'contains'),
    refused('unknown_link_type', ofnode('int-1', 'with_ancestors', link_types=['bogus']), 'bogus'),
    refused('max_depth_on_links', ofnode('int-1', 'with_incoming', max_depth=2), 'max_depth'),
    refused(
        'two_relationships',
        lambda qb, g: (qb.append(Node, tag='t'), qb.append(Node, tag='n', with_incoming='t', with_outgoing='t')),
        'with_',
    ),
    refused('relationship_not_for_entity', _two(Node, None, 'with_incoming', Group), 'with_incoming'),
    refused('order_direction', _ordered(Int, {'label': {'order': 'sideways'}}), 'sideways'),
    refused('and_without_a_list', nodes({'and': {'label': 'int-1'}}), 'and'),
]


def check_result(result: Any, expect: Any) -> None:
    """Assert that ``result`` is what ``expect`` describes (see the module's text)."""
    if isinstance(expect, (set, frozenset, Bag)):
        assert isinstance(result, list), f'expected rows, got {result!r}'
        assert sorted(map(canon, result)) == sorted(map(canon, expect))
    elif isinstance(expect, list):
        assert isinstance(result, list), f'expected rows, got {result!r}'
        assert [canon(row) for row in result] == [canon(row) for row in expect]
    else:
        assert canon(result) == canon(expect)


def run_case(case: Case, graph: QueryGraph, via_dict: bool = False) -> Any:
    """Build the query of ``case`` on the graph's storage (rebuilt from ``as_dict()`` if ``via_dict``) and read it."""
    qb = QueryBuilder(storage=graph.storage, **case.init)
    case.build(qb, graph)
    if via_dict:
        qb = QueryBuilder.from_dict(copy.deepcopy(qb.as_dict()), storage=graph.storage)
    return case.read(qb, graph)


def expected_result(case: Case, graph: QueryGraph) -> Any:
    """Return what ``case`` expects on ``graph``."""
    return case.expect(graph) if callable(case.expect) else case.expect
