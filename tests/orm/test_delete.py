"""Deleting nodes along the provenance graph with aiida-core's DELETE rules, computed by the storage."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from orm_helpers import counts, object_count

from provstore.orm import (
    DELETE_RULES,
    CalcJobNode,
    Data,
    Group,
    Int,
    LinkType,
    Log,
    Node,
    NotExistentError,
    WorkChainNode,
    delete_nodes,
    get_nodes_delete,
    store_nodes,
)
from provstore.storage import EntityStorage


@dataclass
class Graph:
    """A small provenance graph: ``data -> calculation -> result``, run by ``workflow`` which returns ``result``.

    ``workflow`` also calls ``sub`` (a workflow) with input ``other`` (a data node that nothing else uses).
    """

    data: Node
    calculation: Node
    result: Node
    workflow: Node
    sub: Node
    other: Node

    def pks(self, *names: str) -> set[int]:
        """Return the pks of the named nodes."""
        return {getattr(self, name).pk for name in names}


@pytest.fixture
def graph(storage: EntityStorage) -> Graph:
    """Store the graph of :class:`Graph` and return it."""
    data, other = Int(1, storage=storage), Int(2, storage=storage)
    workflow = WorkChainNode(storage=storage)
    workflow.base.links.add_incoming(data, LinkType.INPUT_WORK, 'x')
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'step')
    result = Int(3, storage=storage)
    result.base.repository.put_object_from_bytes(b'result file', 'result.txt')
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    sub = WorkChainNode(storage=storage)
    sub.base.links.add_incoming(workflow, LinkType.CALL_WORK, 'sub')
    sub.base.links.add_incoming(other, LinkType.INPUT_WORK, 'y')
    store_nodes([data, other, workflow, calculation, result, sub], storage)
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    return Graph(data, calculation, result, workflow, sub, other)


def test_the_rules_are_aiida_cores() -> None:
    """The DELETE rules have aiida-core's defaults and toggleability."""
    toggleable = {name for name, rule in DELETE_RULES.items() if rule.toggleable}
    followed = {name for name, rule in DELETE_RULES.items() if rule.default}
    assert toggleable == {'create_forward', 'call_calc_forward', 'call_work_forward'}
    assert followed == {
        'input_calc_forward',
        'create_forward',
        'create_backward',
        'return_backward',
        'input_work_forward',
        'call_calc_forward',
        'call_calc_backward',
        'call_work_forward',
        'call_work_backward',
    }


def test_deleting_an_input_deletes_everything_downstream(storage: EntityStorage, graph: Graph) -> None:
    """An input takes its calculation, what that created, and the workflows that used or called them."""
    assert delete_nodes([graph.data.pk], storage=storage) == graph.pks(  # type: ignore[list-item]
        'data', 'calculation', 'result', 'workflow', 'sub'
    )


def test_deleting_an_output_keeps_the_inputs(storage: EntityStorage, graph: Graph) -> None:
    """An output takes its creator and the callers of that, never the inputs (input_calc_backward is off)."""
    expected = graph.pks('result', 'calculation', 'workflow', 'sub')
    assert get_nodes_delete([graph.result.pk], storage) == expected  # type: ignore[list-item]


def test_toggleable_rules(storage: EntityStorage, graph: Graph) -> None:
    """create_forward, call_calc_forward and call_work_forward can be switched off."""
    assert delete_nodes(
        [graph.calculation.pk],  # type: ignore[list-item]
        storage=storage,
        create_forward=False,
        call_work_forward=False,
    ) == graph.pks('calculation', 'workflow')
    assert delete_nodes([graph.workflow.pk], storage=storage, call_calc_forward=False) == graph.pks(  # type: ignore[list-item]
        'workflow', 'sub'
    )


@pytest.mark.parametrize(
    ('rules', 'error', 'match'),
    [
        ({'input_calc_forward': False}, ValueError, "delete rule 'input_calc_forward' is fixed to True"),
        ({'return_forward': True}, ValueError, "delete rule 'return_forward' is fixed to False"),
        ({'sideways': True}, ValueError, "unknown delete rule 'sideways'"),
        ({'create_forward': 'no'}, TypeError, "delete rule 'create_forward' must be True or False"),
    ],
)
def test_bad_rules_are_refused(
    storage: EntityStorage, graph: Graph, rules: dict[str, object], error: type[Exception], match: str
) -> None:
    """Fixed rules cannot change and unknown rules are refused; nothing is deleted."""
    before = counts(storage)
    with pytest.raises(error, match=match):
        delete_nodes([graph.data.pk], dry_run=False, storage=storage, **rules)  # type: ignore[arg-type, list-item]
    assert counts(storage) == before


def test_a_dry_run_deletes_nothing(storage: EntityStorage, graph: Graph) -> None:
    """The default is a dry run: it returns what would go and deletes nothing."""
    before = counts(storage)
    assert len(delete_nodes([graph.data.pk], storage=storage)) == 5  # type: ignore[list-item]
    assert counts(storage) == before


def test_missing_pks_are_refused(storage: EntityStorage, graph: Graph) -> None:
    """Asking to delete a pk that is no node raises, naming it, and deletes nothing."""
    before = counts(storage)
    with pytest.raises(NotExistentError, match='No node with pk 98765; nothing deleted'):
        delete_nodes([graph.data.pk, 98765], dry_run=False, storage=storage)  # type: ignore[list-item]
    assert counts(storage) == before
    assert delete_nodes([], dry_run=False, storage=storage) == set()


def test_deleting_removes_rows_and_keeps_files(storage: EntityStorage, graph: Graph) -> None:
    """A real delete removes the nodes with their links, memberships, comments and logs; files stay."""
    group = Group('g', storage=storage).store()
    group.add_nodes([graph.result, graph.other])
    graph.result.base.comments.add('doomed')
    Log(graph.calculation, 'aiida', 'REPORT', 'doomed').store()
    objects = object_count(storage)
    deleted = delete_nodes([graph.result.pk], dry_run=False, storage=storage)  # type: ignore[list-item]
    assert deleted == graph.pks('result', 'calculation', 'workflow', 'sub')
    assert {node.pk for node in Node.collection(storage).all()} == graph.pks('data', 'other')
    assert counts(storage)['link'] == 0
    assert [node.pk for node in group.nodes] == [graph.other.pk]
    assert counts(storage)['comment'] == 0 and counts(storage)['log'] == 0
    assert object_count(storage) == objects
    assert isinstance(Node.collection(storage).get(pk=graph.data.pk), Data)
