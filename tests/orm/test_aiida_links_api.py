"""Links as aiida-core users read them, on ``sqlite_dos`` and ``psql_dos``: link triples as tuples, label patterns,
checks without adding, a process's ``inputs``/``outputs`` by label (nested namespaces too), ``creator``, ``caller``
and ``called``; and attribute values cleaned as aiida-core cleans them."""

from __future__ import annotations

import decimal
import fractions

import pytest

from provstore.exceptions import ValidationError
from provstore.orm import (
    CalcFunctionNode,
    Data,
    Dict,
    Int,
    LinkPair,
    LinkTriple,
    LinkType,
    LinkValidationError,
    WorkChainNode,
    store_nodes,
)
from provstore.storage import EntityStorage


def _workflow(storage: EntityStorage) -> tuple[WorkChainNode, CalcFunctionNode, Int, Dict, Int]:
    """A work chain with inputs ``x`` and ``relax__parameters`` calling a calculation that creates ``sum``, which the
    work chain returns as ``result``."""
    x = Int(1, storage=storage)
    parameters = Dict({'cutoff': 30}, storage=storage)
    workflow = WorkChainNode(storage=storage)
    workflow.base.links.add_incoming(x, LinkType.INPUT_WORK, 'x')
    workflow.base.links.add_incoming(parameters, LinkType.INPUT_WORK, 'relax__parameters')
    calculation = CalcFunctionNode(storage=storage)
    calculation.base.links.add_incoming(x, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'add')
    total = Int(2, storage=storage)
    total.base.links.add_incoming(calculation, LinkType.CREATE, 'sum')
    store_nodes([x, parameters, workflow, calculation, total], storage)
    total.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    return workflow, calculation, x, parameters, total


def test_link_triples_are_tuples_and_labels_match_like_patterns(storage: EntityStorage) -> None:
    """A LinkTriple unpacks; link_label_filter is a like pattern; only_uuid gives uuids; stored triples alone."""
    workflow, _, x, parameters, _ = _workflow(storage)
    incoming = workflow.base.links.get_incoming(link_type=LinkType.INPUT_WORK)
    assert {(node.uuid, link_type, label) for node, link_type, label in incoming} == {
        (x.uuid, LinkType.INPUT_WORK, 'x'),
        (parameters.uuid, LinkType.INPUT_WORK, 'relax__parameters'),
    }
    assert workflow.base.links.get_incoming(link_label_filter='relax%').all_nodes() == [parameters]
    assert workflow.base.links.get_incoming(link_label_filter='_').all_link_labels() == ['x']
    assert workflow.base.links.get_incoming(link_label_filter='relax\\_\\_parameters').all_nodes() == [parameters]
    assert workflow.base.links.get_incoming(link_label_filter='relax\\_x%').all() == []
    uuids = workflow.base.links.get_incoming(link_label_filter='x', only_uuid=True).all()
    assert uuids == [LinkTriple(x.uuid, LinkType.INPUT_WORK, 'x')]
    assert workflow.base.links.get_outgoing().all_link_pairs() == [
        LinkPair(LinkType.CALL_CALC, 'add'),
        LinkPair(LinkType.RETURN, 'result'),
    ]
    stored = workflow.base.links.get_stored_link_triples(link_direction='outgoing', link_type=LinkType.RETURN)
    assert [triple.link_label for triple in stored] == ['result']
    assert not workflow.base.links.get_outgoing(link_type=LinkType.CREATE)
    with pytest.raises(ValueError, match='no such link'):
        workflow.base.links.get_outgoing(link_type=LinkType.CREATE).one()
    with pytest.raises(ValueError, match='not one'):
        workflow.base.links.get_outgoing().one()


def test_validate_incoming_checks_without_adding(storage: EntityStorage) -> None:
    """validate_incoming and validate_outgoing raise what add_incoming would, and add nothing."""
    _, calculation, x, _, total = _workflow(storage)
    fresh = Data(storage=storage)
    fresh.base.links.validate_incoming(calculation, LinkType.CREATE, 'other')
    calculation.base.links.validate_outgoing(fresh, LinkType.CREATE, 'other')
    assert fresh.base.links.get_incoming().all() == []
    with pytest.raises(LinkValidationError):
        total.base.links.validate_incoming(calculation, LinkType.CREATE, 'again')
    with pytest.raises(TypeError):
        fresh.base.links.validate_incoming(calculation, None, 'x')  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fresh.base.links.validate_incoming(None, LinkType.CREATE, 'x')  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fresh.base.links.validate_incoming(x, LinkType.CREATE, 'x')


def test_process_inputs_outputs_and_calls(storage: EntityStorage) -> None:
    """inputs/outputs by attribute and item, nested namespaces; creator, caller, called, called_descendants."""
    workflow, calculation, x, parameters, total = _workflow(storage)
    assert workflow.inputs.x == x
    assert workflow.inputs['x'] == x
    assert workflow.inputs.relax.parameters == parameters
    assert workflow.inputs.relax['parameters'] == parameters
    assert workflow.inputs['relax__parameters'] == parameters
    assert sorted(workflow.inputs) == ['relax', 'x']
    assert 'x' in workflow.inputs
    assert 'missing' not in workflow.inputs
    assert 'relax' in dir(workflow.inputs)
    assert workflow.outputs.result == total
    assert calculation.inputs.x == x
    assert calculation.outputs.sum == total
    assert getattr(calculation.outputs, 'missing', None) is None
    with pytest.raises(AttributeError, match='missing'):
        _ = calculation.inputs.missing
    with pytest.raises(KeyError, match='missing'):
        _ = workflow.outputs['missing']
    assert total.creator == calculation
    assert x.creator is None
    assert calculation.caller == workflow
    assert workflow.caller is None
    assert workflow.called == [calculation]
    assert workflow.called_descendants == [calculation]
    assert list(workflow.base.links.get_incoming().nested()) == ['x', 'relax']


def test_attribute_values_cleaned_as_aiida_core(storage: EntityStorage) -> None:
    """Decimal and other real numbers become float; a key with '.' raises ValidationError (a ValueError)."""
    node = Data(storage=storage)
    node.base.attributes.set('price', decimal.Decimal('3.25'))
    node.base.attributes.set('ratio', fractions.Fraction(1, 4))
    node.base.extras.set('nested', {'values': [decimal.Decimal('1.5')]})
    node.store()
    assert node.base.attributes.get('price') == 3.25
    assert isinstance(node.base.attributes.get('price'), float)
    assert node.base.attributes.get('ratio') == 0.25
    assert node.base.extras.get('nested') == {'values': [1.5]}
    with pytest.raises(ValidationError, match='contains'):
        node.base.extras.set('a.b', 1)
    with pytest.raises(ValueError, match='cannot be stored'):
        Data(storage=storage).base.attributes.set('nan', decimal.Decimal('NaN'))
