"""Collections of every entity: get, all, count and delete; users, computers, authinfos, groups, comments, logs."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from orm_helpers import EMAIL, counts

from provstore.orm import (
    AuthInfo,
    CalcJobNode,
    Comment,
    Computer,
    Data,
    Dict,
    Group,
    Int,
    LinkType,
    Log,
    ModificationNotAllowedError,
    MultipleObjectsError,
    Node,
    NotExistentError,
    UniquenessError,
    User,
)
from provstore.storage import EntityStorage


def test_node_collection(storage: EntityStorage) -> None:
    """Nodes are found by pk and uuid, listed and counted, per class by node_type prefix."""
    nodes = [Int(1, storage=storage).store(), Dict({}, storage=storage).store(), CalcJobNode(storage=storage).store()]
    collection = Node.collection(storage)
    assert [node.uuid for node in collection.all()] == [node.uuid for node in nodes]
    assert collection.count() == 3
    assert Data.collection(storage).count() == 2
    assert [type(node) for node in Data.collection(storage).all()] == [Int, Dict]
    assert Int.collection(storage).get(uuid=nodes[0].uuid).value == 1
    assert collection.find(node_type='data.core.dict.Dict.')[0].pk == nodes[1].pk
    with pytest.raises(NotExistentError, match='No Int with uuid='):
        Int.collection(storage).get(uuid=nodes[1].uuid)
    with pytest.raises(TypeError, match=r'find\(\) needs at least one filter'):
        collection.find()


def test_deleting_a_node_without_links(storage: EntityStorage) -> None:
    """Collection delete removes a node without links, with its comments and group memberships."""
    node = Int(1, storage=storage).store()
    group = Group('g', storage=storage).store()
    group.add_nodes(node)
    node.base.comments.add('a comment')
    assert node.pk is not None
    Node.collection(storage).delete(node.pk)
    assert counts(storage)['node'] == 0
    assert counts(storage)['comment'] == 0
    assert group.count() == 0
    with pytest.raises(NotExistentError, match=f'No Node with pk={node.pk}'):
        Node.collection(storage).delete(node.pk)


def test_deleting_a_linked_node_is_refused(storage: EntityStorage) -> None:
    """A node with links is deleted only by delete_nodes; the collection refuses and writes nothing."""
    data = Data(storage=storage).store()
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    calculation.store()
    before = counts(storage)
    for node in (data, calculation):
        assert node.pk is not None
        with pytest.raises(ModificationNotAllowedError, match=r'it has 1 (incoming|outgoing) link\(s\)'):
            Node.collection(storage).delete(node.pk)
    assert counts(storage) == before


def test_users(storage: EntityStorage) -> None:
    """Users are unique by email, found by it, and mutable in their names; the default one is made once."""
    user = User('Ada@Example.org', first_name='Ada', last_name='L', storage=storage).store()
    assert User.collection(storage).get(email='Ada@example.org').get_full_name() == 'Ada L (Ada@example.org)'
    with pytest.raises(UniquenessError, match=r"A user with email 'Ada@example\.org' exists already"):
        User('Ada@EXAMPLE.org', storage=storage).store()
    user.institution = 'Analytical Engines'
    assert User.collection(storage).get(pk=user.pk).institution == 'Analytical Engines'
    default = User.collection(storage).get_default()
    assert default.email == EMAIL
    assert User.collection(storage).get_default() is default
    assert User.collection(storage).get_or_create('Ada@example.org').pk == user.pk
    assert User.collection(storage).count() == 2


def test_deleting_users(storage: EntityStorage) -> None:
    """A user is deleted only when no node, group or comment refers to it."""
    author = User('author@example.org', storage=storage).store()
    Int(1, user=author, storage=storage).store()
    lonely = User('lonely@example.org', storage=storage).store()
    before = counts(storage)
    assert author.pk is not None and lonely.pk is not None
    with pytest.raises(ModificationNotAllowedError, match='1 nodes refer to it'):
        User.collection(storage).delete(author.pk)
    assert counts(storage) == before
    User.collection(storage).delete(lonely.pk)
    assert [user.email for user in User.collection(storage).all()] == ['author@example.org']


def test_computers_and_authinfos(storage: EntityStorage) -> None:
    """Computers are unique by label; each user has at most one authinfo per computer."""
    computer = Computer('cluster', 'cluster.org', scheduler_type='core.slurm', storage=storage).store()
    with pytest.raises(UniquenessError, match="A computer labelled 'cluster' exists already"):
        Computer('cluster', storage=storage).store()
    computer.description = 'the big one'
    computer.metadata = {'shebang': '#!/bin/bash'}
    loaded = Computer.collection(storage).get(label='cluster')
    assert (loaded.description, loaded.metadata, loaded.scheduler_type) == (
        'the big one',
        {'shebang': '#!/bin/bash'},
        'core.slurm',
    )
    other = Computer('other', storage=storage).store()
    with pytest.raises(UniquenessError, match="A computer labelled 'other' exists already"):
        computer.label = 'other'
    assert Computer.collection(storage).get(pk=computer.pk).label == 'cluster'

    user = User.collection(storage).get_default()
    authinfo = AuthInfo(computer, user, auth_params={'username': 'me'}, storage=storage).store()
    with pytest.raises(UniquenessError, match="already has an authinfo for computer 'cluster'"):
        AuthInfo(computer, user, storage=storage).store()
    authinfo.enabled = False
    found = AuthInfo.collection(storage).get_for(user, computer)
    assert (found.enabled, found.auth_params, found.computer.label, found.user.email) == (
        False,
        {'username': 'me'},
        'cluster',
        EMAIL,
    )
    AuthInfo(other, user, storage=storage).store()
    assert AuthInfo.collection(storage).count() == 2


def test_deleting_computers(storage: EntityStorage) -> None:
    """A computer used by nodes cannot be deleted; an unused one goes with its authinfos."""
    used = Computer('used', storage=storage).store()
    CalcJobNode(computer=used, storage=storage).store()
    unused = Computer('unused', storage=storage).store()
    AuthInfo(unused, User.collection(storage).get_default(), storage=storage).store()
    assert used.pk is not None and unused.pk is not None
    with pytest.raises(ModificationNotAllowedError, match='1 nodes refer to it'):
        Computer.collection(storage).delete(used.pk)
    Computer.collection(storage).delete(unused.pk)
    assert [computer.label for computer in Computer.collection(storage).all()] == ['used']
    assert AuthInfo.collection(storage).count() == 0


def test_groups(storage: EntityStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups are unique by label and type; many nodes are added or removed in one statement."""
    nodes = [Int(value, storage=storage).store() for value in range(5)]
    group = Group('results', description='my results', storage=storage).store()
    assert group.type_string == 'core' and group.time is not None and group.user.email == EMAIL
    with pytest.raises(UniquenessError, match="A group labelled 'results' of type 'core' exists already"):
        Group('results', storage=storage).store()
    Group('results', type_string='core.import', storage=storage).store()

    calls: list[tuple[str, int]] = []
    for name in ('add_group_nodes', 'remove_group_nodes'):
        real = getattr(storage, name)

        def counted(group_id: int, node_ids: Any, real: Any = real, name: str = name) -> None:
            calls.append((name, len(node_ids)))
            real(group_id, node_ids)

        monkeypatch.setattr(storage, name, counted)
    group.add_nodes(nodes)
    group.add_nodes(nodes[:2])
    group.remove_nodes(nodes[3:])
    assert calls == [('add_group_nodes', 5), ('add_group_nodes', 2), ('remove_group_nodes', 2)]
    monkeypatch.undo()

    loaded = Group.collection(storage).get(label='results', type_string='core')
    assert [node.value for node in loaded.nodes] == [0, 1, 2]  # type: ignore[attr-defined]
    assert loaded.count() == 3 and not loaded.is_empty
    with pytest.raises(MultipleObjectsError, match="2 Group entities have label='results'"):
        Group.collection(storage).get(label='results')
    group.set_extra('color', 'blue')
    loaded = Group.collection(storage).get(uuid=group.uuid)
    assert loaded.extras == {'color': 'blue'}
    loaded.clear()
    assert group.is_empty
    assert Group.collection(storage).get_or_create('results')[1] is False
    with pytest.raises(ModificationNotAllowedError, match='is not stored: store it before adding it to a group'):
        group.add_nodes(Int(9, storage=storage))


def test_deleting_a_group_keeps_its_nodes(storage: EntityStorage) -> None:
    """Deleting a group removes its memberships, never its nodes."""
    nodes = [Int(value, storage=storage).store() for value in range(3)]
    group = Group('doomed', storage=storage).store()
    group.add_nodes(nodes)
    assert group.pk is not None
    Group.collection(storage).delete(group.pk)
    assert counts(storage)['group'] == 0 and counts(storage)['group_node'] == 0
    assert Int.collection(storage).count() == 3


def test_comments(storage: EntityStorage) -> None:
    """Comments are made on stored nodes; their content stays editable."""
    node = Int(1, storage=storage).store()
    first = node.base.comments.add('first')
    node.base.comments.add('second')
    first.content = 'first, edited'
    comments = Comment.collection(storage).for_node(node)
    assert [comment.content for comment in comments] == ['first, edited', 'second']
    assert comments[0].user.email == EMAIL and comments[0].node.uuid == node.uuid
    assert comments[0].mtime is not None and comments[0].ctime is not None
    assert comments[0].mtime >= comments[0].ctime
    assert first.pk is not None
    node.base.comments.remove(first.pk)
    assert [comment.content for comment in node.base.comments.all()] == ['second']
    with pytest.raises(ModificationNotAllowedError, match='is not stored: store it before adding a comment to it'):
        Comment(Int(2, storage=storage), 'too early').store()


def test_logs(storage: EntityStorage) -> None:
    """Log records belong to stored nodes and keep what they were given."""
    node = CalcJobNode(storage=storage).store()
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    Log(node, 'aiida.calc', 'REPORT', 'started', metadata={'step': 1}, time=when).store()
    Log(node, 'aiida.calc', 'ERROR', 'failed').store()
    logs = Log.collection(storage).for_node(node)
    assert [(log.levelname, log.message) for log in logs] == [('REPORT', 'started'), ('ERROR', 'failed')]
    assert logs[0].time == when and logs[0].metadata == {'step': 1}
    assert logs[1].node.uuid == node.uuid
    assert Log.collection(storage).count() == 2
    with pytest.raises(ValueError, match='must be timezone-aware'):
        Log(node, 'x', 'INFO', time=datetime.datetime(2024, 1, 1))
