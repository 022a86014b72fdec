"""``provstore profile``, ``quickstart`` and ``storage``, and the manager behind them, on the test storage backend."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provstore.cli import cli
from provstore.config import CONFIG_FILENAME, load_config
from provstore.exceptions import ConfigError, ProfileNotFoundError
from provstore.manager import Manager, get_manager
from provstore.options import SECRET_MASK
from provstore.registry import PluginRegistry, RegistrySettings, using_registry
from provstore.testing import JsonStorageBackend


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def storage_backend(test_storage_backend: type[JsonStorageBackend]) -> str:
    """The name of the test storage backend, registered for the test."""
    return test_storage_backend.name


def test_setup_creates_and_initialises(storage_backend: str, config_folder: Path) -> None:
    """``profile setup`` validates options, initialises the storage and writes the profile, the first as default."""
    result = invoke('profile', 'setup', 'work', '--backend', storage_backend, '--password', 's3cret', '--email', 'a@b')
    assert result.exit_code == 0, result.output
    profile = load_config().get_profile()
    assert (profile.name, profile.storage_backend, profile.default_user_email) == ('work', storage_backend, 'a@b')
    assert profile.storage_config == {'filepath': '', 'password': 's3cret'}
    assert JsonStorageBackend.version_profile(profile) == JsonStorageBackend.version_head()
    assert profile.folder == config_folder / 'profiles' / 'work'
    assert stat.S_IMODE((config_folder / CONFIG_FILENAME).stat().st_mode) == 0o600


def test_setup_refuses_bad_input_and_writes_nothing(storage_backend: str, config_folder: Path) -> None:
    """Unknown backends, options of another backend, bad names and duplicates are one-line errors; nothing written."""
    unknown = invoke('profile', 'setup', 'p', '--backend', 'no.such.backend')
    assert unknown.exit_code == 1
    assert "No storage backend named 'no.such.backend'; installed: " in unknown.output
    bad_name = invoke('profile', 'setup', '../evil', '--backend', storage_backend)
    assert bad_name.exit_code == 1
    assert 'invalid profile name' in bad_name.output
    assert not (config_folder / CONFIG_FILENAME).exists()
    assert invoke('profile', 'setup', 'p', '--backend', storage_backend).exit_code == 0
    before = (config_folder / CONFIG_FILENAME).read_bytes()
    again = invoke('profile', 'setup', 'p', '--backend', storage_backend)
    assert again.exit_code == 1
    assert "A profile named 'p' already exists" in again.output
    assert (config_folder / CONFIG_FILENAME).read_bytes() == before


def test_setup_help_lists_each_backends_options(storage_backend: str) -> None:
    """``profile setup --help`` shows a section per installed storage backend, generated from its declaration."""
    result = invoke('profile', 'setup', '--help')
    assert result.exit_code == 0
    assert f"Options of storage backend '{storage_backend}'" in result.output
    for option in JsonStorageBackend.options:
        assert option.flag in result.output
        assert option.help.split()[0] in result.output
    assert 'secret' in result.output


def test_show_masks_secrets(storage_backend: str) -> None:
    """``profile show`` (text and JSON) never prints a password."""
    invoke('profile', 'setup', 'p', '--backend', storage_backend, '--password', 'hunter2-secret')
    text = invoke('profile', 'show', 'p')
    as_json = invoke('profile', 'show', '--json')
    for result in (text, as_json):
        assert result.exit_code == 0, result.output
        assert 'hunter2-secret' not in result.output
        assert SECRET_MASK in result.output
    assert json.loads(as_json.output)['storage_config']['password'] == SECRET_MASK


def test_list_set_default_and_json(storage_backend: str) -> None:
    """``profile list`` marks the default; ``set-default`` moves it; the JSON form has the documented keys."""
    for name in ('one', 'two'):
        invoke('profile', 'setup', name, '--backend', storage_backend)
    assert invoke('profile', 'set-default', 'two').exit_code == 0
    rows = json.loads(invoke('profile', 'list', '--json').output)
    assert [(row['name'], row['default']) for row in rows] == [('one', False), ('two', True)]
    assert set(rows[0]) == {'name', 'default', 'storage_backend', 'uuid', 'folder'}
    table = invoke('profile', 'list').output.splitlines()
    assert table[0].split() == ['NAME', 'BACKEND', 'FOLDER']
    assert table[2].startswith('*')
    missing = invoke('profile', 'set-default', 'three')
    assert missing.exit_code == 1
    assert "No profile named 'three'" in missing.output


def test_delete_erases_data_unless_kept(storage_backend: str) -> None:
    """``profile delete --yes`` erases the storage and the folder; --keep-data only forgets the profile."""
    invoke('profile', 'setup', 'gone', '--backend', storage_backend)
    invoke('profile', 'setup', 'kept', '--backend', storage_backend)
    gone, kept = load_config().get_profile('gone'), load_config().get_profile('kept')
    assert invoke('profile', 'delete', 'gone', '--yes').exit_code == 0
    assert JsonStorageBackend.version_profile(gone) is None
    assert not gone.folder.exists()
    assert invoke('profile', 'delete', 'kept', '--keep-data', '--yes').exit_code == 0
    assert JsonStorageBackend.version_profile(kept) is not None
    assert load_config().profiles == {}


def test_delete_asks_first(storage_backend: str) -> None:
    """Without --yes, ``profile delete`` asks, and answering no changes nothing."""
    invoke('profile', 'setup', 'p', '--backend', storage_backend)
    result = invoke('profile', 'delete', 'p', input='n\n')
    assert result.exit_code == 1
    assert 'Aborted' in result.output
    assert 'p' in load_config().profiles


def test_quickstart_is_idempotent(storage_backend: str, config_folder: Path) -> None:
    """``quickstart`` creates a default profile and says where; run again, it does nothing."""
    first = invoke('quickstart', '--backend', storage_backend)
    assert first.exit_code == 0, first.output
    assert str(config_folder / CONFIG_FILENAME) in first.output
    assert load_config().get_profile().name == 'default'
    second = invoke('quickstart', '--backend', storage_backend)
    assert second.exit_code == 0
    assert 'exists already' in second.output


def test_storage_commands(storage_backend: str) -> None:
    """``storage version``, ``info``, ``maintain`` and ``migrate`` work on the profile chosen with -p."""
    invoke('profile', 'setup', 'a', '--backend', storage_backend)
    invoke('profile', 'setup', 'b', '--backend', storage_backend)
    version = invoke('-p', 'b', 'storage', 'version', '--json')
    assert version.exit_code == 0, version.output
    assert json.loads(version.output) == {'profile': 'b', 'head': '2', 'storage': '2'}
    info = json.loads(invoke('-p', 'b', 'storage', 'info', '--json').output)
    assert info['backend'] == storage_backend
    assert invoke('-p', 'b', 'storage', 'maintain', '--dry-run').exit_code == 0
    assert invoke('storage', 'maintain', '--full', '--yes').exit_code == 0
    assert 'already at 2' in invoke('storage', 'migrate').output


def test_storage_version_exit_code_when_migration_is_needed(storage_backend: str) -> None:
    """``storage version`` exits 3 when the storage is older than the code, and migrate fixes it."""
    invoke('profile', 'setup', 'old', '--backend', storage_backend)
    JsonStorageBackend.write_version(load_config().get_profile('old'), '1')
    assert invoke('storage', 'version').exit_code == 3
    info = invoke('storage', 'info')
    assert info.exit_code == 1
    assert 'provstore storage migrate' in info.output
    assert '1 -> 2' in invoke('storage', 'migrate').output
    assert invoke('storage', 'version').exit_code == 0


def test_missing_profile_is_a_one_line_error(storage_backend: str) -> None:
    """Asking for a profile that does not exist names it and the profiles there are."""
    invoke('profile', 'setup', 'real', '--backend', storage_backend)
    result = invoke('-p', 'ghost', 'storage', 'info')
    assert result.exit_code == 1
    assert result.output.count('\n') == 1
    assert "No profile named 'ghost'" in result.output
    assert 'profiles: real' in result.output


def test_corrupt_config_via_cli_leaves_file_untouched(config_folder: Path) -> None:
    """A truncated config file gives one error line naming the file, and the file is not rewritten."""
    path = config_folder / CONFIG_FILENAME
    path.write_text('{"version": 1, "profiles": {"x": ')
    before = path.read_bytes()
    for args in (('profile', 'list'), ('profile', 'set-default', 'x'), ('storage', 'info')):
        result = invoke(*args)
        assert result.exit_code == 1
        assert result.output.startswith(f'Error: {path}: not valid JSON')
        assert result.output.count('\n') == 1
    assert path.read_bytes() == before


def test_unknown_backend_in_config(storage_backend: str, config_folder: Path) -> None:
    """A profile naming a backend nobody provides fails to load with the profile, the backend and what exists."""
    invoke('profile', 'setup', 'p', '--backend', storage_backend)
    path = config_folder / CONFIG_FILENAME
    data = json.loads(path.read_text())
    data['profiles']['p']['storage']['backend'] = 'acme.vanished'
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"Profile 'p' cannot be opened: No storage backend named 'acme.vanished'"):
        get_manager().load_profile('p')


def test_profile_of_a_broken_plugin_names_the_plugin(fake_site: Callable[..., str], config_folder: Path) -> None:
    """When the plugin that provides a profile's backend failed, the error names it, its distribution and cause."""
    broken = '''
    from provstore import hookimpl
    from provstore.testing import JsonStorageBackend

    class AcmeStorage(JsonStorageBackend):
        """Acme storage."""
        name = 'acme.store'

    @hookimpl
    def register_storage_backends():
        raise RuntimeError('acme driver missing')
    '''
    fake_site('acme-storage', broken, entry_point='acme', version='3.1')
    (config_folder / CONFIG_FILENAME).write_text(
        json.dumps({'version': 1, 'profiles': {'p': {'uuid': 'u', 'storage': {'backend': 'acme.store'}}}})
    )
    with using_registry(PluginRegistry(RegistrySettings(strict=False))), pytest.raises(ConfigError) as info:
        get_manager().load_profile('p')
    message = str(info.value)
    assert "Profile 'p' cannot be opened" in message
    assert "plugin 'acme' (distribution acme-storage 3.1)" in message
    assert 'RuntimeError at call: acme driver missing' in message


def test_broken_plugin_in_a_fresh_process(fake_site: Callable[..., str], config_folder: Path, tmp_path: Path) -> None:
    """The same through the real CLI: one error line with the plugin's name and cause, exit code 1."""
    fake_site('acme-storage', 'raise ImportError("acme needs libacme.so")', entry_point='acme', version='3.1')
    (config_folder / CONFIG_FILENAME).write_text(
        json.dumps({'version': 1, 'profiles': {'p': {'uuid': 'u', 'storage': {'backend': 'acme.store'}}}})
    )
    site = str(tmp_path / 'site-packages')
    env = {**os.environ, 'PYTHONPATH': site + os.pathsep + os.environ.get('PYTHONPATH', '')}
    env['PROVSTORE_PLUGINS_STRICT'] = '0'
    command = [sys.executable, '-m', 'provstore.cli', '-p', 'p', 'storage', 'info']
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(error_lines) == 1
    assert (
        "plugin 'acme' (distribution acme-storage 3.1): ImportError at import: acme needs libacme.so" in error_lines[0]
    )


def test_manager_loads_lazily_and_switches(storage_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_profile opens nothing; storage opens on first use; loading another profile closes the first one's."""
    invoke('profile', 'setup', 'a', '--backend', storage_backend)
    invoke('profile', 'setup', 'b', '--backend', storage_backend)
    manager = Manager()
    assert manager.load_profile().name == 'a'
    storage = manager.get_profile_storage()
    assert manager.get_profile_storage() is storage
    monkeypatch.setenv('PROVSTORE_PROFILE', 'b')
    assert manager.load_profile().name == 'b'
    assert storage.is_closed
    assert manager.get_profile_storage().profile.name == 'b'
    manager.unload_profile()
    assert manager.get_profile() is None
    with pytest.raises(ProfileNotFoundError, match="No profile named 'c'"):
        manager.load_profile('c')


def test_manager_validates_storage_options(storage_backend: str, config_folder: Path) -> None:
    """Options in the config file are checked against the backend's declaration when the profile is loaded."""
    invoke('profile', 'setup', 'p', '--backend', storage_backend)
    path = config_folder / CONFIG_FILENAME
    data: dict[str, Any] = json.loads(path.read_text())
    data['profiles']['p']['storage']['config']['colour'] = 'blue'
    path.write_text(json.dumps(data))
    with pytest.raises(
        ConfigError, match=r"profile 'p': unknown option\(s\) colour; known options: filepath, password"
    ):
        Manager().load_profile('p')


def test_migration_and_full_maintenance_refused_while_another_process_uses_the_profile(storage_backend: str) -> None:
    """With another process holding the profile, migrate, full maintenance and delete are refused naming it;
    live maintenance still runs."""
    invoke('profile', 'setup', 'busy', '--backend', storage_backend)
    folder = load_config().get_profile('busy').folder
    holder_script = Path(__file__).with_name('profile_holder.py')
    holder = subprocess.Popen(
        [sys.executable, str(holder_script), str(folder), 'shared', 'notebook-session'],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == 'ready'
        for args in (
            ('storage', 'migrate'),
            ('storage', 'maintain', '--full', '--yes'),
            ('profile', 'delete', 'busy', '-y'),
        ):
            result = invoke(*args)
            assert result.exit_code == 1, args
            assert f'pid {holder.pid}' in result.output
            assert 'notebook-session' in result.output
        assert invoke('storage', 'maintain').exit_code == 0
        assert 'busy' in load_config().profiles
    finally:
        holder.communicate('\n', timeout=30)
    assert invoke('storage', 'maintain', '--full', '--yes').exit_code == 0
