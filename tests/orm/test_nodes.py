"""Nodes: storing and loading, mutable and immutable fields, users and computers, attributes and extras."""

from __future__ import annotations

import datetime
import math
import uuid
from typing import Any

import pytest
from orm_helpers import EMAIL, counts

from provstore.orm import (
    Bool,
    CalcJobNode,
    Computer,
    Data,
    Dict,
    Float,
    Int,
    List,
    ModificationNotAllowedError,
    Node,
    NotExistentError,
    ProcessNode,
    StoringNotAllowedError,
    Str,
    User,
    WorkflowNode,
)
from provstore.storage import EntityStorage


def reload(node: Node) -> Node:
    """Return a fresh object of the stored ``node``, read from its storage."""
    return Node.collection(node.storage).get(pk=node.pk)


@pytest.mark.parametrize(
    ('node_class', 'value', 'attributes'),
    [
        (Int, 5, {'value': 5}),
        (Float, 2.5, {'value': 2.5}),
        (Str, 'text', {'value': 'text'}),
        (Bool, True, {'value': True}),
        (Dict, {'a': 1, 'b': [1, 2.5, None], 'c': {'d': True}}, {'a': 1, 'b': [1, 2.5, None], 'c': {'d': True}}),
        (List, [1, 'two', [3]], {'list': [1, 'two', [3]]}),
    ],
)
def test_data_nodes_round_trip(storage: EntityStorage, node_class: type[Data], value: Any, attributes: Any) -> None:
    """A stored data node loads back as its class, with aiida-core's attributes, by pk and by uuid."""
    node = node_class(value, label='a label', description='a description', storage=storage).store()  # type: ignore[call-arg]
    assert node.is_stored and isinstance(node.pk, int)
    loaded = reload(node)
    assert type(loaded) is node_class
    assert loaded.uuid == node.uuid
    assert loaded.node_type == node_class.NODE_TYPE
    assert loaded.base.attributes.all == attributes
    assert (loaded.label, loaded.description) == ('a label', 'a description')
    assert Node.collection(storage).get(uuid=node.uuid).pk == node.pk
    assert loaded == node and hash(loaded) == hash(node)


def test_value_accessors(storage: EntityStorage) -> None:
    """The data classes give their value back in the natural form."""
    assert Int(3, storage=storage).store().value == 3
    assert Dict({'x': 1}, storage=storage).store().get_dict() == {'x': 1}
    assert List([1, 2], storage=storage).store().get_list() == [1, 2]
    with pytest.raises(ValueError, match='Int needs an integral value'):
        Int(2.5)
    with pytest.raises(TypeError, match='Str needs a string'):
        Str(3)


def test_times_and_default_user(storage: EntityStorage) -> None:
    """Storing sets ctime and mtime (UTC) and, without a user, the profile's default user, created once."""
    before = datetime.datetime.now(datetime.timezone.utc)
    first = Int(1, storage=storage).store()
    second = Int(2, storage=storage).store()
    loaded = reload(first)
    assert loaded.ctime is not None and loaded.mtime is not None
    assert loaded.ctime.tzinfo is not None
    assert before - datetime.timedelta(seconds=5) <= loaded.ctime <= datetime.datetime.now(datetime.timezone.utc)
    assert loaded.user.email == EMAIL
    assert reload(second).user.pk == loaded.user.pk
    assert User.collection(storage).count() == 1


def test_label_and_description_are_saved_at_once(storage: EntityStorage) -> None:
    """Changing the label or description of a stored node writes it at once and moves mtime forward."""
    node = Int(1, label='old', storage=storage).store()
    mtime = reload(node).mtime
    assert mtime is not None
    node.label = 'new'
    node.description = 'described'
    loaded = reload(node)
    assert (loaded.label, loaded.description) == ('new', 'described')
    assert loaded.mtime is not None and loaded.mtime >= mtime


def test_explicit_user_and_computer(storage: EntityStorage) -> None:
    """A node keeps the stored user and computer it was given."""
    user = User('Someone@Example.ORG', first_name='Some', storage=storage).store()
    computer = Computer('cluster', 'cluster.example.org', storage=storage).store()
    node = CalcJobNode(user=user, computer=computer, storage=storage).store()
    loaded = reload(node)
    assert loaded.user.email == 'Someone@example.org'
    assert loaded.computer is not None and loaded.computer.label == 'cluster'


def test_unstored_user_or_computer_is_refused(storage: EntityStorage) -> None:
    """A node whose user or computer is not stored is refused with a clear error, and nothing is written."""
    before = counts(storage)
    with pytest.raises(StoringNotAllowedError, match=r'its user .* is not stored'):
        Int(1, user=User('nobody@example.org'), storage=storage).store()
    with pytest.raises(StoringNotAllowedError, match=r'its computer .* is not stored'):
        CalcJobNode(computer=Computer('nowhere'), storage=storage).store()
    after = counts(storage)
    assert after['node'] == before['node'] == 0
    assert after['computer'] == 0


def test_bare_nodes_are_not_storable(storage: EntityStorage) -> None:
    """A bare Node or ProcessNode cannot be stored (as in aiida-core); nothing is written."""
    for node in (Node(storage=storage), ProcessNode(storage=storage)):
        with pytest.raises(StoringNotAllowedError, match='only data, calculation and workflow nodes can be stored'):
            node.store()
        assert not node.is_stored
    assert counts(storage)['node'] == 0


def test_attributes_are_frozen_once_stored(storage: EntityStorage) -> None:
    """Every way of changing the attributes of a stored data node raises, and nothing is written."""
    node = Dict({'a': 1, 'b': 2}, storage=storage).store()
    attributes = node.base.attributes
    changes = [
        lambda: attributes.set('a', 5),
        lambda: attributes.set_many({'c': 3}),
        lambda: attributes.delete('a'),
        lambda: attributes.delete_many(['a', 'b']),
        lambda: attributes.reset({'z': 0}),
        attributes.clear,
    ]
    for change in changes:
        with pytest.raises(ModificationNotAllowedError, match='the attributes of a stored node are immutable'):
            change()
    with pytest.raises(ModificationNotAllowedError, match='immutable'):
        node['a'] = 2  # type: ignore[index]
    assert node.base.attributes.all == {'a': 1, 'b': 2}
    assert reload(node).base.attributes.all == {'a': 1, 'b': 2}


def test_process_type_user_and_computer_are_frozen_once_stored(storage: EntityStorage) -> None:
    """process_type, user and computer can be set only before storing; nothing is written when refused."""
    node = CalcJobNode(process_type='aiida.calculations:core.arithmetic.add', storage=storage).store()
    with pytest.raises(ModificationNotAllowedError, match='the process_type of a stored node cannot change'):
        node.process_type = 'other'
    with pytest.raises(ModificationNotAllowedError, match='the user of a stored node cannot change'):
        node.user = User('x@example.org', storage=storage)
    with pytest.raises(ModificationNotAllowedError, match='the computer of a stored node cannot change'):
        node.computer = None
    assert reload(node).process_type == 'aiida.calculations:core.arithmetic.add'


def test_process_state_keys_change_until_sealed(storage: EntityStorage) -> None:
    """A stored calculation job may change its state and scheduler keys until sealed; then nothing may change."""
    node = CalcJobNode(storage=storage)
    node.base.attributes.set('resources', {'num_machines': 1})
    node.store()
    node.set_process_state('running')
    node.set_job_id(1234)
    node.set_scheduler_state('running')
    node.set_exit_status(0)
    node.set_process_state('finished')
    with pytest.raises(ModificationNotAllowedError, match=r"the attributes \['resources'\] of a stored process node"):
        node.base.attributes.set('resources', {})
    node.seal()
    loaded = reload(node)
    assert isinstance(loaded, CalcJobNode)
    assert loaded.is_sealed and loaded.is_finished_ok
    assert (loaded.job_id, loaded.base.attributes.get('scheduler_state')) == ('1234', 'running')
    for change in (lambda: node.set_process_state('excepted'), lambda: loaded.set_exit_status(1)):
        with pytest.raises(ModificationNotAllowedError, match='is sealed: its attributes are immutable'):
            change()
    assert reload(node).exit_status == 0
    assert reload(node).process_state == 'finished'


def test_workflow_nodes_cannot_change_calcjob_keys(storage: EntityStorage) -> None:
    """The whitelist is per class: a stored workflow may not change the scheduler keys of calculation jobs."""
    node = WorkflowNode(storage=storage).store()
    node.set_process_state('running')
    with pytest.raises(ModificationNotAllowedError, match=r"\['job_id'\]"):
        node.base.attributes.set('job_id', '1')
    assert 'job_id' not in reload(node).base.attributes


def test_extras_are_always_mutable(storage: EntityStorage) -> None:
    """Extras of a stored (even sealed) node change at once, by key."""
    node = CalcJobNode(storage=storage).store()
    node.seal()
    extras = node.base.extras
    extras.set('a', 1)
    extras.set_many({'b': [1, 2], 'c': {'d': None}})
    extras.delete('a')
    assert reload(node).base.extras.all == {'b': [1, 2], 'c': {'d': None}}
    extras.delete_many(['b'])
    assert reload(node).base.extras.all == {'c': {'d': None}}
    extras.reset({'x': 'y'})
    assert reload(node).base.extras.all == {'x': 'y'}
    extras.clear()
    assert reload(node).base.extras.all == {}
    with pytest.raises(AttributeError, match="has no extra 'missing'"):
        extras.delete('missing')


def test_extras_set_through_two_objects_are_both_kept(storage: EntityStorage) -> None:
    """Two objects of one node setting different extras keep both: each change patches keys, not the column."""
    node = Int(1, storage=storage).store()
    other = reload(node)
    node.base.extras.set('first', 1)
    other.base.extras.set('second', 2)
    assert reload(node).base.extras.all == {'first': 1, 'second': 2}
    node.refresh()
    assert node.base.extras.all == {'first': 1, 'second': 2}


def test_extras_and_attributes_of_unstored_nodes(storage: EntityStorage) -> None:
    """Before storing, attributes and extras are plain local values that are stored with the node."""
    node = Data(storage=storage)
    node.base.attributes.set_many({'a': 1, 'b': (1, 2)})
    node.base.extras.set('tag', 'x')
    assert node.base.attributes.get('b') == [1, 2]
    assert node.base.attributes.get('missing', 'default') == 'default'
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        node.base.attributes.get('missing')
    node.store()
    loaded = reload(node)
    assert loaded.base.attributes.all == {'a': 1, 'b': [1, 2]}
    assert loaded.base.extras.all == {'tag': 'x'}


@pytest.mark.parametrize(
    ('key', 'value', 'error', 'match'),
    [
        ('a.b', 1, ValueError, 'contains "."'),
        ('', 1, ValueError, 'must be a non-empty string'),
        (5, 1, ValueError, 'must be a non-empty string'),
        ('nan', math.nan, ValueError, 'NaN and infinity are not JSON'),
        ('inf', math.inf, ValueError, 'NaN and infinity are not JSON'),
        ('object', object(), TypeError, 'a object cannot be stored'),
        ('set', {1, 2}, TypeError, 'a set cannot be stored'),
        ('intkeys', {1: 'a'}, TypeError, 'keys must be strings'),
    ],
)
def test_invalid_keys_and_values_are_refused(key: Any, value: Any, error: type[Exception], match: str) -> None:
    """Keys must be non-empty strings without dots and values must be JSON; the node is left unchanged."""
    node = Data()
    with pytest.raises(error, match=match):
        node.base.attributes.set(key, value)
    with pytest.raises(error, match=match):
        node.base.extras.set(key, value)
    assert node.base.attributes.all == {} and node.base.extras.all == {}


def test_unknown_node_types_are_kept_verbatim(storage: EntityStorage) -> None:
    """Nodes of kinds no class knows load as the nearest kind and keep node_type and process_type verbatim."""
    data = Node.from_row(
        {'uuid': str(uuid.uuid4()), 'node_type': 'data.quantumespresso.foo.Bar.', 'attributes': {'x': 1}}
    )
    calculation = Node.from_row(
        {
            'uuid': str(uuid.uuid4()),
            'node_type': 'process.calculation.calcjob.X.',
            'process_type': 'aiida.calculations:quantumespresso.pw',
        }
    )
    assert type(data) is Data and type(calculation) is CalcJobNode
    Node.collection(storage).store_many([data, calculation])
    loaded_data, loaded_calculation = reload(data), reload(calculation)
    assert type(loaded_data) is Data
    assert loaded_data.node_type == 'data.quantumespresso.foo.Bar.'
    assert loaded_data.base.attributes.all == {'x': 1}
    assert type(loaded_calculation) is CalcJobNode
    assert loaded_calculation.node_type == 'process.calculation.calcjob.X.'
    assert loaded_calculation.process_type == 'aiida.calculations:quantumespresso.pw'
    clone = loaded_data.clone()
    assert clone.node_type == 'data.quantumespresso.foo.Bar.' and clone.uuid != loaded_data.uuid
    clone.store()
    assert reload(clone).node_type == 'data.quantumespresso.foo.Bar.'


def test_from_row_keeps_times_and_uuid(storage: EntityStorage) -> None:
    """A node made from another storage's row keeps its uuid, ctime and mtime when stored (archive import)."""
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    node_uuid = str(uuid.uuid4())
    node = Node.from_row({'uuid': node_uuid, 'node_type': 'data.core.int.Int.', 'ctime': when, 'mtime': when})
    assert isinstance(node, Int)
    Node.collection(storage).store_many([node])
    loaded = Node.collection(storage).get(uuid=node_uuid)
    assert (loaded.ctime, loaded.mtime) == (when, when)


def test_missing_nodes_raise(storage: EntityStorage) -> None:
    """Looking up a node that does not exist raises NotExistentError naming what was asked."""
    with pytest.raises(NotExistentError, match='No Node with pk=12345'):
        Node.collection(storage).get(pk=12345)
    Dict({}, storage=storage).store()
    with pytest.raises(NotExistentError, match='No Int with pk='):
        Int.collection(storage).get(pk=Node.collection(storage).all()[0].pk)
