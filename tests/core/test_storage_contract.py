"""The storage-backend contract run against the test backends, and the JSON backend's own behaviour."""

from __future__ import annotations

import datetime
import json
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from provstore.config import Profile
from provstore.exceptions import (
    ConfigError,
    IncompatibleStorageError,
    PluginNotFoundError,
    ReadOnlyStorageError,
    StorageError,
)
from provstore.options import SECRET_MASK, mask_secrets
from provstore.registry import IN_PROCESS, Kind, PluginRegistry, get_registry, get_storage_backend
from provstore.storage import StorageBackend
from provstore.testing import JsonStorageBackend, StorageBackendContract, new_profile
from provstore.testing.json_storage import TEST_STORAGE_PLUGIN, ReadOnlyJsonStorageBackend


class _SettingMarker:
    """The contract's data hooks for the JSON backends: one setting, written through the writable backend."""

    def write_data(self, profile: Profile) -> None:
        """Set the setting ``contract`` (the read-only backend's files are written by the writable one)."""
        storage = JsonStorageBackend(profile)
        try:
            storage.set_setting('contract', 'marker')
        finally:
            storage.close()

    def has_data(self, storage: StorageBackend) -> bool:
        """Return whether the setting ``contract`` is there."""
        assert isinstance(storage, JsonStorageBackend)
        return storage.get_settings().get('contract') == 'marker'


class TestJsonStorageContract(_SettingMarker, StorageBackendContract):
    """``test.json`` with its default folder, inside the profile's folder."""

    backend_class = JsonStorageBackend


class TestJsonStorageElsewhereContract(_SettingMarker, StorageBackendContract):
    """``test.json`` with option ``filepath`` naming a folder outside the profile's folder."""

    backend_class = JsonStorageBackend

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """A profile whose storage lives in ``<tmp_path>/elsewhere``."""
        config = JsonStorageBackend.validate_config({'filepath': str(tmp_path / 'elsewhere')}, 'the test')
        return Profile(name='elsewhere', storage_backend='test.json', storage_config=config, folder=tmp_path / 'p')


class TestReadOnlyJsonStorageContract(_SettingMarker, StorageBackendContract):
    """``test.json_readonly``: created by ``initialise``, written only by ``test.json``."""

    backend_class = ReadOnlyJsonStorageBackend


# -- the JSON backend's own behaviour -------------------------------------------------------------------------


def json_profile(folder: Path, backend: type[StorageBackend] = JsonStorageBackend, **config: str) -> Profile:
    """Return a profile named ``jsontest`` of ``backend`` in ``folder``, with ``config`` as its options."""
    return new_profile(backend, folder, name='jsontest', default_user_email=None, **config)


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    """A ``test.json`` profile with a fresh folder."""
    return json_profile(tmp_path / 'profile')


def write_storage_file(profile: Profile, version: str) -> Path:
    """Write by hand a storage file of ``version`` (layout 1: no ``created``) and return its path."""
    path = JsonStorageBackend.storage_file(profile)
    path.parent.mkdir(parents=True)
    content = {'schema_version': version, 'profile_uuid': profile.uuid, 'settings': {'kept': [1, 2]}}
    path.write_text(json.dumps(content))
    return path


def test_migrate_from_version_1(profile: Profile) -> None:
    """A version 1 storage does not open; migrating it records ``created`` and keeps the settings."""
    path = write_storage_file(profile, '1')
    assert JsonStorageBackend.version_profile(profile) == '1'
    with pytest.raises(IncompatibleStorageError, match=r"'jsontest' is at schema version 1, but this code needs 2"):
        JsonStorageBackend(profile)
    modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    JsonStorageBackend.migrate(profile)
    assert JsonStorageBackend.version_profile(profile) == '2'
    storage = JsonStorageBackend(profile)
    try:
        assert storage.get_settings() == {'kept': [1, 2]}
        created = storage.get_info(detailed=True)['created']
    finally:
        storage.close()
    assert datetime.datetime.fromisoformat(created) == modified


def test_initialise_migrates_version_1(profile: Profile) -> None:
    """``initialise`` of a version 1 storage migrates it and returns False."""
    write_storage_file(profile, '1')
    assert JsonStorageBackend.initialise(profile) is False
    assert JsonStorageBackend.version_profile(profile) == '2'


def test_read_only_refuses_migration(tmp_path: Path) -> None:
    """The read-only backend neither migrates nor initialises a version 1 storage; the file is left as it is."""
    profile = json_profile(tmp_path / 'profile', ReadOnlyJsonStorageBackend)
    path = write_storage_file(profile, '1')
    content = path.read_bytes()
    with pytest.raises(ReadOnlyStorageError, match=r'read-only: refusing to migrate it from schema version 1'):
        ReadOnlyJsonStorageBackend.migrate(profile)
    with pytest.raises(ReadOnlyStorageError, match='jsontest'):
        ReadOnlyJsonStorageBackend.initialise(profile)
    assert path.read_bytes() == content


def test_newer_version_is_incompatible(profile: Profile) -> None:
    """A storage newer than the code is refused by migrate, initialise and open, naming versions and profile."""
    path = write_storage_file(profile, '3')
    content = path.read_bytes()
    message = r"profile 'jsontest' is at schema version 3, newer than version 2 that this code reads"
    with pytest.raises(IncompatibleStorageError, match=message):
        JsonStorageBackend.migrate(profile)
    with pytest.raises(IncompatibleStorageError, match=message):
        JsonStorageBackend.initialise(profile)
    with pytest.raises(IncompatibleStorageError, match=r"'jsontest' is at schema version 3"):
        JsonStorageBackend(profile)
    assert path.read_bytes() == content


def test_write_version(profile: Profile) -> None:
    """``write_version`` changes the recorded version only, refuses a missing storage and the read-only backend."""
    with pytest.raises(StorageError, match=r"profile 'jsontest' \(test.json\) does not exist"):
        JsonStorageBackend.write_version(profile, '1')
    JsonStorageBackend.initialise(profile)
    before = json.loads(JsonStorageBackend.storage_file(profile).read_bytes())
    JsonStorageBackend.write_version(profile, '1')
    after = json.loads(JsonStorageBackend.storage_file(profile).read_bytes())
    assert after == {**before, 'schema_version': '1'}
    with pytest.raises(ReadOnlyStorageError, match='refusing to set its schema version to 2'):
        ReadOnlyJsonStorageBackend.write_version(profile, '2')
    JsonStorageBackend.migrate(profile)
    assert json.loads(JsonStorageBackend.storage_file(profile).read_bytes()) == before


def test_unknown_version(profile: Profile) -> None:
    """A version that is neither known nor newer is a StorageError, not an IncompatibleStorageError."""
    write_storage_file(profile, 'beta')
    with pytest.raises(StorageError, match=r"'jsontest' has the unknown schema version 'beta'") as excinfo:
        JsonStorageBackend.migrate(profile)
    assert excinfo.type is StorageError


@pytest.mark.parametrize(
    ('content', 'message'),
    [('not json', 'not valid JSON'), ('{"settings": {}}', 'not a JSON storage'), ('[]', 'not a JSON storage')],
)
def test_malformed_storage_file(profile: Profile, content: str, message: str) -> None:
    """A storage file that is not a JSON storage is a StorageError naming the file."""
    path = JsonStorageBackend.storage_file(profile)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(StorageError, match=rf'storage\.json: {message}'):
        JsonStorageBackend.version_profile(profile)


def test_storage_of_another_profile(tmp_path: Path) -> None:
    """A storage opened for a profile other than the one that created it is refused, naming both."""
    first = json_profile(tmp_path / 'first', filepath=str(tmp_path / 'shared'))
    JsonStorageBackend.initialise(first)
    second = json_profile(tmp_path / 'second', filepath=str(tmp_path / 'shared'))
    with pytest.raises(StorageError, match=rf'belongs to the profile with uuid {first.uuid}.*{second.uuid}'):
        JsonStorageBackend(second)


def test_folder_with_other_files_is_left_alone(tmp_path: Path) -> None:
    """A folder holding files that are not a storage is neither initialised nor erased."""
    folder = tmp_path / 'precious'
    folder.mkdir()
    (folder / 'thesis.tex').write_text('years of work')
    profile = json_profile(tmp_path / 'profile', filepath=str(folder))
    with pytest.raises(StorageError, match=r'not part of a JSON storage \(thesis\.tex\); refusing to create'):
        JsonStorageBackend.initialise(profile)
    with pytest.raises(StorageError, match=r'thesis\.tex\); refusing to delete it'):
        JsonStorageBackend.erase(profile)
    assert (folder / 'thesis.tex').read_text() == 'years of work'


def test_filepath_option(tmp_path: Path) -> None:
    """``filepath`` must be absolute; without it the profile needs a folder."""
    profile = json_profile(tmp_path / 'profile', filepath=str(tmp_path / 'there'))
    JsonStorageBackend.initialise(profile)
    assert (tmp_path / 'there' / 'storage.json').is_file()
    assert not (tmp_path / 'profile').exists()
    with pytest.raises(ConfigError, match=r"'filepath' must be an absolute path, got 'relative/path'"):
        JsonStorageBackend.version_profile(json_profile(tmp_path, filepath='relative/path'))
    with pytest.raises(ConfigError, match=r"profile 'jsontest' has no folder"):
        JsonStorageBackend.version_profile(json_profile(Path()))


def test_password_option_is_secret() -> None:
    """The dummy ``password`` option is declared secret, so listings mask it."""
    masked = mask_secrets(JsonStorageBackend.options, {'filepath': '/data', 'password': 'hunter2'})
    assert masked == {'filepath': '/data', 'password': SECRET_MASK}


def test_settings(profile: Profile) -> None:
    """Settings persist across instances; values must be JSON; the read-only backend refuses to set any."""
    JsonStorageBackend.initialise(profile)
    storage = JsonStorageBackend(profile)
    reader = ReadOnlyJsonStorageBackend(profile)
    try:
        storage.set_setting('answer', {'value': 42})
        assert reader.get_settings() == {'answer': {'value': 42}}
        with pytest.raises(TypeError, match=r"setting 'bad': the value is not JSON-serialisable"):
            storage.set_setting('bad', object())
        content = JsonStorageBackend.storage_file(profile).read_bytes()
        with pytest.raises(ReadOnlyStorageError, match=r"profile 'jsontest' \(test.json_readonly\) is read-only"):
            reader.set_setting('answer', 0)
        assert JsonStorageBackend.storage_file(profile).read_bytes() == content
    finally:
        storage.close()
        reader.close()


def test_maintenance(profile: Profile) -> None:
    """Live maintenance writes nothing; full maintenance removes leftover temporary files and compacts the file."""
    JsonStorageBackend.initialise(profile)
    path = JsonStorageBackend.storage_file(profile)
    leftover = path.parent / '.storage.json.interrupted.tmp'
    leftover.write_text('half a write')
    content = path.read_bytes()
    storage = JsonStorageBackend(profile)
    try:
        live = storage.maintain()
        assert (path.read_bytes(), leftover.exists()) == (content, True)
        assert live.details['bytes_after'] == len(content)
        dry = storage.maintain(full=True, dry_run=True)
        assert (path.read_bytes(), leftover.exists()) == (content, True)
        full = storage.maintain(full=True)
    finally:
        storage.close()
    assert not leftover.exists()
    assert json.loads(path.read_bytes()) == json.loads(content)
    assert len(path.read_bytes()) < len(content)
    assert dry.details == full.details
    assert full.details['temporary_files_removed'] == 1
    assert full.details['bytes_after'] == len(path.read_bytes())
    assert len(full.steps) == 3


def test_backend_classes_pickle() -> None:
    """Both classes are importable by name, so they pickle (child processes can use them)."""
    assert pickle.loads(pickle.dumps(JsonStorageBackend)) is JsonStorageBackend
    assert pickle.loads(pickle.dumps(ReadOnlyJsonStorageBackend)) is ReadOnlyJsonStorageBackend


# -- the fixture ----------------------------------------------------------------------------------------------


def test_fixture_registers_the_test_backends(test_storage_backend: type[JsonStorageBackend]) -> None:
    """Inside a test using ``test_storage_backend`` the registry resolves both test backends, from ``test_storage``."""
    assert test_storage_backend is JsonStorageBackend
    assert get_storage_backend('test.json') is JsonStorageBackend
    assert get_storage_backend('test.json_readonly') is ReadOnlyJsonStorageBackend
    record = get_registry().get_plugin('test_storage')
    assert record.distribution == IN_PROCESS
    assert record.status.value == 'loaded'
    assert list(record.provides.values()) == [('test.json', 'test.json_readonly')]


def test_test_backends_absent_without_fixture() -> None:
    """Without the fixture the registry knows no ``test.json``."""
    with pytest.raises(PluginNotFoundError, match=r"No storage backend named 'test\.json'"):
        get_storage_backend('test.json')


def test_plugin_object_registers_under_any_name(register_plugin: Callable[..., PluginRegistry]) -> None:
    """``TEST_STORAGE_PLUGIN`` is a plugin ``register_plugin`` accepts under any name."""
    registry = register_plugin(TEST_STORAGE_PLUGIN, name='other_name')
    assert registry.provider_of(Kind.STORAGE, 'test.json').name == 'other_name'
    assert registry.get_storage_backend('test.json_readonly') is ReadOnlyJsonStorageBackend


FIXTURE_SESSION = """
    import pytest
    from provstore.exceptions import PluginNotFoundError
    from provstore.registry import get_storage_backend

    def test_inside(test_storage_backend):
        assert get_storage_backend('test.json') is test_storage_backend

    def test_after():
        with pytest.raises(PluginNotFoundError):
            get_storage_backend('test.json')
"""


def test_fixture_registration_ends_with_the_test(tmp_path: Path) -> None:
    """In a pytest session of its own, a test after the one using the fixture no longer resolves ``test.json``."""
    (tmp_path / 'test_session.py').write_text(textwrap.dedent(FIXTURE_SESSION))
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-W', 'error', 'test_session.py']
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '2 passed' in result.stdout
