"""The QueryBuilder as aiida-core users write it: constructor keywords, default joins and tags, tags given as classes,
aiida-core's ``as_dict()`` form read and written, on ``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from provstore.manager import get_manager
from provstore.orm import CalcJobNode, Dict, Group, Int, LinkType, Node, QueryBuilder, QueryError, User, store_nodes
from provstore.storage import EntityStorage

# What aiida-core 2.9's as_dict() gives for the query that ``_aiida_style_query`` builds (printed by aiida-core).
AIIDA_DICT: dict[str, Any] = {
    'path': [
        {
            'entity_type': 'data.core.dict.Dict.',
            'orm_base': 'node',
            'tag': 'Dict_1',
            'joining_keyword': None,
            'joining_value': None,
            'edge_tag': None,
            'outerjoin': False,
        },
        {
            'entity_type': 'process.calculation.calcjob.CalcJobNode.',
            'orm_base': 'node',
            'tag': 'CalcJobNode_1',
            'joining_keyword': 'with_incoming',
            'joining_value': 'Dict_1',
            'edge_tag': 'Dict_1--CalcJobNode_1',
            'outerjoin': False,
        },
        {
            'entity_type': 'group.core',
            'orm_base': 'group',
            'tag': 'core_1',
            'joining_keyword': 'with_node',
            'joining_value': 'CalcJobNode_1',
            'edge_tag': 'CalcJobNode_1--core_1',
            'outerjoin': False,
        },
        {
            'entity_type': 'user',
            'orm_base': 'user',
            'tag': 'user_1',
            'joining_keyword': 'with_group',
            'joining_value': 'core_1',
            'edge_tag': 'core_1--user_1',
            'outerjoin': False,
        },
    ],
    'filters': {
        'Dict_1': {'node_type': {'like': 'data.core.dict.%'}, 'attributes.a': {'>': 1}},
        'CalcJobNode_1': {'node_type': {'like': 'process.calculation.calcjob.%'}},
        'Dict_1--CalcJobNode_1': {'label': 'x'},
        'core_1': {'type_string': {'like': '%'}},
        'CalcJobNode_1--core_1': {},
        'user_1': {},
        'core_1--user_1': {},
    },
    'project': {
        'Dict_1': [{'id': {}}, {'attributes.a': {}}],
        'CalcJobNode_1': [],
        'Dict_1--CalcJobNode_1': [{'label': {}}],
        'core_1': [{'label': {}}],
        'CalcJobNode_1--core_1': [],
        'user_1': [],
        'core_1--user_1': [],
    },
    'project_map': {},
    'order_by': [{'Dict_1': [{'id': {'order': 'asc'}}]}],
    'limit': 3,
    'offset': None,
    'distinct': False,
}


def _aiida_style_query(storage: EntityStorage | None = None) -> QueryBuilder:
    qb = QueryBuilder(storage)
    qb.append(Dict, filters={'attributes.a': {'>': 1}}, project=['id', 'attributes.a'])
    qb.append(CalcJobNode, with_incoming=Dict, edge_filters={'label': 'x'}, edge_project='label')
    qb.append(Group, project='label')
    qb.append(User, with_group='core_1')
    qb.order_by({Dict: 'id'})
    qb.limit(3)
    return qb


def _graph(storage: EntityStorage) -> tuple[Dict, Dict, CalcJobNode, Group]:
    """Two dicts into a calculation (labels ``x`` and ``y``), the calculation in group ``g``."""
    small, big = Dict({'a': 1}, storage=storage), Dict({'a': 5}, storage=storage)
    calc = CalcJobNode(storage=storage)
    calc.base.links.add_incoming(small, LinkType.INPUT_CALC, 'y')
    calc.base.links.add_incoming(big, LinkType.INPUT_CALC, 'x')
    store_nodes([calc, small, big], storage)
    group = Group('g', storage=storage).store()
    group.add_nodes(calc)
    return small, big, calc, group


def test_as_dict_is_aiida_cores_form() -> None:
    """The same calls give the dict aiida-core's as_dict() gives, key for key (no storage needed to build)."""
    assert _aiida_style_query().as_dict() == AIIDA_DICT


def test_a_dict_written_by_aiida_core_runs_unchanged(storage: EntityStorage) -> None:
    """aiida-core's dict, read by from_dict and the constructor's keywords, answers as the query it describes."""
    _, big, _, group = _graph(storage)
    rows = QueryBuilder.from_dict(copy.deepcopy(AIIDA_DICT), storage).all()
    assert rows == [[big.pk, 5, group.label, 'x']]  # entities' projections first, then edges', as aiida-core
    again = QueryBuilder(storage, **copy.deepcopy(AIIDA_DICT))
    assert again.all() == rows
    assert again.as_dict() == AIIDA_DICT


def test_default_tags_and_used_tags() -> None:
    """Tags default to aiida-core's names, numbered per name; get_used_tags lists entities and edges in order."""
    qb = QueryBuilder().append(Node).append(Int).append(Int).append(Group).append(User, with_group='core_1')
    assert qb.get_used_tags() == [
        'node_1', 'Int_1', 'node_1--Int_1', 'Int_2', 'Int_1--Int_2', 'core_1', 'Int_2--core_1', 'user_1',
        'core_1--user_1',
    ]  # fmt: skip
    assert qb.get_used_tags(edges=False) == ['node_1', 'Int_1', 'Int_2', 'core_1', 'user_1']
    assert qb.get_used_tags(vertices=False) == ['node_1--Int_1', 'Int_1--Int_2', 'Int_2--core_1', 'core_1--user_1']
    assert QueryBuilder().append((Int, Dict)).get_used_tags() == ['Int-Dict_1']


def test_tags_with_the_edge_delimiter_are_refused() -> None:
    with pytest.raises(QueryError, match='--'):
        QueryBuilder().append(Int, tag='a--b')


def test_default_join_direction_and_edge_tag(storage: EntityStorage) -> None:
    """A second append joins the previous node as its output; direction=-1 as its input; edge_tag names the link."""
    small, big, calc, group = _graph(storage)
    outputs_of_dicts = QueryBuilder(storage).append(Dict, filters={'id': big.pk}).append(Node, project='id')
    assert outputs_of_dicts.all(flat=True) == [calc.pk]
    inputs = QueryBuilder(storage).append(CalcJobNode, tag='c')
    inputs.append(Dict, direction=-1, edge_tag='link', edge_project='label', project='id')
    inputs.order_by({Dict: 'id'})
    assert inputs.all() == [[small.pk, 'y'], [big.pk, 'x']]
    groups = QueryBuilder(storage).append(CalcJobNode).append(Group, project='label')
    assert groups.all(flat=True) == [group.label]
    with pytest.raises(QueryError, match='direction'):
        QueryBuilder(storage).append(CalcJobNode).append(Dict, direction=3)


def test_filters_and_order_keyed_by_class_replace_as_aiida_core(storage: EntityStorage) -> None:
    """add_filter on a key filtered before replaces it; order_by replaces the earlier order; a class names a tag."""
    small, big, *_ = _graph(storage)
    qb = QueryBuilder(storage).append(Dict, project='id', filters={'attributes.a': 1})
    qb.add_filter(Dict, {'attributes.a': 5})
    assert qb.all(flat=True) == [big.pk]
    qb.add_filter(Dict, {'attributes.a': {'in': [1, 5]}})
    qb.order_by({Dict: {'id': 'desc'}})
    qb.order_by({Dict: 'id'})
    assert qb.all(flat=True) == [small.pk, big.pk]
    qb.add_projection(Dict, 'attributes.a')
    assert qb.all(flat=True) == [1, 5]
    with pytest.raises(QueryError, match='more than once'):
        QueryBuilder(storage).append(Dict).append(Dict, direction=-1).add_filter(Dict, {})


def test_constructor_path_keywords_and_project_map(storage: EntityStorage) -> None:
    """path=, filters=, project=, order_by=, offset=, distinct= and project_map= as aiida-core takes them."""
    small, _, calc, _ = _graph(storage)
    qb = QueryBuilder(
        storage,
        path=[CalcJobNode, {'cls': Dict, 'tag': 'd', 'with_outgoing': 'CalcJobNode_1'}],
        filters={'d': {'attributes.a': {'>': 0}}},
        project={'d': ['id'], 'CalcJobNode_1': 'id'},
        order_by=[{'d': {'id': 'desc'}}],
        offset=1,
        distinct=True,
        project_map={'d': {'id': 'pk'}},
    )
    assert qb.dict() == [{'CalcJobNode_1': {'id': calc.pk}, 'd': {'pk': small.pk}}]
    assert QueryBuilder(storage, path=['data.core.dict.Dict.'], project={'Dict_1': 'id'}).count() == 2
    assert copy.deepcopy(qb).dict() == qb.dict()


def test_analyze_query_gives_the_plan(storage: EntityStorage) -> None:
    qb = QueryBuilder(storage).append(Dict, filters={'attributes.a': 1})
    plan = qb.analyze_query()
    assert isinstance(plan, str)
    assert plan
    assert qb.analyze_query(execute=False, verbose=True) == plan


def test_a_query_built_before_the_storage_reopens_runs_after(storage: EntityStorage) -> None:
    """A QueryBuilder without a storage binds to the profile's storage when it runs, not when it is built."""
    Int(7, storage=storage).store()
    qb = QueryBuilder().append(Int, project='attributes.value')
    assert qb.all(flat=True) == [7]
    manager = get_manager()
    profile = manager.get_profile()
    assert profile is not None
    manager.unload_profile()
    manager.load_profile(profile.name)
    assert qb.all(flat=True) == [7]
    assert qb.storage is not storage


def test_links_queried_as_entities(storage: EntityStorage) -> None:
    """entity_type='link' queries the links themselves: their fields, filters, order and count; '*' is the row."""
    small, big, calc, _ = _graph(storage)
    links = QueryBuilder(storage).append(entity_type='link', project=['input_id', 'output_id', 'label', 'type'])
    links.order_by({'link_1': 'label'})
    assert links.all() == [[big.pk, calc.pk, 'x', 'input_calc'], [small.pk, calc.pk, 'y', 'input_calc']]
    assert links.get_used_tags() == ['link_1']
    assert links.as_dict()['path'][0]['entity_type'] == 'link'
    assert QueryBuilder.from_dict(links.as_dict(), storage).all() == links.all()
    only_y = QueryBuilder(storage, path=['link'], filters={'link_1': {'label': 'y'}})
    (row,) = only_y.all(flat=True)
    assert (row['input_id'], row['output_id'], row['label']) == (small.pk, calc.pk, 'y')
    assert QueryBuilder(storage).append(entity_type='link', filters={'type': 'create'}).count() == 0
    with pytest.raises(QueryError, match='link'):
        QueryBuilder(storage).append(entity_type='link').append(Node)


def test_inputs_outputs_children_parents(storage: EntityStorage) -> None:
    small, big, calc, _ = _graph(storage)
    inputs = QueryBuilder(storage).append(CalcJobNode).inputs(project='id', tag='i').order_by({'i': 'id'})
    assert inputs.all(flat=True) == [small.pk, big.pk]
    outputs = QueryBuilder(storage).append(Dict, filters={'id': small.pk}).outputs(cls=CalcJobNode, project='id')
    assert outputs.all(flat=True) == [calc.pk]
    children = QueryBuilder(storage).append(Dict, filters={'id': big.pk}).children(project='id')
    assert children.all(flat=True) == [calc.pk]
    parents = QueryBuilder(storage).append(CalcJobNode).parents(project='id', tag='p').order_by({'p': 'id'})
    assert parents.all(flat=True) == [small.pk, big.pk]
    with pytest.raises(QueryError, match='append'):
        QueryBuilder(storage).outputs()


def test_dates_filter_times_and_entity_names_ignore_case(storage: EntityStorage) -> None:
    """A datetime.date in a filter is the first moment of that day here; 'User', 'Computer' name entities too."""
    now = datetime.datetime.now(datetime.timezone.utc)
    Dict({'old': 1}, ctime=now - datetime.timedelta(days=3), storage=storage).store()
    recent = Dict({'old': 0}, ctime=now - datetime.timedelta(days=1), storage=storage).store()
    since_yesterday = {'ctime': {'>': datetime.date.today() - datetime.timedelta(days=1)}}
    qb = QueryBuilder(storage).append(Dict, filters=since_yesterday, project='id')
    assert qb.all(flat=True) == [recent.pk]
    assert QueryBuilder.from_dict(qb.as_dict(), storage).all(flat=True) == [recent.pk]
    assert QueryBuilder(storage).append(entity_type='User').count() == 1


def test_an_entity_filters_the_column_referring_to_it(storage: EntityStorage) -> None:
    """As aiida-core: {'user': user} filters user_id by the user's pk."""
    other = User('filter@example.com', storage=storage).store()
    mine = Int(1, user=other, storage=storage).store()
    Int(2, storage=storage).store()
    qb = QueryBuilder(storage).append(Int, filters={'user': other}, project='id')
    assert qb.all(flat=True) == [mine.pk]
    assert qb.as_dict()['filters']['Int_1']['user_id'] == other.pk


def test_str_writes_the_whole_query() -> None:
    text = str(QueryBuilder().append(Int, filters={'attributes.value': 3}, project='id').limit(2))
    assert text.startswith("QueryBuilder(path=[{'entity_type': 'data.core.int.Int.'")
    assert "'Int_1': {'node_type': {'like': 'data.core.int.%'}, 'attributes.value': 3}" in text
    assert 'limit=2' in text
    assert repr(QueryBuilder().append(Int)) == '<QueryBuilder: Int_1>'


def _parent_and_children(storage: EntityStorage) -> tuple[Int, Int]:
    """``parent`` with two calculation outputs' worth of inputs (one good, one bad), and ``lonely`` with none."""
    parent = Int(1, label='parent', storage=storage)
    lonely = Int(2, label='lonely', storage=storage)
    good = CalcJobNode(label='good', storage=storage)
    good.base.attributes.set('good', True)
    bad = CalcJobNode(label='bad', storage=storage)
    bad.base.attributes.set('good', False)
    good.base.links.add_incoming(parent, LinkType.INPUT_CALC, 'x')
    bad.base.links.add_incoming(parent, LinkType.INPUT_CALC, 'y')
    store_nodes([parent, lonely, good, bad], storage=storage)
    return parent, lonely


def test_outer_join_keeps_unmatched_rows_and_filters_select_rows(storage: EntityStorage) -> None:
    """outerjoin=True keeps a row without a match (None); the joined entity's and edge's filters select rows after
    the join, as aiida-core's, so a filter on them drops the unmatched rows unless it lets None through."""
    _parent_and_children(storage)

    def labels(**options: Any) -> list[list[Any]]:
        qb = QueryBuilder(storage).append(Int, tag='i', project='label')
        qb.append(CalcJobNode, with_incoming='i', outerjoin=True, project='label', **options)
        return sorted(qb.all(), key=str)

    assert labels() == [['lonely', None], ['parent', 'bad'], ['parent', 'good']]
    assert labels(filters={'attributes.good': True}) == [['parent', 'good']]
    assert labels(edge_filters={'label': 'y'}) == [['parent', 'bad']]
    assert labels(filters={'or': [{'attributes.good': True}, {'id': None}]}) == [['lonely', None], ['parent', 'good']]
    qb = QueryBuilder(storage).append(Int, tag='i', project='label')
    qb.append(CalcJobNode, with_incoming='i', outerjoin=True, project='label')
    assert sorted(QueryBuilder.from_dict(qb.as_dict(), storage).all(), key=str) == labels()


def test_a_node_type_filter_replaces_the_class(storage: EntityStorage) -> None:
    """As aiida-core: filters={'node_type': ...} on an entity appended as a class replaces the class's own filter."""
    number = Int(3, storage=storage).store()
    Dict({'a': 1}, storage=storage).store()
    qb = QueryBuilder(storage).append(Dict, filters={'node_type': 'data.core.int.Int.'})
    assert qb.all(flat=True) == [number]
    qb = QueryBuilder(storage).append(Dict, tag='d', project='id').add_filter('d', {'node_type': {'like': 'data.%'}})
    assert len(qb.all()) == 2
    nested = QueryBuilder(storage).append(Dict, filters={'and': [{'node_type': 'data.core.int.Int.'}]})
    assert nested.count() == 0
