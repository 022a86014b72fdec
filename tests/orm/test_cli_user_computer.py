"""``provstore user`` and ``provstore computer``: listing and showing, on real storage (sqlite_dos and psql_dos)."""

from __future__ import annotations

import json

from cli_helpers import error, ok
from orm_helpers import EMAIL

from provstore.orm import CalcJobNode, Computer, Group, Int, User, store_nodes
from provstore.storage import EntityStorage


def test_users(storage: EntityStorage) -> None:
    """user list gives every user, the default one marked; user show counts what a user owns."""
    other = User('Ada@Example.ORG', first_name='Ada', last_name='Lovelace', institution='Analytical', storage=storage)
    other.store()
    store_nodes([Int(1, storage=storage), Int(2, user=other, storage=storage)], storage)
    Group('mine', storage=storage).store()
    listed = json.loads(ok('user', 'list', '--json').stdout)
    assert [(item['email'], item['is_default']) for item in listed] == [('Ada@example.org', False), (EMAIL, True)]
    assert listed[0]['first_name'] == 'Ada'
    assert listed[0]['institution'] == 'Analytical'
    text = ok('user', 'list').stdout
    assert 'Ada Lovelace (Ada@example.org)' in text
    assert any(line.startswith('*') and EMAIL in line for line in text.splitlines())
    mine = json.loads(ok('user', 'show', EMAIL, '--json').stdout)
    assert (mine['nodes'], mine['groups'], mine['is_default']) == (1, 1, True)
    theirs = json.loads(ok('user', 'show', str(other.pk), '--json').stdout)
    assert (theirs['email'], theirs['nodes'], theirs['groups']) == ('Ada@example.org', 1, 0)
    assert 'Lovelace' in ok('user', 'show', 'Ada@EXAMPLE.org').stdout
    assert 'No user with email or pk' in error('user', 'show', 'nobody@example.org')
    assert 'No user' in error('user', 'show', '987654')


def test_computers(storage: EntityStorage) -> None:
    """computer list gives every computer by label; computer show adds its metadata and node count."""
    assert 'No computers yet.' in ok('computer', 'list').stdout
    assert json.loads(ok('computer', 'list', '--json').stdout) == []
    cluster = Computer(
        'cluster',
        'cluster.example.org',
        description='the big one',
        scheduler_type='core.slurm',
        transport_type='core.ssh',
        metadata={'cores': 64},
        storage=storage,
    ).store()
    Computer('box', 'localhost', storage=storage).store()
    store_nodes([CalcJobNode(computer=cluster, storage=storage) for _ in range(2)], storage)
    listed = json.loads(ok('computer', 'list', '--json').stdout)
    assert [item['label'] for item in listed] == ['box', 'cluster']
    assert listed[1] == {
        'pk': cluster.pk,
        'uuid': cluster.uuid,
        'label': 'cluster',
        'hostname': 'cluster.example.org',
        'description': 'the big one',
        'scheduler_type': 'core.slurm',
        'transport_type': 'core.ssh',
    }
    shown = json.loads(ok('computer', 'show', 'cluster', '--json').stdout)
    assert (shown['metadata'], shown['nodes']) == ({'cores': 64}, 2)
    assert json.loads(ok('computer', 'show', str(cluster.pk), '--json').stdout)['label'] == 'cluster'
    assert 'core.slurm' in ok('computer', 'list').stdout
    assert 'cores' in ok('computer', 'show', 'cluster').stdout
    assert 'No computer with label or pk' in error('computer', 'show', 'nowhere')


def test_help() -> None:
    """Every user and computer command has --help."""
    for group in ('user', 'computer'):
        for command in ('list', 'show'):
            assert 'Usage:' in ok(group, command, '--help').stdout
