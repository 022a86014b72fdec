"""``provstore node attributes``, ``node extras`` and ``node comment``, on real storage (sqlite_dos and psql_dos)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import error, invoke, ok
from orm_helpers import EMAIL, counts

from provstore.orm import Dict, Node
from provstore.storage import EntityStorage


@pytest.fixture
def node(storage: EntityStorage) -> Node:
    """A stored Dict with two attributes and two extras."""
    stored = Dict({'cutoff': 30.0, 'kpoints': [4, 4, 4]}, storage=storage).store()
    stored.base.extras.set_many({'tag': 'scf', 'checked': True})
    return stored


def reloaded(storage: EntityStorage, node: Node) -> Node:
    """The node as stored now (a fresh read)."""
    return Node.collection(storage).get(pk=node.pk)


def test_attributes(node: Node) -> None:
    """attributes prints the JSON object, or the keys asked for; a missing key is an error."""
    assert json.loads(ok('node', 'attributes', str(node.pk)).stdout) == {'cutoff': 30.0, 'kpoints': [4, 4, 4]}
    assert json.loads(ok('node', 'attributes', node.uuid, '-k', 'kpoints').stdout) == {'kpoints': [4, 4, 4]}
    assert "has no attribute 'nope'" in error('node', 'attributes', str(node.pk), '-k', 'cutoff', '-k', 'nope')


def test_extras_show(node: Node) -> None:
    """``node extras ID`` and ``node extras show ID`` print the extras, or the keys asked for."""
    assert json.loads(ok('node', 'extras', str(node.pk)).stdout) == {'tag': 'scf', 'checked': True}
    assert json.loads(ok('node', 'extras', str(node.pk), '--keys', 'tag').stdout) == {'tag': 'scf'}
    assert json.loads(ok('node', 'extras', 'show', str(node.pk)).stdout) == {'tag': 'scf', 'checked': True}
    assert "has no extra 'nope'" in error('node', 'extras', str(node.pk), '-k', 'nope')
    assert 'set' in ok('node', 'extras', '--help').stdout


def test_extras_set_and_delete(storage: EntityStorage, node: Node) -> None:
    """set takes JSON values; delete removes several keys, or none when one is missing."""
    ok('node', 'extras', 'set', str(node.pk), 'energy', '-15.5')
    ok('node', 'extras', 'set', str(node.pk), 'meta', '{"by": "me", "runs": [1, 2]}')
    ok('node', 'extras', 'set', str(node.pk), 'tag', '"relax"')
    assert reloaded(storage, node).base.extras.all == {
        'tag': 'relax',
        'checked': True,
        'energy': -15.5,
        'meta': {'by': 'me', 'runs': [1, 2]},
    }
    assert 'is not JSON' in error('node', 'extras', 'set', str(node.pk), 'tag', 'relax')
    assert 'NaN' in error('node', 'extras', 'set', str(node.pk), 'tag', 'NaN')
    assert 'separates nested keys' in error('node', 'extras', 'set', str(node.pk), 'a.b', '1')
    assert "has no extra 'nope'" in error('node', 'extras', 'delete', str(node.pk), 'tag', 'nope')
    assert 'tag' in reloaded(storage, node).base.extras.all
    ok('node', 'extras', 'delete', str(node.pk), 'tag', 'meta')
    assert reloaded(storage, node).base.extras.all == {'checked': True, 'energy': -15.5}
    assert json.loads(ok('node', 'attributes', str(node.pk)).stdout) == {'cutoff': 30.0, 'kpoints': [4, 4, 4]}


def test_comments(storage: EntityStorage, node: Node) -> None:
    """comment add stores comments by the default user; comment show lists them oldest first."""
    assert f'No comments on node {node.pk}.' in ok('node', 'comment', 'show', str(node.pk)).stdout
    ok('node', 'comment', 'add', str(node.pk), 'converged at 30 Ry')
    ok('node', 'comment', 'add', f'uuid:{node.uuid[:8]}', 'checked twice\nby hand')
    shown = json.loads(ok('node', 'comment', 'show', str(node.pk), '--json').stdout)
    assert [(item['content'], item['user']) for item in shown] == [
        ('converged at 30 Ry', EMAIL),
        ('checked twice\nby hand', EMAIL),
    ]
    assert set(shown[0]) == {'pk', 'uuid', 'user', 'ctime', 'mtime', 'content'}
    text = ok('node', 'comment', 'show', str(node.pk)).stdout
    assert 'converged at 30 Ry' in text
    assert '  by hand' in text
    before = counts(storage)
    assert 'needs some text' in error('node', 'comment', 'add', str(node.pk), '  ')
    assert 'No node with pk 999999' in error('node', 'comment', 'add', '999999', 'text')
    assert counts(storage) == before


def test_help() -> None:
    """Every new node command has --help."""
    for args in (('attributes',), ('extras', 'set'), ('extras', 'delete'), ('extras', 'show'), ('comment', 'add')):
        assert 'Usage:' in ok('node', *args, '--help').stdout
    assert invoke('node', 'comment', 'show', '--help').exit_code == 0
