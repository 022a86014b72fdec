"""One rule for every backend, checked by the ORM before anything is written (``provstore.orm.validation``).

No NUL character in any string or JSON key, no JSON integer beyond signed 64 bits, no text longer than its column
in aiida-core's schema: each is a :class:`ValidationError` naming the entity, the field and the JSON path, the same
on ``sqlite_dos`` and ``psql_dos``, and nothing (row or file) is written. Queries with such values are a
``QueryError`` raised by the QueryBuilder before compiling. Written against the ORM and ``EntityStorage`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from orm_helpers import counts, object_count

from provstore.exceptions import QueryError, ValidationError
from provstore.orm import Computer, Data, Dict, Group, Node, QueryBuilder, User, store_nodes
from provstore.storage import EntityStorage

BIG = 2**70
"""An integer beyond signed 64 bits."""

BAD_NODES: dict[str, tuple[Callable[[], Node], str]] = {
    'label of a million characters': (
        lambda: Data(label='x' * 1_000_000),
        r'label has 1000000 characters, more than the 255 its column holds',
    ),
    'label of 256 characters': (lambda: Data(label='y' * 256), r'label has 256 characters, more than the 255'),
    'NUL in the label': (lambda: Data(label='a\x00b'), r'label contains a NUL character'),
    'NUL in the description': (lambda: Data(description='a\x00b'), r'description contains a NUL character'),
    'NUL in an attribute value': (lambda: Dict({'a': {'b': ['ok', 'x\x00']}}), r'attributes\.a\.b\[1\] contains a NUL'),
    'NUL in an attribute key': (lambda: Dict({'a': {'k\x00': 1}}), r"attributes\.a: the key 'k\\x00' contains a NUL"),
    'NUL in a top-level attribute key': (lambda: Dict({'k\x00': 1}), r"attributes: the key 'k\\x00' contains a NUL"),
    'integer beyond 64 bits': (lambda: Dict({'x': BIG}), r'attributes\.x is 1180591620717411303424, outside the'),
    'integer below 64 bits': (lambda: Dict({'x': [-(2**63) - 1]}), r'attributes\.x\[0\] is -9223372036854775809'),
    'huge integer': (lambda: Dict({'x': 10**5000}), r'attributes\.x is an integer of 16610 bits, outside'),
    'NUL in an extra': (lambda: _with_extra(Data(), 'e', 'v\x00'), r'extras\.e contains a NUL character'),
    'integer beyond 64 bits in an extra': (lambda: _with_extra(Data(), 'e', {'n': BIG}), r'extras\.e\.n is '),
}


def load_node(pk: int | None) -> Node:
    """Return the stored node ``pk`` read afresh from the loaded profile's storage."""
    return Node.collection.get(pk=pk)


def _with_extra(node: Node, key: str, value: Any) -> Node:
    node.base.extras.set(key, value)
    return node


@pytest.mark.parametrize('case', list(BAD_NODES))
@pytest.mark.parametrize('how', ['store', 'store_nodes'])
def test_a_bad_node_is_refused_before_anything_is_written(storage: EntityStorage, case: str, how: str) -> None:
    """A node breaking a rule is refused with a ValidationError naming the node, field and path; nothing is written.

    Alone (``store``) or in a batch after a good node (``store_nodes``), with a file to store: no row and no object.
    """
    make, message = BAD_NODES[case]
    node = make()
    node.base.repository.put_object_from_bytes(b'never written', 'file.txt')
    before, objects = counts(storage), object_count(storage)
    with pytest.raises(ValidationError, match=rf'^node {node.uuid}: {message}'):
        if how == 'store':
            node.store()
        else:
            store_nodes([Dict({'fine': 1}), node])
    assert counts(storage) == before
    assert object_count(storage) == objects
    assert not node.is_stored


def test_values_at_the_limits_are_stored_and_found(storage: EntityStorage) -> None:
    """A 255-character label and the extreme 64-bit integers are stored, read back and found by queries alike."""
    node = Dict({'low': -(2**63), 'high': 2**63 - 1, 'text': 'é' * 300}, label='z' * 255).store()
    loaded = load_node(node.pk)
    assert loaded.label == 'z' * 255
    assert loaded.base.attributes.get('high') == 2**63 - 1
    assert loaded.base.attributes.get('low') == -(2**63)
    for field, value in (('attributes.high', 2**63 - 1), ('attributes.low', -(2**63)), ('label', 'z' * 255)):
        assert QueryBuilder().append(Dict, filters={field: value}, project='id').all(flat=True) == [node.pk]


@pytest.mark.parametrize(
    ('key', 'value', 'message'),
    [
        ('e', 'v\x00', r'extras\.e contains a NUL character'),
        ('e', [1, BIG], r'extras\.e\[1\] is 1180591620717411303424'),
        ('e', {'k\x00': 1}, r"extras\.e: the key 'k\\x00' contains a NUL"),
    ],
)
def test_extras_of_a_stored_node(storage: EntityStorage, key: str, value: Any, message: str) -> None:
    """Setting a bad extra on a stored node (one key, or all at once) is refused and leaves the stored extras."""
    node = Data().store()
    node.base.extras.set('kept', 1)
    with pytest.raises(ValidationError, match=rf'^node {node.pk}: {message}'):
        node.base.extras.set(key, value)
    with pytest.raises(ValidationError, match=rf'^node {node.pk}: {message}'):
        node.base.extras.reset({'kept': 1, key: value})
    assert load_node(node.pk).base.extras.all == {'kept': 1}


@pytest.mark.parametrize(
    ('make', 'message'),
    [
        (lambda: User('u' * 250 + '@x.org'), r'^user: email has 256 characters, more than the 254'),
        (lambda: User('nul\x00@x.org'), r'^user: email contains a NUL character'),
        (lambda: Computer('c\x00'), r'^computer [0-9a-f-]+: label contains a NUL character'),
        (lambda: Computer('c', 'h' * 256), r'^computer [0-9a-f-]+: hostname has 256 characters'),
        (lambda: Computer('c', metadata={'m': BIG}), r'^computer [0-9a-f-]+: metadata\.m is 1180591620717411303424'),
        (lambda: Group('g' * 256), r'^group [0-9a-f-]+: label has 256 characters, more than the 255'),
        (lambda: Group('g', description='d\x00'), r'^group [0-9a-f-]+: description contains a NUL character'),
    ],
)
def test_other_entities_follow_the_same_rules(storage: EntityStorage, make: Callable[[], Any], message: str) -> None:
    """Users, computers and groups breaking a rule are refused by ``store`` with a ValidationError; nothing written.

    The profile's default user exists first (a group made without a user stores it, whatever the group holds).
    """
    Data().store()
    before = counts(storage)
    with pytest.raises(ValidationError, match=message):
        make().store()
    assert counts(storage) == before


def test_changing_a_stored_entity_follows_the_rules(storage: EntityStorage) -> None:
    """A stored group's label and description are checked when set: refused, and the stored row is unchanged."""
    group = Group('fine').store()
    with pytest.raises(ValidationError, match=rf'^group {group.pk}: label has 300 characters'):
        group.label = 'g' * 300
    with pytest.raises(ValidationError, match=rf'^group {group.pk}: description contains a NUL character'):
        group.description = 'd\x00'
    stored = Group.collection.get(pk=group.pk)
    assert (stored.label, stored.description) == ('fine', '')


@pytest.mark.parametrize(
    'filters',
    [
        {'attributes.x': BIG},
        {'attributes.x': {'==': -(2**64)}},
        {'attributes.x': {'in': [1, BIG]}},
        {'attributes.x': {'>': 10**5000}},
        {'id': {'<': BIG}},
        {'label': 'a\x00b'},
        {'attributes.x': {'like': 'a\x00%'}},
    ],
)
def test_queries_with_values_no_backend_stores_are_refused(storage: EntityStorage, filters: dict[str, Any]) -> None:
    """A filter with an integer beyond 64 bits or a NUL character is a QueryError on every backend, before SQL."""
    Dict({'x': 1}).store()
    with pytest.raises(QueryError, match=r'^the filters of .*(outside the signed 64-bit range|NUL character)'):
        QueryBuilder().append(Node, filters=filters).all()


@pytest.mark.parametrize('what', ['limit', 'offset'])
def test_limit_and_offset_beyond_64_bits_are_refused(storage: EntityStorage, what: str) -> None:
    """A limit or offset beyond signed 64 bits is a QueryError naming it, set directly or from a serialised query."""
    message = rf'^{what} must be at most 9223372036854775807 \(2\*\*63 - 1\), got 1000000000000000000000000000000'
    with pytest.raises(QueryError, match=message):
        getattr(QueryBuilder().append(Node), what)(10**30)
    with pytest.raises(QueryError, match=message):
        QueryBuilder.from_dict({'path': [{'tag': 'n', 'entity_type': 'node'}], what: 10**30})
    assert QueryBuilder().append(Node).limit(2**63 - 1).offset(2**63 - 1).all() == []
