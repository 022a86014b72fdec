"""The configuration file: validation, atomic private writes, concurrent editors, upgrades."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provstore.config import CONFIG_FILENAME, CONFIG_VERSION, Profile, edit_config, load_config
from provstore.exceptions import ConfigError, ProfileNotFoundError


def write_raw(folder: Path, content: str) -> Path:
    """Write ``content`` as the config file in ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILENAME
    path.write_text(content)
    return path


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    """Reading a folder without a config file gives no profiles and writes nothing."""
    config = load_config(tmp_path / 'nothing')
    assert config.profiles == {}
    assert config.default_profile is None
    assert not (tmp_path / 'nothing').exists()
    with pytest.raises(ProfileNotFoundError, match=r'No default profile in .*config\.json'):
        config.get_profile()


def test_round_trip_and_layout(tmp_path: Path) -> None:
    """Profiles written through edit_config are read back equal, in the documented version-1 layout."""
    with edit_config(tmp_path) as config:
        first = config.add_profile(Profile('first', 'test.json', {'filepath': '/x'}, default_user_email='a@b.c'))
        config.add_profile(Profile('second', 'test.json'), set_default=True)
    reread = load_config(tmp_path)
    assert reread.get_profile('first') == first
    assert reread.get_profile('first').folder == tmp_path / 'profiles' / 'first'
    assert reread.default_profile == 'second'
    data = json.loads((tmp_path / CONFIG_FILENAME).read_text())
    assert data['version'] == CONFIG_VERSION
    assert data['profiles']['first'] == {
        'uuid': first.uuid,
        'storage': {'backend': 'test.json', 'config': {'filepath': '/x'}},
        'default_user_email': 'a@b.c',
        'options': {},
    }


def test_first_profile_becomes_default_and_removal(tmp_path: Path) -> None:
    """The first profile is the default; removing the default leaves none; names are unique."""
    with edit_config(tmp_path) as config:
        config.add_profile(Profile('only', 'test.json'))
        assert config.default_profile == 'only'
        with pytest.raises(ConfigError, match="A profile named 'only' already exists"):
            config.add_profile(Profile('only', 'test.json'))
    with edit_config(tmp_path) as config:
        config.remove_profile('only')
    assert load_config(tmp_path).default_profile is None
    with pytest.raises(ProfileNotFoundError, match=r"No profile named 'gone' in .*; profiles: none"):
        load_config(tmp_path).get_profile('gone')


@pytest.mark.parametrize('name', ['', '-dash', 'a/b', '../up', 'sp ace', 'x' * 65])
def test_bad_profile_names(name: str) -> None:
    """Profile names become folder names: anything but letters, digits, '_', '.', '-' is refused."""
    with pytest.raises(ConfigError, match='invalid profile name'):
        Profile(name, 'test.json')


def test_permissions_are_owner_only(tmp_path: Path) -> None:
    """The config folder is 0700 and the file 0600, even when the folder existed with looser permissions."""
    folder = tmp_path / 'config'
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with edit_config(folder) as config:
        config.add_profile(Profile('p', 'test.json', {'password': 'hunter2'}))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / CONFIG_FILENAME).stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir() if p.name.endswith('.tmp')] == []


def test_failed_edit_writes_nothing(tmp_path: Path) -> None:
    """When the block of edit_config raises, the file on disk is unchanged."""
    with edit_config(tmp_path) as config:
        config.add_profile(Profile('kept', 'test.json'))
    before = (tmp_path / CONFIG_FILENAME).read_bytes()
    with pytest.raises(RuntimeError, match='boom'), edit_config(tmp_path) as config:
        config.add_profile(Profile('lost', 'test.json'))
        raise RuntimeError('boom')
    assert (tmp_path / CONFIG_FILENAME).read_bytes() == before


@pytest.mark.parametrize(
    ('content', 'problem'),
    [
        ('{"version": 1, "profiles": {"a": {"uuid": "x", "sto', r'not valid JSON \(Unterminated string'),
        ('', r'not valid JSON \(Expecting value at line 1'),
        ('[]', r'the top level must be an object, got \[\]'),
        ('{"version": "1"}', r'version must be a non-negative integer, got .1.'),
        ('{"version": 1, "profiles": []}', r'profiles must be an object, got \[\]'),
        ('{"version": 1, "profiles": {"a": {"uuid": 3, "storage": {"backend": "x"}}}}', 'profiles.a.uuid must be a'),
        (
            '{"version": 1, "profiles": {"a": {"uuid": "u", "storage": {"backend": 7}}}}',
            'profiles.a.storage.backend must be a string, got 7',
        ),
        (
            '{"version": 1, "profiles": {"a": {"uuid": "u", "storage": {"backend": "b", "config": "x"}}}}',
            'profiles.a.storage.config must be an object',
        ),
        ('{"version": 1, "profiles": {"a": {"uuid": "u", "storage": {"backend": "b"}, "colour": 1}}}', 'colour'),
        ('{"version": 1, "profiles": {}, "default_profile": "ghost"}', "default_profile 'ghost' is not one of"),
        ('{"version": 1, "profiles": {"../x": {"uuid": "u", "storage": {"backend": "b"}}}}', 'invalid profile name'),
        ('{"version": 1, "surprise": true}', 'unknown top-level key'),
        ('{"version": 99}', r'written by a newer provstore \(config version 99\)'),
    ],
)
def test_corrupt_files_give_one_line_errors_and_stay_untouched(tmp_path: Path, content: str, problem: str) -> None:
    """Each kind of corruption is reported in one line naming the file and the problem; the file is unchanged."""
    path = write_raw(tmp_path, content)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(ConfigError, match=problem) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert message.startswith(f'{path}: ')
    assert '\n' not in message
    with pytest.raises(ConfigError, match=problem), edit_config(tmp_path):
        pass
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_older_version_is_upgraded_and_kept(tmp_path: Path) -> None:
    """A version-0 file is read as version 1; the first write keeps the original as config.json.v0.bak."""
    original = {
        'default_profile': 'old',
        'profiles': {'old': {'uuid': 'abc', 'storage_backend': 'test.json', 'storage_config': {'filepath': '/d'}}},
    }
    path = write_raw(tmp_path, json.dumps(original))
    config = load_config(tmp_path)
    assert config.read_version == 0
    assert config.get_profile().storage_config == {'filepath': '/d'}
    assert json.loads(path.read_text()) == original, 'reading alone never rewrites the file'
    with edit_config(tmp_path) as editable:
        editable.add_profile(Profile('new', 'test.json'))
    assert json.loads((tmp_path / 'config.json.v0.bak').read_text()) == original
    upgraded = json.loads(path.read_text())
    assert upgraded['version'] == CONFIG_VERSION
    assert upgraded['profiles']['old']['storage'] == {'backend': 'test.json', 'config': {'filepath': '/d'}}
    assert set(upgraded['profiles']) == {'old', 'new'}


ADD_PROFILES = """
import sys
from provstore.config import Profile, edit_config
folder, prefix = sys.argv[1], sys.argv[2]
for index in range(50):
    with edit_config(folder) as config:
        config.add_profile(Profile(f'{prefix}{index}', 'test.json', {'index': index}))
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Two processes each adding 50 profiles to one config file at once: all 100 are there, the file parses."""
    writers = [
        subprocess.Popen([sys.executable, '-c', ADD_PROFILES, str(tmp_path), prefix], stderr=subprocess.PIPE)
        for prefix in ('left', 'right')
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    config = load_config(tmp_path)
    assert sorted(config.profiles) == sorted(f'{prefix}{index}' for prefix in ('left', 'right') for index in range(50))
    assert all(config.profiles[f'left{i}'].storage_config == {'index': i} for i in range(50))
    json.loads((tmp_path / CONFIG_FILENAME).read_text())


def test_config_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$PROVSTORE_PATH chooses the configuration folder; without it, ~/.provstore is used."""
    from provstore.config import get_config_dir

    monkeypatch.setenv('PROVSTORE_PATH', str(tmp_path / 'here'))
    assert get_config_dir() == tmp_path / 'here'
    monkeypatch.delenv('PROVSTORE_PATH')
    monkeypatch.setenv('HOME', str(tmp_path))
    assert get_config_dir() == tmp_path / '.provstore'
    assert os.environ['HOME'] == str(tmp_path)
