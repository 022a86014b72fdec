"""``provstore plugins``: listing, checking and showing plugins, broken ones included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from core_helpers import archive_plugin

from provstore import __version__
from provstore.cli import cli
from provstore.registry import PluginRegistry, RegistrySettings, using_registry

BROKEN = """
    raise RuntimeError('this plugin is broken on purpose')
"""


def run_cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``provstore ARGS`` in a fresh interpreter that also sees the fake distributions in ``site``."""
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(site), os.environ.get('PYTHONPATH', '')])}
    env['PROVSTORE_PLUGINS_STRICT'] = '0'
    command = [sys.executable, '-c', 'from provstore.cli import main; main()', *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def broken_site(fake_site: Callable[..., str], tmp_path: Path) -> Path:
    """A folder of fake distributions: a good plugin, a broken one and two declaring the same name."""
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good', version='1.2')
    fake_site('broken-formats', BROKEN, entry_point='broken', version='0.1')
    fake_site('twin-one', archive_plugin('one.fmt'), entry_point='twin')
    fake_site('twin-two', archive_plugin('two.fmt'), entry_point='twin')
    return tmp_path / 'site-packages'


def test_list_shows_broken_and_duplicate_plugins_and_exits_zero(broken_site: Path) -> None:
    """``plugins list --json`` lists every entry point with its status and error, and exits 0."""
    result = run_cli(broken_site, 'plugins', 'list', '--json')
    assert result.returncode == 0, result.stderr
    records = {record['name']: record for record in json.loads(result.stdout)}
    assert records['good']['status'] == 'loaded'
    assert (records['good']['distribution'], records['good']['version']) == ('good-formats', '1.2')
    assert records['good']['provides']['archive'] == ['good.fmt']
    assert records['broken']['status'] == 'failed'
    assert records['broken']['error'] == {
        'stage': 'import',
        'type': 'RuntimeError',
        'message': 'this plugin is broken on purpose',
    }
    assert records['twin']['status'] == 'duplicate'
    assert 'twin-one' in records['twin']['error']['message']
    assert 'twin-two' in records['twin']['error']['message']
    warnings = [line for line in result.stderr.splitlines() if 'WARNING' in line or 'provstore:' in line]
    assert sum("'broken'" in line for line in warnings) == 1


def test_table_lists_columns_and_errors(broken_site: Path) -> None:
    """The human table has the documented columns and shows a failed plugin's error in PROVIDES."""
    result = run_cli(broken_site, 'plugins', 'list')
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ['NAME', 'DISTRIBUTION', 'VERSION', 'STATUS', 'PROVIDES']
    broken_row = next(row for row in rows if row.startswith('broken '))
    assert 'failed' in broken_row
    assert 'RuntimeError at import: this plugin is broken on purpose' in broken_row
    good_row = next(row for row in rows if row.startswith('good '))
    assert good_row.split()[1:5] == ['good-formats', '1.2', 'loaded', 'archive:good.fmt']


def test_check_exits_one_naming_each_problem(broken_site: Path) -> None:
    """``plugins check`` exits 1 and names the failed and the duplicate plugin."""
    result = run_cli(broken_site, 'plugins', 'check')
    assert result.returncode == 1
    assert "plugin 'broken' (distribution broken-formats 0.1) failed" in result.stderr
    assert "plugin 'twin'" in result.stderr
    assert 'duplicate' in result.stderr


def test_other_commands_keep_working_beside_a_broken_plugin(broken_site: Path) -> None:
    """A broken plugin does not stop unrelated commands: --version and showing a good plugin work."""
    version = run_cli(broken_site, '--version')
    assert version.returncode == 0
    assert __version__ in version.stdout
    show = run_cli(broken_site, 'plugins', 'show', 'good')
    assert show.returncode == 0, show.stderr
    assert "archive format 'good.fmt': The good.fmt test format." in show.stdout
    show_broken = run_cli(broken_site, 'plugins', 'show', 'broken', '--json')
    assert show_broken.returncode == 0
    assert json.loads(show_broken.stdout)['error']['stage'] == 'import'


def test_kind_filter(fake_site: Callable[..., str]) -> None:
    """``--kind`` keeps plugins providing that kind (and broken ones, which might) and drops the others."""
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good')
    runner = CliRunner()
    with using_registry(PluginRegistry(RegistrySettings(strict=False))):
        archive = runner.invoke(cli, ['plugins', 'list', '--kind', 'archive', '--json'])
        storage = runner.invoke(cli, ['plugins', 'list', '--kind', 'storage', '--json'])
        bad_kind = runner.invoke(cli, ['plugins', 'list', '--kind', 'teleporter'])
    assert 'good' in {record['name'] for record in json.loads(archive.output)}
    assert 'good' not in {record['name'] for record in json.loads(storage.output)}
    assert bad_kind.exit_code == 2
    assert "Invalid value for '-k' / '--kind'" in bad_kind.output


def test_show_unknown_plugin_is_one_line_error() -> None:
    """``plugins show`` of an unknown name prints one error line and exits 1."""
    result = CliRunner().invoke(cli, ['plugins', 'show', 'no-such-plugin'])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: No plugin named 'no-such-plugin'")


def test_check_passes_when_all_plugins_are_healthy() -> None:
    """With only healthy plugins, ``plugins check`` exits 0 and says so."""
    with using_registry(PluginRegistry(entry_points_group=None)):
        result = CliRunner().invoke(cli, ['plugins', 'check'])
        empty = CliRunner().invoke(cli, ['plugins', 'list'])
    assert result.exit_code == 0
    assert 'All plugins are healthy: 0 loaded, 0 blocked.' in result.output
    assert empty.output.strip() == 'No plugins installed.'


def test_help_everywhere() -> None:
    """Every command and group answers --help."""
    for args in ([], ['plugins'], ['plugins', 'list'], ['plugins', 'check'], ['plugins', 'show']):
        result = CliRunner().invoke(cli, [*args, '--help'])
        assert result.exit_code == 0, args
        assert 'Usage:' in result.output
