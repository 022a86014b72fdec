"""``provstore --archive FILE ...``: an archive browsed in place by the commands that read a profile.

No configuration is read or written: the configuration folder gains nothing but the documented cache of archive
databases (``cache/sqlite_zip/``); commands that write refuse with the read-only error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from orm_helpers import configured_profile, open_storage

from provstore.archive.create import create_archive
from provstore.cli import cli
from provstore.manager import get_manager
from provstore.orm import CalcJobNode, Int, LinkType, store_nodes
from provstore.profile_access import LOCK_FILE_NAME
from provstore.registry import get_archive_format

AIIDA_CORE_ARCHIVE = (
    Path(__file__).resolve().parents[1]
    / 'fixtures'
    / 'aiida-core-static'
    / 'export__migrate__export_main_0001_simple.aiida'
)
"""aiida-core's archive: ten nodes (an ArrayData with files among them), four groups."""

QUERY = json.dumps(
    {'path': [{'tag': 'n', 'entity_type': 'data.core.int.Int.'}], 'project': {'n': ['uuid', 'attributes.value']}}
)


def invoke(*args: str, stdin: str | None = None) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args), input=stdin)


def _files(folder: Path) -> set[Path]:
    """Return the files under ``folder``, relative to it."""
    return {path.relative_to(folder) for path in folder.rglob('*') if path.is_file()}


@pytest.fixture
def provstore_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """Write an archive of ``data -> calculation`` (``data`` holding input.txt) from a sqlite_dos profile; yield it
    with the uuids, the profile unloaded."""
    with configured_profile(request, 'sqlite_dos') as name:
        storage = open_storage(name)
        data = Int(7, storage=storage)
        data.base.repository.put_object_from_bytes(b'seven\n', 'input.txt')
        calculation = CalcJobNode(storage=storage)
        calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
        store_nodes([data, calculation], storage)
        calculation.seal()
        path = tmp_path / 'graph.aiida'
        create_archive(storage, path, get_archive_format('sqlite_zip'))
        uuids = {'data': data.uuid, 'calculation': calculation.uuid}
        get_manager().unload_profile()
        yield path, uuids


def test_browse_a_provstore_archive(provstore_archive: tuple[Path, dict[str, str]], config_folder: Path) -> None:
    """node list, node show, query and node repo cat read the archive; no configuration is written."""
    path, uuids = provstore_archive
    config = config_folder / 'config.json'
    before_config = config.read_bytes()
    before = _files(config_folder)
    listed = invoke('--archive', str(path), 'node', 'list', '--json')
    assert listed.exit_code == 0, listed.output
    assert {row['uuid'] for row in json.loads(listed.stdout)} == set(uuids.values())
    shown = invoke('--archive', str(path), 'node', 'show', uuids['data'], '--json')
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)['attributes'] == {'value': 7}
    queried = invoke('--archive', str(path), 'query', '--json', stdin=QUERY)
    assert queried.exit_code == 0, queried.output
    assert json.loads(queried.stdout) == [{'n': {'uuid': uuids['data'], 'attributes.value': 7}}]
    cat = invoke('--archive', str(path), 'node', 'repo', 'cat', uuids['data'], 'input.txt')
    assert cat.exit_code == 0, cat.output
    assert cat.stdout_bytes == b'seven\n'
    assert not (path.parent / LOCK_FILE_NAME).exists()
    info = invoke('--archive', str(path), 'storage', 'info', '--json')
    assert json.loads(info.stdout)['entities']['nodes'] == 2
    assert config.read_bytes() == before_config
    added = _files(config_folder) - before
    assert added, 'the database of the archive is cached'
    assert all(item.parts[:2] == ('cache', 'sqlite_zip') for item in added), added


def test_browse_an_aiida_core_archive(config_folder: Path) -> None:
    """aiida-core's archive is browsed the same way; the configuration folder gets no config file and no profile."""
    path = str(AIIDA_CORE_ARCHIVE)
    listed = invoke('--archive', path, 'node', 'list', '--json')
    assert listed.exit_code == 0, listed.output
    nodes = {row['uuid']: row for row in json.loads(listed.stdout)}
    assert len(nodes) == 10
    array = next(uuid for uuid, row in nodes.items() if row['node_type'].startswith('data.core.array.ArrayData'))
    shown = json.loads(invoke('--archive', path, 'node', 'show', array, '--json').stdout)
    assert shown['uuid'] == array
    names = sorted(shown['files'])
    assert names
    cat = invoke('--archive', path, 'node', 'repo', 'cat', array, names[0])
    assert cat.exit_code == 0, cat.output
    assert cat.stdout_bytes
    count = invoke(
        '--archive', path, 'query', '--count', stdin=json.dumps({'path': [{'tag': 'g', 'entity_type': 'group'}]})
    )
    assert (count.exit_code, count.stdout) == (0, '4\n')
    assert all(item.parts[:2] == ('cache', 'sqlite_zip') for item in _files(config_folder)), _files(config_folder)
    assert not (AIIDA_CORE_ARCHIVE.parent / LOCK_FILE_NAME).exists()


def test_profile_and_archive_exclude_each_other() -> None:
    """-p with --archive is a usage error (exit 2), whatever the command."""
    result = invoke('-p', 'some', '--archive', str(AIIDA_CORE_ARCHIVE), 'node', 'list')
    assert result.exit_code == 2
    assert '-p/--profile and --archive exclude each other' in result.stderr


@pytest.mark.parametrize(
    'command',
    [
        ('node', 'delete', '--yes', '837'),
        ('storage', 'migrate'),
        ('storage', 'maintain'),
        ('storage', 'index', 'add', 'attributes.value'),
    ],
)
def test_write_commands_refuse_an_archive(command: tuple[str, ...], config_folder: Path) -> None:
    """Commands that write exit 1 with the read-only error, before doing anything."""
    result = invoke('--archive', str(AIIDA_CORE_ARCHIVE), *command)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f'Error: The archive {AIIDA_CORE_ARCHIVE} is read-only (sqlite_zip reads it in place): '
        'import it into a profile to change it\n'
    )
    assert not (config_folder / 'config.json').exists()
    assert not (AIIDA_CORE_ARCHIVE.parent / LOCK_FILE_NAME).exists()


def test_missing_archive_is_refused(tmp_path: Path) -> None:
    """A file that is not there exits 1 with the reader's one-line error."""
    result = invoke('--archive', str(tmp_path / 'none.aiida'), 'node', 'list')
    assert result.exit_code == 1
    assert result.stderr == f'Error: {tmp_path / "none.aiida"}: no such archive file\n'


def test_manager_switches_between_an_archive_and_a_profile_of_the_same_name() -> None:
    """After an archive was loaded, loading a profile (even one named like the archive's) gives that profile's
    storage, and loading the archive again gives the archive's; the profile's storage is writable."""
    from provstore.cli.profile import create_profile

    create_profile('archive', 'sqlite_dos', {}, email='tester@example.org', set_default=True)
    manager = get_manager()
    manager.load_archive(AIIDA_CORE_ARCHIVE, 'sqlite_zip')
    assert manager.get_profile_storage().read_only
    manager.load_profile('archive')
    profile_storage = manager.get_profile_storage()
    assert profile_storage.name == 'sqlite_dos'
    profile_storage.check_writable()
    manager.load_archive(AIIDA_CORE_ARCHIVE, 'sqlite_zip')
    assert manager.get_profile_storage().name == 'sqlite_zip'
    assert profile_storage.is_closed
    manager.unload_profile()
