"""``load_node``, ``load_group``, ``load_computer`` and ``load_profile`` as aiida-core users call them, on
``sqlite_dos`` and ``psql_dos``: by pk, uuid (whole, its beginning, without dashes) or label, keyword or guessed."""

from __future__ import annotations

import pytest

from provstore.cli.profile import create_profile
from provstore.exceptions import ConfigError
from provstore.manager import get_manager, load_profile
from provstore.orm import (
    Computer,
    Dict,
    Group,
    Int,
    MultipleObjectsError,
    NotExistentError,
    Str,
    load_computer,
    load_group,
    load_node,
)
from provstore.storage import EntityStorage


def test_load_node_by_each_identifier(storage: EntityStorage) -> None:
    """A whole number is a pk, hexadecimal text a uuid (or its beginning), other text a label; keywords say which."""
    node = Int(5, label='five', storage=storage).store()
    assert node.pk is not None
    for identifier in (node.pk, str(node.pk), node.uuid, node.uuid[:13], node.uuid.replace('-', ''), 'five'):
        loaded = load_node(identifier)
        assert loaded == node, identifier
        assert isinstance(loaded, Int)
    assert load_node(pk=node.pk) == node
    assert load_node(uuid=node.uuid[:13]) == node
    assert load_node(label='five') == node
    assert load_node(node.pk, sub_classes=(Int,)) == node
    with pytest.raises(NotExistentError):
        load_node(node.pk, sub_classes=(Dict,))
    with pytest.raises(NotExistentError):
        load_node(node.pk + 1000)


def test_load_node_refuses_ambiguous_or_missing_identifiers(storage: EntityStorage) -> None:
    """Several matches raise MultipleObjectsError; none or two identifiers ValueError; a pk that is text TypeError."""
    Str('a', label='twin', storage=storage).store()
    Str('b', label='twin', storage=storage).store()
    with pytest.raises(MultipleObjectsError):
        load_node(label='twin')
    with pytest.raises(ValueError, match='exactly one'):
        load_node()
    with pytest.raises(ValueError, match='exactly one'):
        load_node(1, pk=1)
    with pytest.raises(TypeError, match='pk'):
        load_node(pk='1')  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='not a subclass'):
        load_node(1, sub_classes=(Group,))  # type: ignore[arg-type]


def test_load_group_and_computer(storage: EntityStorage) -> None:
    """Groups and computers load by label too; a final ! makes text a label even when it looks like a pk."""
    group = Group(label='runs', storage=storage).store()
    numbered = Group(label='1234', storage=storage).store()
    assert load_group('runs') == group
    assert load_group(group.pk) == group
    assert load_group(uuid=group.uuid) == group
    assert load_group('1234!') == numbered
    computer = Computer(label='cluster', storage=storage).store()
    assert load_computer('cluster') == computer
    assert load_computer(computer.pk) == computer
    with pytest.raises(NotExistentError):
        load_computer('elsewhere')


def test_load_profile_as_aiida_core(storage: EntityStorage) -> None:
    """load_profile() keeps the loaded profile; another one needs allow_switch while the storage is open."""
    loaded = get_manager().get_profile()
    assert loaded is not None
    assert load_profile() is loaded
    assert load_profile(loaded.name) is not None
    create_profile('second', 'sqlite_dos', {}, email='other@example.org')
    with pytest.raises(ConfigError, match='allow_switch'):
        load_profile('second')
    assert load_profile('second', allow_switch=True).name == 'second'
    assert get_manager().get_profile_storage().profile.name == 'second'
