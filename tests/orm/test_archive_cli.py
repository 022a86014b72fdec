"""``provstore archive``: create, version and info on real profiles and real ``.aiida`` files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provstore.cli import cli
from provstore.orm import CalcJobNode, Int, LinkType, store_nodes
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
    assert created.stdout.startswith(f'Wrote {archive}: user 1, computer 0, node 3,')
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
