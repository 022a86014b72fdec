"""``provstore archive``: create, version and info on real profiles and real ``.aiida`` files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provstore.cli import cli
from provstore.orm import (
    AuthInfo,
    CalcJobNode,
    Comment,
    Computer,
    Group,
    Int,
    LinkType,
    Node,
    get_default_user,
    store_nodes,
)
from provstore.storage import EntityStorage


def invoke(*args: str) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def pks(storage: EntityStorage) -> dict[str, int]:
    """Store ``data -> calculation`` (sealed) and an unrelated node, each data node with a file; return their pks."""
    data, other = Int(1, storage=storage), Int(2, storage=storage)
    data.base.repository.put_object_from_bytes(b'input', 'input.txt')
    other.base.repository.put_object_from_bytes(b'other', 'other.txt')
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([data, other, calculation], storage)
    calculation.seal()
    return {name: node.pk for name, node in (('data', data), ('other', other), ('calculation', calculation))}


def test_create_all_then_version_and_info(pks: dict[str, int], tmp_path: Path) -> None:
    """create --all writes the file quietly when piped; version and info --json read it back."""
    archive = tmp_path / 'all.aiida'
    created = invoke('archive', 'create', str(archive), '--all', '--compress', '0')
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith(f'Wrote {archive}: user 1, computer 0, authinfo 0, node 3,')
    assert 'files 2 (10 bytes)' in created.stdout
    assert created.stderr == ''
    version = invoke('archive', 'version', str(archive))
    assert version.exit_code == 0
    assert version.stdout == f'{archive}: version main_0001 (this code writes main_0001)\n'
    info = json.loads(invoke('archive', 'info', str(archive), '--json').stdout)
    assert (info['format'], info['version']) == ('sqlite_zip', 'main_0001')
    assert info['entities']['node'] == 3
    assert info['entities']['link'] == 1
    assert info['metadata']['creation_parameters']['entity_counts']['node'] == 3
    text = invoke('archive', 'info', str(archive))
    assert text.exit_code == 0
    assert 'main_0001' in text.stdout


def test_create_start_set_and_dry_run(pks: dict[str, int], tmp_path: Path) -> None:
    """-N exports the closure of a node (not the unrelated one); --dry-run writes nothing and says so."""
    archive = tmp_path / 'part.aiida'
    dry = invoke('archive', 'create', str(archive), '-N', str(pks['calculation']), '--dry-run')
    assert dry.exit_code == 0, dry.output
    assert 'node 2,' in dry.stdout
    assert 'Nothing was written.' in dry.stdout
    assert not archive.exists()
    created = invoke('archive', 'create', str(archive), '-N', str(pks['calculation']), '--no-comments', '--no-logs')
    assert created.exit_code == 0, created.output
    info = json.loads(invoke('archive', 'info', str(archive), '--json').stdout)
    assert info['entities']['node'] == 2


def test_refusals_exit_1_and_usage_exit_2(pks: dict[str, int], tmp_path: Path) -> None:
    """An existing file is refused (exit 1, one line); neither or both of --all and -N, or --compress 10: exit 2."""
    archive = tmp_path / 'there.aiida'
    archive.write_bytes(b'keep me')
    refused = invoke('archive', 'create', str(archive), '--all')
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        f'Error: {archive}: the file exists: use --force (force=True) to overwrite it'
    ]
    assert archive.read_bytes() == b'keep me'
    assert invoke('archive', 'create', str(archive), '--all', '--force').exit_code == 0
    assert invoke('archive', 'create', str(tmp_path / 'x.aiida')).exit_code == 2
    assert invoke('archive', 'create', str(tmp_path / 'x.aiida'), '--all', '-N', '1').exit_code == 2
    assert invoke('archive', 'create', str(tmp_path / 'x.aiida'), '--all', '--compress', '10').exit_code == 2
    assert not (tmp_path / 'x.aiida').exists()


def entities(archive: Path) -> dict[str, int]:
    """Return the row counts of the archive, as ``archive info --json`` prints them."""
    result = invoke('archive', 'info', str(archive), '--json')
    assert result.exit_code == 0, result.output
    counts: dict[str, int] = json.loads(result.stdout)['entities']
    return counts


def test_groups_and_computers_start_sets(storage: EntityStorage, pks: dict[str, int], tmp_path: Path) -> None:
    """-G takes a group by label, uuid or pk and brings its nodes; -Y brings the computer alone; unknown ones exit 1."""
    group = Group('picked', storage=storage).store()
    group.add_nodes([Int.collection(storage).get(pk=pks['other'])])
    computer = Computer('hpc', 'hpc.example.org', storage=storage).store()
    for number, identifier in enumerate(('picked', group.uuid, str(group.pk))):
        archive = tmp_path / f'group{number}.aiida'
        created = invoke('archive', 'create', str(archive), '-G', identifier)
        assert created.exit_code == 0, created.output
        assert (entities(archive)['group'], entities(archive)['node'], entities(archive)['group_node']) == (1, 1, 1)
    archive = tmp_path / 'computer.aiida'
    created = invoke('archive', 'create', str(archive), '-Y', 'hpc', '--include-authinfos')
    assert created.exit_code == 0, created.output
    assert (entities(archive)['computer'], entities(archive)['node']) == (1, 0)
    both = tmp_path / 'both.aiida'
    assert invoke('archive', 'create', str(both), '-Y', computer.uuid, '-N', str(pks['data'])).exit_code == 0
    assert (entities(both)['computer'], entities(both)['node']) == (1, 1)
    for option, kind in (('-G', 'group'), ('-Y', 'computer')):
        missing = invoke('archive', 'create', str(tmp_path / 'x.aiida'), option, 'nowhere')
        assert missing.exit_code == 1
        assert missing.stderr.strip() == f"Error: No {kind} with pk, label or uuid 'nowhere'"
    assert not (tmp_path / 'x.aiida').exists()


def test_rule_toggles(pks: dict[str, int], tmp_path: Path) -> None:
    """A toggleable rule changes the archived nodes; a rule aiida-core keeps fixed is a usage error (exit 2)."""
    default, forward = tmp_path / 'default.aiida', tmp_path / 'forward.aiida'
    assert invoke('archive', 'create', str(default), '-N', str(pks['data'])).exit_code == 0
    assert entities(default)['node'] == 1
    result = invoke('archive', 'create', str(forward), '-N', str(pks['data']), '--input-calc-forward')
    assert result.exit_code == 0, result.output
    assert entities(forward)['node'] == 2
    for flag in ('--no-input-calc-backward', '--input-calc-backward', '--no-create-forward'):
        refused = invoke('archive', 'create', str(tmp_path / 'x.aiida'), '--all', flag)
        assert refused.exit_code == 2
        assert 'is fixed to True (aiida-core does not let it change)' in refused.stderr
    assert not (tmp_path / 'x.aiida').exists()
    shown = invoke('archive', 'create', '--help').stdout
    assert '--create-backward / --no-create-backward' in shown
    assert '--input-calc-backward' not in shown


def test_include_and_exclude_options(storage: EntityStorage, pks: dict[str, int], tmp_path: Path) -> None:
    """Auth infos are left out unless --include-authinfos; --exclude-comments (or the old --no-comments) drops them."""
    computer = Computer('hpc', 'hpc.example.org', storage=storage).store()
    AuthInfo(computer, get_default_user(storage)).store()
    Comment(Node.collection(storage).get(pk=pks['data']), 'checked').store()
    runs = {
        'plain': ('--all',),
        'auth': ('--all', '--include-authinfos'),
        'bare': ('--all', '--exclude-comments', '--exclude-logs'),
        'old': ('--all', '--no-comments'),
    }
    for name, options in runs.items():
        result = invoke('archive', 'create', str(tmp_path / f'{name}.aiida'), *options)
        assert result.exit_code == 0, result.output
    found = {name: entities(tmp_path / f'{name}.aiida') for name in runs}
    assert [found[name]['authinfo'] for name in runs] == [0, 1, 0, 0]
    assert [found[name]['comment'] for name in runs] == [1, 1, 0, 0]


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    """version and info of a file that is not an archive exit 1 with the reader's one-line error."""
    path = tmp_path / 'plain.aiida'
    path.write_bytes(b'plain text')
    for command in ('version', 'info'):
        result = invoke('archive', command, str(path))
        assert result.exit_code == 1
        assert result.stderr.strip() == f'Error: {path}: not a zip file, so not a sqlite_zip archive'


@pytest.mark.parametrize('command', [(), ('create',), ('version',), ('info',)])
def test_help_everywhere(command: tuple[str, ...]) -> None:
    """Every archive command has --help."""
    result = invoke('archive', *command, '--help')
    assert result.exit_code == 0
    assert result.stdout.startswith('Usage: ')
