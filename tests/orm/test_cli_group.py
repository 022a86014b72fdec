"""``provstore group``: listing, showing, creating, relabelling, deleting and copying groups and changing their
nodes, on real storage (sqlite_dos and psql_dos)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import error, invoke, ok
from orm_helpers import EMAIL, counts

from provstore.orm import CalcFunctionNode, Group, Int, LinkType, Node, User, store_nodes
from provstore.storage import EntityStorage


@pytest.fixture
def nodes(storage: EntityStorage) -> list[Node]:
    """Five stored Int nodes, values 0 to 4."""
    return store_nodes([Int(value, storage=storage) for value in range(5)], storage)


def pks(nodes: list[Node]) -> list[str]:
    """The pks of ``nodes`` as command-line arguments."""
    return [str(node.pk) for node in nodes]


def members(storage: EntityStorage, label: str) -> list[int]:
    """The pks of the nodes of the core group ``label``, ascending."""
    found = Group.collection(storage).get(label=label, type_string='core')
    return [node.pk for node in found.nodes if node.pk is not None]


def test_create_add_show_list(storage: EntityStorage, nodes: list[Node]) -> None:
    """A created group gets nodes by pk and uuid (repeats and members skipped); show and list report them."""
    assert 'Created group' in ok('group', 'create', 'relax', '-d', 'relaxations').stdout
    assert 'exists already' in ok('group', 'create', 'relax').stdout
    added = ok('group', 'add-nodes', 'relax', str(nodes[0].pk), nodes[1].uuid, str(nodes[0].pk)).stdout
    assert 'Added 2 nodes' in added
    assert 'Added 1 node to' in ok('group', 'add-nodes', 'relax', *pks(nodes[:3])).stdout
    assert members(storage, 'relax') == [node.pk for node in nodes[:3]]
    shown = json.loads(ok('group', 'show', 'relax', '--json').stdout)
    found = Group.collection(storage).get(label='relax')
    assert shown['pk'] == found.pk
    assert (shown['label'], shown['type_string'], shown['description']) == ('relax', 'core', 'relaxations')
    assert (shown['user'], shown['count'], shown['extras']) == (EMAIL, 3, {})
    assert [node['pk'] for node in shown['nodes']] == [node.pk for node in nodes[:3]]
    assert shown['nodes'][0] == {
        'pk': nodes[0].pk,
        'uuid': nodes[0].uuid,
        'node_type': 'data.core.int.Int.',
        'label': '',
    }
    limited = json.loads(ok('group', 'show', str(found.pk), '--json', '--limit', '1').stdout)
    assert len(limited['nodes']) == 1
    assert limited['count'] == 3
    text = ok('group', 'show', found.uuid[:8]).stdout
    assert 'relaxations' in text
    assert nodes[2].uuid in text
    listed = json.loads(ok('group', 'list', '--json', '-C').stdout)
    assert [(item['label'], item['count']) for item in listed] == [('relax', 3)]
    assert json.loads(ok('group', 'list', '--json').stdout)[0]['count'] is None
    assert 'relax' in ok('group', 'list').stdout


def test_list_filters(storage: EntityStorage, nodes: list[Node]) -> None:
    """list shows core groups unless -a or -T, and filters by label, user and node."""
    first = Group('alpha', storage=storage).store()
    Group('beta', storage=storage).store()
    Group('alpha', type_string='core.import', storage=storage).store()
    other = User('other@example.org', storage=storage).store()
    Group('gamma', user=other, storage=storage).store()
    first.add_nodes(nodes[0])

    def labels(*args: str) -> list[tuple[str, str]]:
        return [
            (item['label'], item['type_string']) for item in json.loads(ok('group', 'list', '--json', *args).stdout)
        ]

    assert labels() == [('alpha', 'core'), ('beta', 'core'), ('gamma', 'core')]
    assert labels('-a') == [('alpha', 'core'), ('alpha', 'core.import'), ('beta', 'core'), ('gamma', 'core')]
    assert labels('-T', 'core.import') == [('alpha', 'core.import')]
    assert labels('-s', 'al') == [('alpha', 'core')]
    assert labels('-c', 'et') == [('beta', 'core')]
    assert labels('-u', 'other@example.org') == [('gamma', 'core')]
    assert labels('-u', 'nobody@example.org') == []
    assert labels('-N', str(nodes[0].pk)) == [('alpha', 'core')]
    assert labels('-N', str(nodes[1].pk)) == []
    assert 'No groups' in ok('group', 'list', '-T', 'nothing').stdout


def test_same_label_of_two_types_needs_the_pk(storage: EntityStorage) -> None:
    """A label two groups share (different type strings) is refused as ambiguous; the pk names either."""
    Group('twin', storage=storage).store()
    imported = Group('twin', type_string='core.import', storage=storage).store()
    assert 'Several groups are labelled' in error('group', 'show', 'twin')
    assert json.loads(ok('group', 'show', str(imported.pk), '--json').stdout)['type_string'] == 'core.import'


def test_relabel(storage: EntityStorage) -> None:
    """relabel changes the label; a label another group of the type has is refused and nothing changes."""
    Group('old', storage=storage).store()
    Group('taken', storage=storage).store()
    assert "to 'new'" in ok('group', 'relabel', 'old', 'new').stdout
    assert {group.label for group in Group.collection(storage).all()} == {'new', 'taken'}
    assert 'exists already' in error('group', 'relabel', 'new', 'taken')
    assert {group.label for group in Group.collection(storage).all()} == {'new', 'taken'}


def test_remove_nodes_and_clear(storage: EntityStorage, nodes: list[Node]) -> None:
    """remove-nodes removes the given members (others named and skipped) after a yes; --clear removes all."""
    found = Group('set', storage=storage).store()
    found.add_nodes(nodes[:4])
    result = invoke('group', 'remove-nodes', 'set', *pks(nodes[:2]), input='n\n')
    assert result.exit_code == 1
    assert members(storage, 'set') == [node.pk for node in nodes[:4]]
    result = ok('group', 'remove-nodes', 'set', str(nodes[0].pk), str(nodes[4].pk), '-y')
    assert f'skipped: {nodes[4].pk}' in result.stderr
    assert 'Removed 1 node' in result.stdout
    assert members(storage, 'set') == [node.pk for node in nodes[1:4]]
    assert nodes[0].pk in [node.pk for node in Node.collection(storage).all()]
    ok('group', 'remove-nodes', 'set', '--clear', input='y\n')
    assert members(storage, 'set') == []
    assert invoke('group', 'remove-nodes', 'set').exit_code == 2
    assert invoke('group', 'remove-nodes', 'set', '--clear', str(nodes[0].pk)).exit_code == 2


def test_copy(storage: EntityStorage, nodes: list[Node]) -> None:
    """copy fills a new group; into a non-empty one it asks first and keeps what was there."""
    Group('source', storage=storage).store().add_nodes(nodes[:2])
    assert 'into new group' in ok('group', 'copy', 'source', 'copy').stdout
    assert members(storage, 'copy') == [node.pk for node in nodes[:2]]
    Group('busy', storage=storage).store().add_nodes(nodes[4])
    before = counts(storage)
    assert invoke('group', 'copy', 'source', 'busy', input='n\n').exit_code == 1
    assert counts(storage) == before
    ok('group', 'copy', 'source', 'busy', '--yes')
    assert members(storage, 'busy') == [nodes[0].pk, nodes[1].pk, nodes[4].pk]
    assert 'source itself' in error('group', 'copy', 'source', 'source')


def test_delete_keeps_nodes(storage: EntityStorage, nodes: list[Node]) -> None:
    """delete asks, honours --dry-run and no, and deletes the groups but not their nodes."""
    Group('doomed', storage=storage).store().add_nodes(nodes)
    Group('kept', storage=storage).store()
    before = counts(storage)
    assert 'Dry run' in ok('group', 'delete', 'doomed', '--dry-run').stdout
    assert invoke('group', 'delete', 'doomed', input='n\n').exit_code == 1
    assert counts(storage) == before
    assert 'Deleted 1 group.' in ok('group', 'delete', 'doomed', input='y\n').stdout
    assert [group.label for group in Group.collection(storage).all()] == ['kept']
    assert Node.collection(storage).count() == len(nodes)


def test_delete_nodes_follows_the_delete_rules(storage: EntityStorage) -> None:
    """--delete-nodes deletes the groups' nodes and what the delete rules take along (a calculation's outputs),
    lists them first, honours --dry-run and no, and keeps nodes outside that closure."""
    inputs = [Int(value, storage=storage) for value in range(2)]
    calculation = CalcFunctionNode(storage=storage)
    calculation.base.links.add_incoming(inputs[0], LinkType.INPUT_CALC, 'x')
    output = Int(10, storage=storage)
    output.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    bystander = Int(99, storage=storage)
    store_nodes([*inputs, calculation, output, bystander], storage)
    Group('doomed', storage=storage).store().add_nodes(inputs)
    Group('other', storage=storage).store().add_nodes([bystander, output])
    before = counts(storage)
    shown = ok('group', 'delete', 'doomed', '--delete-nodes', '--dry-run').stdout
    assert 'Deleting their 2 nodes deletes 4 nodes:' in shown
    assert 'Dry run' in shown
    assert invoke('group', 'delete', 'doomed', '--delete-nodes', input='n\n').exit_code == 1
    assert counts(storage) == before
    assert 'Deleted 1 group and 4 nodes.' in ok('group', 'delete', 'doomed', '--delete-nodes', '--yes').stdout
    assert [node.pk for node in Node.collection(storage).all()] == [bystander.pk]
    assert [group.label for group in Group.collection(storage).all()] == ['other']
    assert members(storage, 'other') == [bystander.pk]


def test_errors_are_one_line(storage: EntityStorage, nodes: list[Node]) -> None:
    """Unknown groups and nodes give one line and exit code 1, and nothing is written."""
    Group('here', storage=storage).store()
    before = counts(storage)
    assert 'No group with pk, label or uuid' in error('group', 'show', 'missing')
    assert 'No group' in error('group', 'add-nodes', 'missing', str(nodes[0].pk))
    assert 'No node with pk 999999' in error('group', 'add-nodes', 'here', str(nodes[0].pk), '999999')
    assert 'No group' in error('group', 'delete', 'here', 'missing', '-y')
    assert counts(storage) == before


def test_help_everywhere() -> None:
    """Every group command has --help."""
    for command in ('list', 'show', 'create', 'relabel', 'delete', 'add-nodes', 'remove-nodes', 'copy'):
        assert 'Usage:' in ok('group', command, '--help').stdout
