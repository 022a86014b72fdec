"""Storage backends for tests, and the contract every storage backend passes.

:class:`JsonStorageBackend` (``test.json``) is a small but real storage backend: a JSON file of settings in a
folder of its own, written atomically, with a schema version and a migration. It has no database and no file
repository, so tests of the profile lifecycle (config, manager, CLI) run without any storage plugin installed.
:class:`ReadOnlyJsonStorageBackend` (``test.json_readonly``) reads the same files and refuses every change.
Register both for one test with the ``test_storage_backend`` fixture, or with
``register_plugin(TEST_STORAGE_PLUGIN, name='test_storage')``.

:class:`StorageBackendContract` is a base class of pytest tests. Subclass it in a test module whose name pytest
collects, set ``backend_class`` and implement the two data hooks::

    import pytest
    from provstore.testing import StorageBackendContract

    class TestMyStorageContract(StorageBackendContract):
        backend_class = MyStorageBackend

        def write_data(self, profile):
            with self.opened(profile) as storage:
                storage.set_something('contract', 'marker')

        def has_data(self, storage):
            return storage.get_something('contract') == 'marker'

Override the ``profile`` fixture when the backend's options have no usable defaults (a database server, for
example), and :meth:`StorageBackendContract.storage_paths` when the backend keeps files outside the profile's
folder and its ``filepath`` option.

What ``read_only`` means, as the contract checks it: the content of a read-only storage never changes through
its backend. Its storage can be created (``initialise`` of a storage that does not exist: an empty archive,
say) and erased whole, but resetting it, migrating it from an older version, a maintenance that is not a dry
run, and every write through an open instance raise :class:`~provstore.exceptions.ReadOnlyStorageError`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from provstore import hookimpl
from provstore.config import Profile
from provstore.exceptions import ConfigError, IncompatibleStorageError, ReadOnlyStorageError, StorageError
from provstore.files import write_atomically
from provstore.options import Option
from provstore.registry import NAME_PATTERN
from provstore.repository import MaintenanceReport
from provstore.storage import StorageBackend

__all__ = [
    'TEST_STORAGE_PLUGIN',
    'JsonStorageBackend',
    'JsonStoragePlugin',
    'ReadOnlyJsonStorageBackend',
    'StorageBackendContract',
]

STORAGE_FILENAME = 'storage.json'
"""The one file of a JSON storage, inside its folder."""

_TEMPORARY = re.compile(rf'\.{re.escape(STORAGE_FILENAME)}\..+\.tmp')
"""Names of the temporary files an atomic write uses; one is left behind only when a write is interrupted."""


# -- the JSON storage backend ---------------------------------------------------------------------------------


class JsonStorageBackend(StorageBackend):
    """A storage backend for tests: a JSON file of settings in the profile folder, no database.

    The storage is a folder (option ``filepath``, default ``<profile folder>/storage``) holding
    ``storage.json``: ``{"schema_version": "2", "profile_uuid": ..., "created": <ISO time>, "settings": {...}}``.
    Every write replaces the file atomically. Version ``1`` had no ``created``; :meth:`migrate` adds it.

    Settings are read and written with :meth:`get_settings` and :meth:`set_setting`; concurrent writers are
    not coordinated (the last one wins), which is enough for tests.
    """

    name: ClassVar[str] = 'test.json'
    options: ClassVar[tuple[Option, ...]] = (
        Option('filepath', str, default='', help='folder of the storage; default: <profile folder>/storage'),
        Option('password', str, default='', help='a dummy secret, to test masking', secret=True),
    )

    HEAD_VERSION: ClassVar[str] = '2'
    """The schema version this code reads and writes."""

    def __init__(self, profile: Profile) -> None:
        """Open the storage of ``profile``.

        :raises StorageError: if it does not exist, or belongs to another profile (its ``profile_uuid``).
        :raises IncompatibleStorageError: if its schema version is not :attr:`HEAD_VERSION`.
        """
        super().__init__(profile)
        self._path = self.storage_file(profile)
        stored_uuid = self._load().get('profile_uuid')
        if stored_uuid != profile.uuid:
            raise StorageError(
                f'The storage in {self._path.parent} belongs to the profile with uuid {stored_uuid}, not to profile '
                f'{profile.name!r} (uuid {profile.uuid})'
            )

    # -- where the storage is ---------------------------------------------------------------------------------

    @classmethod
    def storage_folder(cls, profile: Profile) -> Path:
        """Return the folder of the profile's storage: option ``filepath``, else ``<profile folder>/storage``.

        :raises ConfigError: if the options are invalid, ``filepath`` is relative, or neither it nor the
            profile's folder is set.
        """
        where = f'profile {profile.name!r}'
        filepath = cls.validate_config(dict(profile.storage_config), where)['filepath']
        if filepath:
            folder = Path(filepath).expanduser()
            if not folder.is_absolute():
                raise ConfigError(f"{where}: option 'filepath' must be an absolute path, got {filepath!r}")
            return folder
        if profile.folder == Path():
            raise ConfigError(f"{where} has no folder; give the option 'filepath'")
        return profile.folder / 'storage'

    @classmethod
    def storage_file(cls, profile: Profile) -> Path:
        """Return the path of the profile's ``storage.json``."""
        return cls.storage_folder(profile) / STORAGE_FILENAME

    # -- lifecycle --------------------------------------------------------------------------------------------

    @classmethod
    def version_head(cls) -> str:
        """Return :attr:`HEAD_VERSION`."""
        return cls.HEAD_VERSION

    @classmethod
    def version_profile(cls, profile: Profile) -> str | None:
        """Return the schema version in the profile's ``storage.json``, or ``None`` when there is none.

        :raises StorageError: if the file cannot be read or is not a JSON storage.
        """
        data = _read_storage(cls.storage_file(profile))
        return None if data is None else str(data['schema_version'])

    @classmethod
    def initialise(cls, profile: Profile, reset: bool = False) -> bool:
        """Create the storage at the head version, or migrate it when it exists (after erasing it if ``reset``).

        :return: ``True`` if the storage was created or reset, ``False`` if it existed.
        :raises StorageError: if the folder holds files that are not a JSON storage.
        :raises ReadOnlyStorageError: for a read-only backend asked to reset (or migrate) an existing storage.
        """
        if cls.version_profile(profile) is not None:
            if not reset:
                cls.migrate(profile)
                return False
            cls._refuse_if_read_only(profile, 'reset it')
            cls.erase(profile)
        folder = cls.storage_folder(profile)
        _check_only_ours(folder, 'create a storage in it')
        folder.mkdir(parents=True, exist_ok=True)
        created = datetime.datetime.now(datetime.timezone.utc).isoformat()
        data = {'schema_version': cls.HEAD_VERSION, 'profile_uuid': profile.uuid, 'created': created, 'settings': {}}
        write_atomically(folder / STORAGE_FILENAME, _dump(data))
        return True

    @classmethod
    def migrate(cls, profile: Profile) -> None:
        """Bring the storage to :attr:`HEAD_VERSION`; nothing is written when it is there already.

        :raises StorageError: if the storage does not exist or its version is unknown.
        :raises IncompatibleStorageError: if its version is newer than this code.
        :raises ReadOnlyStorageError: for a read-only backend, when there is anything to migrate.
        """
        path = cls.storage_file(profile)
        data = _read_storage(path)
        if data is None:
            raise StorageError(f'The storage of profile {profile.name!r} ({cls.name}) does not exist in {path.parent}')
        version = str(data['schema_version'])
        if version == cls.HEAD_VERSION:
            return
        if version not in _UPGRADES:
            if version.isdigit() and int(version) > int(cls.HEAD_VERSION):
                raise IncompatibleStorageError(
                    f'The storage of profile {profile.name!r} is at schema version {version}, newer than version '
                    f'{cls.HEAD_VERSION} that this code reads; upgrade the code, the storage was left as it is'
                )
            raise StorageError(f'The storage of profile {profile.name!r} has the unknown schema version {version!r}')
        cls._refuse_if_read_only(profile, f'migrate it from schema version {version}')
        while version != cls.HEAD_VERSION:
            data = _UPGRADES[version](path, data)
            version = str(data['schema_version'])
        write_atomically(path, _dump(data))

    @classmethod
    def erase(cls, profile: Profile) -> None:
        """Delete the storage folder with everything in it; nothing to do when it does not exist.

        :raises StorageError: if the folder holds files that are not a JSON storage (they are left alone).
        """
        folder = cls.storage_folder(profile)
        if folder.exists():
            _check_only_ours(folder, 'delete it')
            shutil.rmtree(folder)

    @classmethod
    def write_version(cls, profile: Profile, version: str) -> None:
        """Record ``version`` as the schema version of the profile's storage, changing nothing else.

        For tests of storages older or newer than the code; nothing is migrated.

        :raises StorageError: if the storage does not exist.
        :raises ReadOnlyStorageError: for a read-only backend (write with :class:`JsonStorageBackend`).
        """
        cls._refuse_if_read_only(profile, f'set its schema version to {version}')
        path = cls.storage_file(profile)
        data = _read_storage(path)
        if data is None:
            raise StorageError(f'The storage of profile {profile.name!r} ({cls.name}) does not exist in {path.parent}')
        write_atomically(path, _dump({**data, 'schema_version': version}))

    @classmethod
    def _refuse_if_read_only(cls, profile: Profile, action: str) -> None:
        """Raise :class:`ReadOnlyStorageError` naming ``action`` if this backend is read-only."""
        if cls.read_only:
            raise ReadOnlyStorageError(
                f'The storage of profile {profile.name!r} ({cls.name}) is read-only: refusing to {action}'
            )

    # -- an open storage --------------------------------------------------------------------------------------

    def _close(self) -> None:
        """Nothing to release: every call reads the file afresh."""

    def get_settings(self) -> dict[str, Any]:
        """Return a copy of every setting."""
        self.check_open()
        return copy.deepcopy(dict(self._load()['settings']))

    def set_setting(self, key: str, value: Any) -> None:
        """Set the setting ``key`` to the JSON-serialisable ``value``.

        :raises ReadOnlyStorageError: if the backend is read-only.
        :raises TypeError: if ``value`` cannot be written as JSON.
        """
        self.check_writable()
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f'setting {key!r}: the value is not JSON-serialisable ({exc})') from None
        data = self._load()
        data['settings'][key] = value
        write_atomically(self._path, _dump(data))

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the backend name, the storage folder and schema version; ``detailed`` adds sizes and origin."""
        self.check_open()
        data = self._load()
        info: dict[str, Any] = {
            'backend': self.name,
            'filepath': str(self._path.parent),
            'schema_version': data['schema_version'],
        }
        if detailed:
            info['profile_uuid'] = data.get('profile_uuid')
            info['created'] = data.get('created')
            info['settings'] = len(data['settings'])
            info['size_bytes'] = self._path.stat().st_size
        return info

    def maintain(self, full: bool = False, dry_run: bool = False) -> MaintenanceReport:
        """Check the file; when ``full``, also remove temporary files of interrupted writes and rewrite it compactly.

        :raises ReadOnlyStorageError: unless ``dry_run``, if the backend is read-only.
        """
        if dry_run:
            self.check_open()
        else:
            self.check_writable()
        data = self._load()
        size = self._path.stat().st_size
        steps = [f'check {self._path}: schema version {data["schema_version"]}, {len(data["settings"])} setting(s)']
        details: dict[str, Any] = {'bytes_before': size, 'bytes_after': size, 'temporary_files_removed': 0}
        if full:
            leftovers = sorted(path for path in self._path.parent.iterdir() if _TEMPORARY.fullmatch(path.name))
            compact = _dump(data, compact=True)
            steps.append(f'remove {len(leftovers)} temporary file(s) left by interrupted writes')
            steps.append(f'rewrite {STORAGE_FILENAME} compactly: {size} -> {len(compact)} bytes')
            details.update(bytes_after=len(compact), temporary_files_removed=len(leftovers))
            if not dry_run:
                for leftover in leftovers:
                    leftover.unlink(missing_ok=True)
                write_atomically(self._path, compact)
        return MaintenanceReport(dry_run=dry_run, live=not full, steps=tuple(steps), details=details)

    def _load(self) -> dict[str, Any]:
        """Read the storage file of this open storage, which must exist and be at the head version."""
        data = _read_storage(self._path)
        if data is None:
            raise StorageError(
                f'The storage of profile {self._profile.name!r} has been erased from {self._path.parent}'
            )
        if data['schema_version'] != self.HEAD_VERSION:
            raise IncompatibleStorageError(
                f'The storage of profile {self._profile.name!r} changed to schema version {data["schema_version"]} '
                f'while open; this code needs {self.HEAD_VERSION}'
            )
        return data


class ReadOnlyJsonStorageBackend(JsonStorageBackend):
    """A read-only storage backend for tests: the files of ``test.json``, never changed.

    It creates a storage that does not exist (``initialise``), reads it and erases it whole, like an archive
    opened in place; resetting it, migrating it, :meth:`set_setting` and maintenance other than a dry run raise
    :class:`~provstore.exceptions.ReadOnlyStorageError`. Write its content with :class:`JsonStorageBackend`.
    """

    name: ClassVar[str] = 'test.json_readonly'
    read_only: ClassVar[bool] = True


def _read_storage(path: Path) -> dict[str, Any] | None:
    """Return the content of the storage file at ``path``, or ``None`` when there is none.

    :raises StorageError: naming the file, if it cannot be read or is not a JSON storage.
    """
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f'{path}: cannot read the storage: {exc.strerror or exc}') from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(f'{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})') from None
    if not isinstance(data, dict) or not isinstance(data.get('schema_version'), str):
        raise StorageError(f'{path}: not a JSON storage (no string "schema_version")')
    if not isinstance(data.setdefault('settings', {}), dict):
        raise StorageError(f'{path}: "settings" must be an object')
    return data


def _upgrade_1_to_2(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 did not record when the storage was created: take the time the file was last written."""
    modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    return {**data, 'schema_version': '2', 'created': data.get('created', modified.isoformat())}


_UPGRADES: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {'1': _upgrade_1_to_2}
"""``_UPGRADES[v]`` turns the content of a version ``v`` storage into the next version."""


def _dump(data: Mapping[str, Any], compact: bool = False) -> bytes:
    if compact:
        return json.dumps(data, sort_keys=True, separators=(',', ':')).encode()
    return (json.dumps(data, sort_keys=True, indent=2) + '\n').encode()


def _check_only_ours(folder: Path, action: str) -> None:
    """Raise :class:`StorageError` if ``folder`` holds anything but a storage file and its temporary files."""
    if not folder.is_dir():
        if folder.exists():
            raise StorageError(f'{folder} is not a folder; refusing to {action}')
        return
    foreign = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name != STORAGE_FILENAME and not _TEMPORARY.fullmatch(entry.name)
    )
    if foreign:
        shown = ', '.join(foreign[:5]) + (', ...' if len(foreign) > 5 else '')
        raise StorageError(f'{folder} holds files that are not part of a JSON storage ({shown}); refusing to {action}')


# -- the in-process plugin --------------------------------------------------------------------------------------


class JsonStoragePlugin:
    """An in-process plugin providing the storage backends ``test.json`` and ``test.json_readonly``."""

    @staticmethod
    @hookimpl
    def register_storage_backends() -> list[type[StorageBackend]]:
        """Return :class:`JsonStorageBackend` and :class:`ReadOnlyJsonStorageBackend`."""
        return [JsonStorageBackend, ReadOnlyJsonStorageBackend]


TEST_STORAGE_PLUGIN = JsonStoragePlugin()
"""Register it with ``register_plugin(TEST_STORAGE_PLUGIN, name='test_storage')``."""


# -- the contract -----------------------------------------------------------------------------------------------


class StorageBackendContract:
    """The behaviour every :class:`~provstore.storage.StorageBackend` must show.

    Subclass it (with a name starting with ``Test``), set :attr:`backend_class` and implement :meth:`write_data`
    and :meth:`has_data`. Every test starts from a profile whose storage does not exist and erases it afterwards.
    """

    backend_class: ClassVar[type[StorageBackend]]
    """The backend class under test."""

    # -- fixtures and hooks -----------------------------------------------------------------------------------

    @pytest.fixture
    def profile(self, tmp_path: Path) -> Profile:
        """A profile of :attr:`backend_class` with its default options and a fresh folder; override if needed."""
        return Profile(
            name='contract',
            storage_backend=self.backend_class.name,
            storage_config=self.backend_class.validate_config({}, "profile 'contract'"),
            folder=tmp_path / 'profile',
        )

    @pytest.fixture(autouse=True)
    def _erase_afterwards(self, profile: Profile) -> Iterator[None]:
        """Erase the profile's storage after each test, whatever the test left."""
        yield
        self.backend_class.erase(profile)

    @pytest.fixture
    def storage(self, profile: Profile) -> Iterator[StorageBackend]:
        """The profile's storage, initialised and open; closed after the test."""
        self.backend_class.initialise(profile)
        storage = self.backend_class(profile)
        try:
            yield storage
        finally:
            storage.close()

    def write_data(self, profile: Profile) -> None:
        """Put something recognisable by :meth:`has_data` into the profile's initialised storage.

        Any means will do: a read-only backend's tests write it with whatever makes the backend's files.
        """
        raise NotImplementedError(f'{type(self).__name__} must implement `write_data(profile)`')

    def has_data(self, storage: StorageBackend) -> bool:
        """Return whether the open ``storage`` holds what :meth:`write_data` put there."""
        raise NotImplementedError(f'{type(self).__name__} must implement `has_data(storage)`')

    def storage_paths(self, profile: Profile) -> list[Path]:
        """Return the folders and files where the profile's storage lives: its folder and option ``filepath``."""
        paths = [profile.folder]
        filepath = profile.storage_config.get('filepath')
        if filepath:
            paths.append(Path(filepath))
        return paths

    # -- helpers ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def opened(self, profile: Profile) -> Iterator[StorageBackend]:
        """Open the profile's storage for the block and close it afterwards."""
        storage = self.backend_class(profile)
        try:
            yield storage
        finally:
            storage.close()

    def snapshot(self, profile: Profile) -> dict[str, bytes | None]:
        """Return every folder (``None``) and file (its bytes) under :meth:`storage_paths`, by path."""
        result: dict[str, bytes | None] = {}
        for root in self.storage_paths(profile):
            paths = [root, *root.rglob('*')] if root.is_dir() else [root] if root.exists() else []
            for path in paths:
                result[str(path)] = None if path.is_dir() else path.read_bytes()
        return result

    # -- declarations -----------------------------------------------------------------------------------------

    def test_name_and_summary(self) -> None:
        """The class has a valid ``name`` (lower-case words joined by dots) and a one-line summary docstring."""
        assert isinstance(self.backend_class.name, str)
        assert NAME_PATTERN.fullmatch(self.backend_class.name), self.backend_class.name
        assert self.backend_class.__doc__
        assert self.backend_class.__doc__.strip().splitlines()[0].strip()
        assert isinstance(self.backend_class.read_only, bool)

    def test_options_are_declared(self) -> None:
        """``options`` is a tuple of :class:`~provstore.options.Option` with unique names, each with help text."""
        options = self.backend_class.options
        assert isinstance(options, tuple)
        assert all(isinstance(option, Option) for option in options)
        names = [option.name for option in options]
        assert len(set(names)) == len(names), f'duplicate option names in {names}'
        assert all(name.isidentifier() for name in names), names
        assert all(option.help.strip() for option in options), [option.name for option in options if not option.help]

    def test_validate_config_fills_defaults(self, profile: Profile) -> None:
        """Options left out of a valid configuration come back with their defaults; given ones are kept."""
        given = self.backend_class.validate_config(dict(profile.storage_config), 'the contract')
        assert set(given) == {option.name for option in self.backend_class.options}
        assert self.backend_class.validate_config(given, 'the contract') == given
        minimal = {option.name: given[option.name] for option in self.backend_class.options if option.required}
        validated = self.backend_class.validate_config(minimal, 'the contract')
        assert set(validated) == set(given)
        for option in self.backend_class.options:
            expected = given[option.name] if option.required else option.default
            assert validated[option.name] == expected, option.name

    def test_validate_config_rejects_unknown_option(self, profile: Profile) -> None:
        """An unknown key is a ConfigError naming it and where it was found."""
        config = {**profile.storage_config, 'no_such_option': 1}
        with pytest.raises(ConfigError, match=r'the contract.*no_such_option'):
            self.backend_class.validate_config(config, 'the contract')

    def test_version_head(self) -> None:
        """``version_head`` is a non-empty string, the same on every call."""
        head = self.backend_class.version_head()
        assert isinstance(head, str)
        assert head
        assert self.backend_class.version_head() == head

    # -- creating and opening ---------------------------------------------------------------------------------

    def test_version_profile_before_initialise(self, profile: Profile) -> None:
        """A storage that was never initialised has no version."""
        assert self.backend_class.version_profile(profile) is None

    def test_open_before_initialise_fails(self, profile: Profile) -> None:
        """Opening a storage that does not exist is a StorageError naming the profile."""
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class(profile)

    def test_initialise_creates_storage_at_head(self, profile: Profile) -> None:
        """``initialise`` of a new storage returns True and leaves it at the head version."""
        assert self.backend_class.initialise(profile) is True
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()

    def test_initialise_existing_keeps_storage(self, profile: Profile) -> None:
        """``initialise`` of an existing storage returns False and keeps its version, figures and data."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        with self.opened(profile) as storage:
            info = storage.get_info()
        assert self.backend_class.initialise(profile) is False
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert storage.get_info() == info
            assert self.has_data(storage)

    def test_open_after_initialise(self, storage: StorageBackend, profile: Profile) -> None:
        """An initialised storage opens: an open instance of the class, for the profile, that has no data yet."""
        assert isinstance(storage, self.backend_class)
        assert storage.is_closed is False
        assert storage.profile == profile
        assert self.has_data(storage) is False

    def test_two_instances_share_storage(self, storage: StorageBackend, profile: Profile) -> None:
        """A second instance opened on the same profile sees the same storage; closing it leaves the first open."""
        self.write_data(profile)
        with self.opened(profile) as other:
            assert other.get_info() == storage.get_info()
            assert self.has_data(other)
        assert storage.is_closed is False
        assert self.has_data(storage)

    # -- closing ----------------------------------------------------------------------------------------------

    def test_close(self, storage: StorageBackend) -> None:
        """``close`` marks the instance closed, may be repeated, and makes it unusable (StorageError)."""
        storage.close()
        assert storage.is_closed is True
        storage.close()
        assert storage.is_closed is True
        with pytest.raises(StorageError, match='closed'):
            storage.get_info()
        with pytest.raises(StorageError, match='closed'):
            storage.maintain(dry_run=True)
        with pytest.raises(StorageError, match='closed'):
            storage.check_writable()

    def test_reopen_after_close(self, storage: StorageBackend, profile: Profile) -> None:
        """After an instance is closed, the storage opens again with the same figures and data."""
        self.write_data(profile)
        info = storage.get_info()
        storage.close()
        with self.opened(profile) as again:
            assert again.is_closed is False
            assert again.get_info() == info
            assert self.has_data(again)

    # -- migrating --------------------------------------------------------------------------------------------

    def test_migrate_when_current_is_noop(self, profile: Profile) -> None:
        """Migrating a storage at the head version keeps its version, figures and data, and it still opens."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        with self.opened(profile) as storage:
            info = storage.get_info()
        self.backend_class.migrate(profile)
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert storage.get_info() == info
            assert self.has_data(storage)

    def test_migrate_missing_storage_fails(self, profile: Profile) -> None:
        """Migrating a storage that does not exist is a StorageError naming the profile, and creates nothing."""
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class.migrate(profile)
        assert self.backend_class.version_profile(profile) is None

    # -- figures and maintenance ------------------------------------------------------------------------------

    @pytest.mark.parametrize('detailed', [False, True])
    def test_get_info_is_json(self, storage: StorageBackend, detailed: bool) -> None:
        """``get_info`` returns a non-empty dict that survives a JSON round trip unchanged."""
        info = storage.get_info(detailed=detailed)
        assert isinstance(info, dict)
        assert info
        assert json.loads(json.dumps(info)) == info

    @pytest.mark.parametrize('full', [False, True])
    def test_maintain_dry_run_changes_nothing(self, storage: StorageBackend, profile: Profile, full: bool) -> None:
        """A dry run reports what it would do (a MaintenanceReport) and leaves every file as it was."""
        self.write_data(profile)
        before = self.snapshot(profile)
        assert before, 'the storage has no files under storage_paths(); override it'
        report = storage.maintain(full=full, dry_run=True)
        assert self.snapshot(profile) == before
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is True
        assert report.live is (not full)
        assert all(isinstance(step, str) for step in report.steps)
        assert json.loads(json.dumps(report.details)) == report.details

    @pytest.mark.parametrize('full', [False, True])
    def test_maintain(self, storage: StorageBackend, profile: Profile, full: bool) -> None:
        """Maintenance returns a MaintenanceReport and keeps the data; a read-only storage refuses and is unchanged."""
        self.write_data(profile)
        if self.backend_class.read_only:
            before = self.snapshot(profile)
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                storage.maintain(full=full)
            assert self.snapshot(profile) == before
            return
        report = storage.maintain(full=full)
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is False
        assert report.live is (not full)
        assert all(isinstance(step, str) for step in report.steps)
        assert json.loads(json.dumps(report.details)) == report.details
        assert self.has_data(storage)
        with self.opened(profile) as again:
            assert self.has_data(again)

    def test_check_writable(self, storage: StorageBackend, profile: Profile) -> None:
        """``check_writable`` raises ReadOnlyStorageError naming the profile exactly when the backend is read-only."""
        if self.backend_class.read_only:
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                storage.check_writable()
        else:
            storage.check_writable()
            assert storage.is_closed is False

    # -- erasing and resetting --------------------------------------------------------------------------------

    def test_erase(self, profile: Profile) -> None:
        """Erasing removes the storage and its data: no version, opening fails, erasing again is fine."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None
        with pytest.raises(StorageError, match=re.escape(repr(profile.name))):
            self.backend_class(profile)
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None
        assert self.backend_class.initialise(profile) is True
        with self.opened(profile) as storage:
            assert self.has_data(storage) is False

    def test_erase_missing_storage(self, profile: Profile) -> None:
        """Erasing a storage that was never created does nothing and raises nothing."""
        self.backend_class.erase(profile)
        assert self.backend_class.version_profile(profile) is None

    def test_initialise_reset(self, profile: Profile) -> None:
        """``initialise(reset=True)`` gives a fresh, empty storage; a read-only storage refuses and is unchanged."""
        self.backend_class.initialise(profile)
        self.write_data(profile)
        if self.backend_class.read_only:
            before = self.snapshot(profile)
            with pytest.raises(ReadOnlyStorageError, match=re.escape(repr(profile.name))):
                self.backend_class.initialise(profile, reset=True)
            assert self.snapshot(profile) == before
            with self.opened(profile) as storage:
                assert self.has_data(storage)
            return
        assert self.backend_class.initialise(profile, reset=True) is True
        assert self.backend_class.version_profile(profile) == self.backend_class.version_head()
        with self.opened(profile) as storage:
            assert self.has_data(storage) is False
