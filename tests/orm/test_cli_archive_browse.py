"""The group, user, computer and node value commands on an archive read in place (``--archive``): they read it, and
the ones that write refuse it with the read-only error before doing anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import invoke, ok

from provstore.profile_access import LOCK_FILE_NAME

ARCHIVE = (
    Path(__file__).resolve().parents[1]
    / 'fixtures'
    / 'aiida-core-static'
    / 'export__migrate__export_main_0001_simple.aiida'
)
"""aiida-core's archive: ten nodes, four groups."""

READ_ONLY = (
    f'Error: The archive {ARCHIVE} is read-only (sqlite_zip reads it in place): import it into a profile to change it\n'
)


def on_archive(*args: str) -> str:
    """Run a command on the archive, check it succeeded, and return its stdout."""
    return ok('--archive', str(ARCHIVE), *args).stdout


def test_read_commands(config_folder: Path) -> None:
    """Groups, users and computers list and show; a node's attributes, extras, comments and graph read."""
    groups = json.loads(on_archive('group', 'list', '-a', '-C', '--json'))
    assert len(groups) == 4
    first = groups[0]
    shown = json.loads(on_archive('group', 'show', str(first['pk']), '--json'))
    assert (shown['uuid'], shown['count'], len(shown['nodes'])) == (first['uuid'], first['count'], first['count'])
    users = json.loads(on_archive('user', 'list', '--json'))
    assert users
    assert json.loads(on_archive('user', 'show', users[0]['email'], '--json'))['nodes'] >= 0
    json.loads(on_archive('computer', 'list', '--json'))
    node = json.loads(on_archive('node', 'list', '--json', '--limit', '1'))[0]
    assert isinstance(json.loads(on_archive('node', 'attributes', str(node['pk']))), dict)
    assert isinstance(json.loads(on_archive('node', 'extras', str(node['pk']))), dict)
    assert isinstance(json.loads(on_archive('node', 'comment', 'show', str(node['pk']), '--json')), list)
    dot = on_archive('node', 'graph', node['uuid'], '-a', 'all', '-d', 'all')
    assert f'N{node["pk"]} [' in dot
    assert re.search(r'N\d+ -> N\d+', dot) or dot.count(' [label=') == 1
    assert not (config_folder / 'config.json').exists()


@pytest.mark.parametrize(
    'command',
    [
        ('group', 'create', 'new'),
        ('group', 'relabel', '1', 'other'),
        ('group', 'delete', '1', '--yes'),
        ('group', 'add-nodes', '1', '1'),
        ('group', 'remove-nodes', '1', '--clear', '--yes'),
        ('group', 'copy', '1', 'copied'),
        ('node', 'extras', 'set', '1', 'tag', '1'),
        ('node', 'extras', 'delete', '1', 'tag'),
        ('node', 'comment', 'add', '1', 'text'),
    ],
)
def test_write_commands_refuse(command: tuple[str, ...], config_folder: Path) -> None:
    """Commands that write exit 1 with the read-only error line."""
    result = invoke('--archive', str(ARCHIVE), *command)
    assert (result.exit_code, result.stderr) == (1, READ_ONLY), result.output
    assert not (config_folder / 'config.json').exists()
    assert not (ARCHIVE.parent / LOCK_FILE_NAME).exists()
