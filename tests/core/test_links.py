"""The link rules of the provenance graph: kinds joined by each type, degrees, labels."""

from __future__ import annotations

import pytest

from provstore.orm.links import LINK_RULES, Link, LinkType, LinkValidationError, NodeKind, node_kind, validate_links

TYPES = {
    'd1': 'data.core.int.Int.',
    'd2': 'data.core.dict.Dict.',
    'd3': 'data.some.plugin.Unknown.',
    'c1': 'process.calculation.calcjob.CalcJobNode.',
    'c2': 'process.calculation.calcfunction.CalcFunctionNode.',
    'w1': 'process.workflow.workchain.WorkChainNode.',
    'w2': 'process.workflow.workfunction.WorkFunctionNode.',
    'p': 'process.ProcessNode.',
    'n': '',
}

GOOD = {
    LinkType.CREATE: ('c1', 'd1'),
    LinkType.RETURN: ('w1', 'd1'),
    LinkType.INPUT_CALC: ('d1', 'c1'),
    LinkType.INPUT_WORK: ('d1', 'w1'),
    LinkType.CALL_CALC: ('w1', 'c1'),
    LinkType.CALL_WORK: ('w1', 'w2'),
}


def test_node_kinds_from_type_strings() -> None:
    """Kinds come from the node_type prefix, including types no installed plugin knows."""
    assert node_kind('data.some.plugin.Unknown.') is NodeKind.DATA
    assert node_kind('process.calculation.calcjob.CalcJobNode.') is NodeKind.CALCULATION
    assert node_kind('process.workflow.workchain.WorkChainNode.') is NodeKind.WORKFLOW
    assert node_kind('process.ProcessNode.') is None
    assert node_kind('') is None


@pytest.mark.parametrize('link_type', list(LinkType))
def test_each_type_accepts_its_kinds(link_type: LinkType) -> None:
    """Each link type accepts the source and target kinds of its rule."""
    source, target = GOOD[link_type]
    validate_links([Link(source, target, link_type, 'label')], TYPES)


@pytest.mark.parametrize('link_type', list(LinkType))
@pytest.mark.parametrize('source', sorted(TYPES))
@pytest.mark.parametrize('target', sorted(TYPES))
def test_each_type_refuses_other_kinds(link_type: LinkType, source: str, target: str) -> None:
    """Every pair of kinds not in the rule is refused, naming the side and the node's type."""
    rule = LINK_RULES[link_type]
    if source == target:
        with pytest.raises(LinkValidationError, match='cannot link to itself'):
            validate_links([Link(source, target, link_type, 'x')], TYPES)
        return
    if node_kind(TYPES[source]) is rule.source and node_kind(TYPES[target]) is rule.target:
        validate_links([Link(source, target, link_type, 'x')], TYPES)
        return
    with pytest.raises(LinkValidationError, match=r'the (source|target) must be a (data|calculation|workflow) node'):
        validate_links([Link(source, target, link_type, 'x')], TYPES)


@pytest.mark.parametrize('label', ['', '_x', 'x_', 'a-b', 'a.b', 'ü', 3, None, 'a b'])
def test_bad_labels(label: object) -> None:
    """Labels must be letters, digits and underscores, not starting or ending with one."""
    with pytest.raises(LinkValidationError, match='invalid link label'):
        validate_links([Link('d1', 'c1', LinkType.INPUT_CALC, label)], TYPES)  # type: ignore[arg-type]


def test_good_labels() -> None:
    """Nested namespaces use a double underscore inside the label."""
    validate_links([Link('d1', 'c1', LinkType.INPUT_CALC, 'parameters__kpoints_2')], TYPES)


def test_unknown_node() -> None:
    """A link to a node whose type is not given is refused."""
    with pytest.raises(LinkValidationError, match='node ghost is unknown'):
        validate_links([Link('ghost', 'c1', LinkType.INPUT_CALC, 'x')], TYPES)


def test_create_target_has_one_creator() -> None:
    """A data node is created once (indegree unique), whatever the label, in the batch or already stored."""
    with pytest.raises(LinkValidationError, match='already has an incoming create link \\(only one is allowed\\)'):
        validate_links([Link('c1', 'd1', LinkType.CREATE, 'a'), Link('c2', 'd1', LinkType.CREATE, 'b')], TYPES)
    with pytest.raises(LinkValidationError, match='node d1 already has an incoming create link'):
        validate_links([Link('c2', 'd1', LinkType.CREATE, 'b')], TYPES, stored=[Link('c1', 'd1', LinkType.CREATE, 'a')])


def test_create_labels_unique_per_calculation() -> None:
    """A calculation creates at most one output per label (outdegree unique_pair); different labels are fine."""
    validate_links([Link('c1', 'd1', LinkType.CREATE, 'a'), Link('c1', 'd2', LinkType.CREATE, 'b')], TYPES)
    with pytest.raises(LinkValidationError, match="node c1 already has an outgoing create link labelled 'a'"):
        validate_links([Link('c1', 'd1', LinkType.CREATE, 'a'), Link('c1', 'd2', LinkType.CREATE, 'a')], TYPES)


def test_inputs_unique_per_label_on_the_process() -> None:
    """A process takes one input per label (indegree unique_pair); one data may feed many labels and processes."""
    validate_links(
        [
            Link('d1', 'c1', LinkType.INPUT_CALC, 'x'),
            Link('d1', 'c1', LinkType.INPUT_CALC, 'y'),
            Link('d1', 'c2', LinkType.INPUT_CALC, 'x'),
        ],
        TYPES,
    )
    with pytest.raises(LinkValidationError, match="node c1 already has an incoming input_calc link labelled 'x'"):
        validate_links([Link('d1', 'c1', LinkType.INPUT_CALC, 'x'), Link('d2', 'c1', LinkType.INPUT_CALC, 'x')], TYPES)
    with pytest.raises(LinkValidationError, match=r'labelled .x. to the same node'):
        validate_links([Link('d1', 'c1', LinkType.INPUT_CALC, 'x')] * 2, TYPES)


def test_return_may_repeat_data_under_other_labels() -> None:
    """Workflows may return the same data under several labels, and several workflows may return it."""
    validate_links(
        [
            Link('w1', 'd1', LinkType.RETURN, 'a'),
            Link('w1', 'd1', LinkType.RETURN, 'b'),
            Link('w2', 'd1', LinkType.RETURN, 'a'),
        ],
        {**TYPES, 'w2': 'process.workflow.workchain.WorkChainNode.'},
    )
    with pytest.raises(LinkValidationError, match="outgoing return link labelled 'a'"):
        validate_links([Link('w1', 'd1', LinkType.RETURN, 'a'), Link('w1', 'd2', LinkType.RETURN, 'a')], TYPES)


def test_a_process_has_one_caller() -> None:
    """A calculation or workflow is called by at most one workflow (call_calc and call_work indegree unique)."""
    workflows = {**TYPES, 'w3': 'process.workflow.workchain.WorkChainNode.'}
    with pytest.raises(LinkValidationError, match='incoming call_calc link \\(only one is allowed\\)'):
        validate_links([Link('w1', 'c1', LinkType.CALL_CALC, 'a'), Link('w2', 'c1', LinkType.CALL_CALC, 'b')], TYPES)
    with pytest.raises(LinkValidationError, match='incoming call_work link'):
        validate_links(
            [Link('w1', 'w2', LinkType.CALL_WORK, 'a')], workflows, stored=[Link('w3', 'w2', LinkType.CALL_WORK, 'b')]
        )


def test_stored_links_of_other_types_do_not_count() -> None:
    """Degrees are per link type: an existing create link does not block a return link to the same data."""
    validate_links([Link('w1', 'd1', LinkType.RETURN, 'a')], TYPES, stored=[Link('c1', 'd1', LinkType.CREATE, 'a')])
