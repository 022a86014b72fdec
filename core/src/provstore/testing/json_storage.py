"""A toy storage backend for tests of the profile lifecycle, registered in-process.

:class:`JsonStorageBackend` (``test.json``) is a small but real storage backend: a JSON file of settings in a
folder of its own, written atomically, with a schema version and a migration. It has no database and no file
repository, so tests of the profile lifecycle (config, manager, CLI) run without any storage plugin installed.
:class:`ReadOnlyJsonStorageBackend` (``test.json_readonly``) reads the same files and refuses every change.
Register both for one test with the ``test_storage_backend`` fixture, or with
``register_plugin(TEST_STORAGE_PLUGIN, name='test_storage')``.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from provstore import hookimpl
from provstore.config import Profile
from provstore.exceptions import ConfigError, IncompatibleStorageError, ReadOnlyStorageError, StorageError
from provstore.files import write_atomically
from provstore.options import Option
from provstore.repository import MaintenanceReport
from provstore.storage import StorageBackend

__all__ = ['TEST_STORAGE_PLUGIN', 'JsonStorageBackend', 'JsonStoragePlugin', 'ReadOnlyJsonStorageBackend']

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

    def maintain(self, full: bool = False, dry_run: bool = False, compress: bool = False) -> MaintenanceReport:
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
