"""Links between nodes: every rule of the provenance graph gives a clear error, and nothing is written then."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from orm_helpers import counts, object_count

from provstore.orm import (
    CalcFunctionNode,
    CalcJobNode,
    CalculationNode,
    Data,
    Int,
    LinkType,
    LinkValidationError,
    ModificationNotAllowedError,
    Node,
    StoringNotAllowedError,
    WorkChainNode,
    WorkflowNode,
    store_nodes,
)
from provstore.storage import EntityStorage


def reload(node: Node) -> Node:
    """Return a fresh object of the stored ``node``, read from its storage."""
    return Node.collection(node.storage).get(pk=node.pk)


@pytest.fixture
def unchanged(storage: EntityStorage) -> Iterator[None]:
    """Assert that the test wrote no row and no repository object after this fixture was set up."""
    before, objects = counts(storage), object_count(storage)
    yield
    assert counts(storage) == before
    assert object_count(storage) == objects


def test_a_full_provenance_graph(storage: EntityStorage) -> None:
    """All six link types, stored with their nodes, read back from both ends."""
    structure = Int(1, storage=storage)
    workflow = WorkChainNode(storage=storage)
    workflow.base.links.add_incoming(structure, LinkType.INPUT_WORK, 'structure')
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(structure, 'input_calc', 'structure')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'step1')
    sub = WorkflowNode(storage=storage)
    sub.base.links.add_incoming(workflow, LinkType.CALL_WORK, 'sub')
    result = Int(2, storage=storage)
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    store_nodes([result, sub, calculation, workflow, structure], storage)
    returned = reload(result)
    returned.base.links.add_incoming(reload(workflow), LinkType.RETURN, 'result')

    incoming = reload(calculation).base.links.get_incoming()
    assert sorted((t.link_type.value, t.link_label, t.node.uuid) for t in incoming) == sorted(
        [('input_calc', 'structure', structure.uuid), ('call_calc', 'step1', workflow.uuid)]
    )
    outgoing = reload(workflow).base.links.get_outgoing()
    assert sorted((t.link_type.value, t.link_label) for t in outgoing) == [
        ('call_calc', 'step1'),
        ('call_work', 'sub'),
        ('return', 'result'),
    ]
    assert reload(workflow).base.links.get_outgoing(link_type=LinkType.RETURN).one().node.uuid == result.uuid
    creator = reload(result).base.links.get_incoming(node_class=CalculationNode).one().node
    assert creator.uuid == calculation.uuid
    assert reload(structure).base.links.get_outgoing(link_label_filter='structure').all_link_labels() == [
        'structure',
        'structure',
    ]
    assert reload(calculation).base.links.get_incoming().get_node_by_label('step1').uuid == workflow.uuid


def test_incoming_links_of_an_unstored_node_are_stored_with_it(storage: EntityStorage) -> None:
    """Links added to an unstored node are listed before storing and written by its store()."""
    source = Int(1, storage=storage).store()
    calculation = CalcFunctionNode(storage=storage)
    calculation.base.links.add_incoming(source, LinkType.INPUT_CALC, 'x')
    assert calculation.base.links.get_incoming().all_nodes() == [source]
    assert counts(storage)['link'] == 0
    calculation.store()
    assert counts(storage)['link'] == 1
    assert reload(source).base.links.get_outgoing().one().node.uuid == calculation.uuid


@pytest.mark.parametrize(
    ('make_source', 'make_target', 'link_type', 'match'),
    [
        (Data, Data, LinkType.INPUT_CALC, 'the target must be a calculation node'),
        (CalcJobNode, CalcJobNode, LinkType.INPUT_CALC, 'the source must be a data node'),
        (CalcJobNode, CalcJobNode, LinkType.CREATE, 'the target must be a data node'),
        (WorkflowNode, Data, LinkType.CREATE, 'the source must be a calculation node'),
        (CalcJobNode, Data, LinkType.RETURN, 'the source must be a workflow node'),
        (Data, CalcJobNode, LinkType.INPUT_WORK, 'the target must be a workflow node'),
        (WorkflowNode, WorkflowNode, LinkType.CALL_CALC, 'the target must be a calculation node'),
        (CalcJobNode, WorkflowNode, LinkType.CALL_WORK, 'the source must be a workflow node'),
    ],
)
def test_link_types_join_only_their_kinds(
    storage: EntityStorage,
    make_source: Callable[..., Node],
    make_target: Callable[..., Node],
    link_type: LinkType,
    match: str,
) -> None:
    """Each link type joins only its kinds of node: anything else is refused when the link is added."""
    source = make_source(storage=storage).store()
    target = make_target(storage=storage)
    expected = counts(storage)
    with pytest.raises(LinkValidationError, match=match):
        target.base.links.add_incoming(source, link_type, 'label')
    assert target.base.links.get_incoming().all() == []
    assert counts(storage) == expected


@pytest.mark.parametrize('label', ['', '_leading', 'trailing_', 'with-dash', 'with space', 'dotted.label', 5])
def test_invalid_labels_are_refused(storage: EntityStorage, unchanged: None, label: object) -> None:
    """A label must be letters, digits and ``_``, not starting or ending with ``_``."""
    target = CalcJobNode(storage=storage)
    with pytest.raises(LinkValidationError, match='invalid link label'):
        target.base.links.add_incoming(Data(storage=storage), LinkType.INPUT_CALC, label)  # type: ignore[arg-type]


def test_unknown_link_types_and_self_links_are_refused(storage: EntityStorage, unchanged: None) -> None:
    """Unknown link types and links from a node to itself are refused."""
    workflow = WorkflowNode(storage=storage)
    with pytest.raises(LinkValidationError, match="unknown link type 'feeds'"):
        workflow.base.links.add_incoming(Data(storage=storage), 'feeds', 'x')
    with pytest.raises(LinkValidationError, match='a node cannot link to itself'):
        workflow.base.links.add_incoming(workflow, LinkType.CALL_WORK, 'me')
    with pytest.raises(TypeError, match='the source of a link must be a node'):
        workflow.base.links.add_incoming('not a node', LinkType.CALL_WORK, 'x')  # type: ignore[arg-type]


def test_data_is_created_once(storage: EntityStorage) -> None:
    """CREATE: a data node has at most one creator, counting a creator already stored."""
    first, second = CalcJobNode(storage=storage).store(), CalcJobNode(storage=storage).store()
    data = Data(storage=storage)
    data.base.links.add_incoming(first, LinkType.CREATE, 'out')
    with pytest.raises(LinkValidationError, match='already has an incoming create link'):
        data.base.links.add_incoming(second, LinkType.CREATE, 'other')
    data.store()
    before = counts(storage)
    with pytest.raises(LinkValidationError, match=r'already has an incoming create link \(only one is allowed\)'):
        data.base.links.add_incoming(second, LinkType.CREATE, 'other')
    assert counts(storage) == before
    assert [t.node.uuid for t in reload(data).base.links.get_incoming()] == [first.uuid]


def test_outputs_of_a_calculation_have_distinct_labels(storage: EntityStorage) -> None:
    """CREATE: two outputs of one calculation cannot share a label, even when one is stored already."""
    calculation = CalcJobNode(storage=storage).store()
    stored = Data(storage=storage)
    stored.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    stored.store()
    before, objects = counts(storage), object_count(storage)
    other = Data(storage=storage)
    other.base.repository.put_object_from_bytes(b'never written', 'file.txt')
    with pytest.raises(LinkValidationError, match="already has an outgoing create link labelled 'result'"):
        other.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    assert counts(storage) == before and object_count(storage) == objects


@pytest.mark.parametrize(
    ('process_class', 'link_type'), [(CalcJobNode, LinkType.INPUT_CALC), (WorkflowNode, LinkType.INPUT_WORK)]
)
def test_inputs_of_a_process_have_distinct_labels(
    storage: EntityStorage, unchanged: None, process_class: type[Node], link_type: LinkType
) -> None:
    """INPUT_CALC and INPUT_WORK: a process cannot have two inputs with the same label."""
    process = process_class(storage=storage)
    process.base.links.add_incoming(Data(storage=storage), link_type, 'x')
    with pytest.raises(LinkValidationError, match=f"already has an incoming {link_type.value} link labelled 'x'"):
        process.base.links.add_incoming(Data(storage=storage), link_type, 'x')
    assert len(process.base.links.get_incoming()) == 1


def test_a_process_is_called_once(storage: EntityStorage) -> None:
    """CALL_CALC and CALL_WORK: a process has at most one caller."""
    caller, other = WorkflowNode(storage=storage).store(), WorkflowNode(storage=storage).store()
    before = counts(storage)
    for callee, link_type in ((CalcJobNode(storage=storage), LinkType.CALL_CALC), (WorkflowNode(), LinkType.CALL_WORK)):
        callee.base.links.add_incoming(caller, link_type, 'first')
        with pytest.raises(LinkValidationError, match=f'already has an incoming {link_type.value} link'):
            callee.base.links.add_incoming(other, link_type, 'second')
    assert counts(storage) == before


def test_returned_data_labels_are_unique_per_workflow(storage: EntityStorage) -> None:
    """RETURN: a workflow cannot return two nodes under the same label."""
    workflow = WorkflowNode(storage=storage).store()
    first, second = Data(storage=storage).store(), Data(storage=storage).store()
    first.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    before = counts(storage)
    with pytest.raises(LinkValidationError, match="already has an outgoing return link labelled 'result'"):
        second.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    assert counts(storage) == before


def test_a_stored_process_takes_no_new_inputs(storage: EntityStorage) -> None:
    """The inputs of a process node are linked before it is stored; afterwards they are refused."""
    calculation = CalcJobNode(storage=storage).store()
    data = Data(storage=storage).store()
    before = counts(storage)
    with pytest.raises(ModificationNotAllowedError, match='inputs of a process node are linked before it is stored'):
        calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'late')
    assert counts(storage) == before


def test_a_sealed_process_takes_no_links(storage: EntityStorage) -> None:
    """Nothing links to or from a sealed process node."""
    calculation = CalcJobNode(storage=storage).store()
    calculation.seal()
    before = counts(storage)
    with pytest.raises(ModificationNotAllowedError, match='is sealed: no link may be added from it'):
        Data(storage=storage).base.links.add_incoming(calculation, LinkType.CREATE, 'late')
    unstored = CalcJobNode(storage=storage)
    unstored.seal()
    with pytest.raises(ModificationNotAllowedError, match='is sealed: no link may be added to it'):
        unstored.base.links.add_incoming(Data(storage=storage), LinkType.INPUT_CALC, 'x')
    assert counts(storage) == before


def test_a_stored_target_needs_a_stored_source(storage: EntityStorage) -> None:
    """A link to a stored node is written at once, so its source must be stored already."""
    data = Data(storage=storage).store()
    before = counts(storage)
    with pytest.raises(ModificationNotAllowedError, match='store the source first'):
        data.base.links.add_incoming(CalcJobNode(storage=storage), LinkType.CREATE, 'x')
    assert counts(storage) == before


def test_store_refuses_an_unstored_source(storage: EntityStorage, unchanged: None) -> None:
    """store() needs the sources of pending links stored; it writes nothing, not even files, otherwise."""
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(Data(storage=storage), LinkType.INPUT_CALC, 'x')
    calculation.base.repository.put_object_from_bytes(b'input file', 'aiida.in')
    with pytest.raises(StoringNotAllowedError, match="incoming input_calc link 'x' from the unstored"):
        calculation.store()
    assert not calculation.is_stored


def test_rules_are_checked_again_across_a_batch(storage: EntityStorage) -> None:
    """Links each valid alone but not together are refused when stored together; nothing is written."""
    calculation = CalcJobNode(storage=storage).store()
    first, second = Data(storage=storage), Data(storage=storage)
    for data in (first, second):
        data.base.repository.put_object_from_bytes(b'payload', 'file.txt')
        data.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    before, objects = counts(storage), object_count(storage)
    with pytest.raises(LinkValidationError, match="already has an outgoing create link labelled 'result'"):
        store_nodes([first, second], storage)
    assert counts(storage) == before and object_count(storage) == objects
    assert not first.is_stored and not second.is_stored
    first.store()
    with pytest.raises(LinkValidationError, match="already has an outgoing create link labelled 'result'"):
        second.store()
    assert counts(storage)['node'] == before['node'] + 1
