"""The manager of this process: which profile is loaded, and its storage, opened on first use.

Opening a profile's storage takes the profile's shared access lock, held until the profile is unloaded or the
process ends; migration and full maintenance take the exclusive lock (:mod:`provstore.profile_access`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from provstore.config import Profile, load_config
from provstore.exceptions import ConfigError, PluginNotFoundError, StorageError
from provstore.profile_access import ProfileAccess
from provstore.registry import get_registry

if TYPE_CHECKING:
    from provstore.repository import MaintenanceReport
    from provstore.storage import StorageBackend

__all__ = [
    'PROFILE_ENVIRONMENT_VARIABLE',
    'Manager',
    'checked_profile',
    'get_manager',
    'get_storage_class',
    'maintain_storage',
    'migrate_storage',
    'reset_manager',
    'restore_storage',
]

PROFILE_ENVIRONMENT_VARIABLE = 'PROVSTORE_PROFILE'
"""Names the profile :meth:`Manager.load_profile` loads when it is given no name."""


def get_storage_class(profile: Profile) -> type[StorageBackend]:
    """Return the storage backend class of ``profile``.

    :raises ConfigError: naming the profile, the backend and, when a plugin failed to load, that plugin, its
        distribution and the cause.
    """
    try:
        return get_registry().get_storage_backend(profile.storage_backend)
    except PluginNotFoundError as exc:
        raise ConfigError(f'Profile {profile.name!r} cannot be opened: {exc}') from None


def checked_profile(profile: Profile) -> Profile:
    """Return ``profile`` with its storage options checked against its backend's declaration, defaults filled."""
    storage_class = get_storage_class(profile)
    config = storage_class.validate_config(dict(profile.storage_config), f'profile {profile.name!r}')
    return dataclasses.replace(profile, storage_config=config)


class Manager:
    """Holds the loaded profile and its open storage. Use :func:`get_manager` for the one of this process."""

    def __init__(self, config_folder: str | os.PathLike[str] | None = None) -> None:
        """:param config_folder: the configuration folder; default ``$PROVSTORE_PATH`` or ``~/.provstore``."""
        self._config_folder = config_folder
        self._profile: Profile | None = None
        self._storage: StorageBackend | None = None
        self._archive: tuple[Path, str] | None = None  # the file and format of an archive loaded in place

    def load_profile(self, name: str | None = None) -> Profile:
        """Load the profile ``name``, else ``$PROVSTORE_PROFILE``, else the default profile, and return it.

        Loading a different profile closes the storage of the previous one. The storage itself is opened
        only when :meth:`get_profile_storage` is first called.

        :raises ProfileNotFoundError: if there is no such profile.
        :raises ConfigError: if the configuration file or the profile's options are invalid, or its backend is
            not installed.
        """
        name = name or os.environ.get(PROFILE_ENVIRONMENT_VARIABLE) or None
        profile = checked_profile(load_config(self._config_folder).get_profile(name))
        if self._profile is not None and (self._archive is not None or self._profile.name != profile.name):
            self.unload_profile()
        self._profile = profile
        return profile

    def load_archive(self, path: str | os.PathLike[str], format_name: str) -> Profile:
        """Open the archive at ``path`` read-only in place, through the archive format ``format_name``, as the
        loaded profile, and return that profile.

        No configuration file is read or written, and no lock file is made beside the archive.

        :raises ArchiveError: if the file is not a readable archive of that format.
        :raises PluginNotFoundError: if no installed plugin provides the format.
        """
        where = (Path(path).expanduser().absolute(), format_name)
        if self._archive == where and self._storage is not None and not self._storage.is_closed:
            return self._storage.profile
        storage = get_registry().get_archive_format(format_name).open(where[0])
        self.unload_profile()
        self._profile, self._storage, self._archive = storage.profile, storage, where
        return storage.profile

    def get_profile(self) -> Profile | None:
        """Return the loaded profile, or ``None``."""
        return self._profile

    def get_profile_storage(self) -> StorageBackend:
        """Return the storage of the loaded profile (loading the default profile if none is), opening it once.

        :raises ProfileLockedError: if another process holds the profile exclusively (migration, maintenance).
        """
        if self._storage is not None and not self._storage.is_closed:
            return self._storage
        if self._archive is not None:
            self.load_archive(*self._archive)
            assert self._storage is not None
            return self._storage
        profile = self._profile or self.load_profile()
        storage_class = get_storage_class(profile)
        access = ProfileAccess.for_folder(profile.folder)
        access.acquire_shared()
        try:
            self._storage = storage_class(profile)
        except BaseException:
            access.release()
            raise
        return self._storage

    def unload_profile(self) -> None:
        """Close the storage of the loaded profile, release its access lock and forget the profile."""
        if self._storage is not None:
            self._storage.close()
            self._storage = None
        if self._profile is not None and self._archive is None:
            ProfileAccess.for_folder(self._profile.folder).release()
        self._profile = self._archive = None


def migrate_storage(profile: Profile, timeout: float = 0.0) -> tuple[str | None, str]:
    """Migrate the storage of ``profile`` to the head version, holding the profile's exclusive lock.

    :param timeout: seconds to wait for other processes to let go of the profile.
    :return: the versions before and after.
    :raises ProfileLockedError: naming the processes that use the profile, when they do not let go in time.
    """
    storage_class = get_storage_class(profile)
    with ProfileAccess.for_folder(profile.folder).exclusive(timeout):
        before = storage_class.version_profile(profile)
        if before is None:
            raise StorageError(f'The storage of profile {profile.name!r} has not been initialised')
        storage_class.migrate(profile)
        return before, storage_class.version_profile(profile) or ''


def maintain_storage(
    storage: StorageBackend, full: bool = False, dry_run: bool = False, timeout: float = 0.0, compress: bool = False
) -> MaintenanceReport:
    """Run maintenance on an open storage; full maintenance holds the profile's exclusive lock.

    :raises ProfileLockedError: when ``full`` and other processes use the profile.
    """
    if not full:
        return storage.maintain(full=False, dry_run=dry_run, compress=compress)
    with ProfileAccess.for_folder(storage.profile.folder).exclusive(timeout):
        return storage.maintain(full=True, dry_run=dry_run, compress=compress)


def restore_storage(
    source: str | os.PathLike[str],
    name: str,
    *,
    database_name: str | None = None,
    force: bool = False,
    timeout: float = 0.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Profile:
    """Create the profile ``name`` from a backup: :func:`provstore.storage.backup.restore_backup` with the installed
    storage backends."""
    from provstore.storage.backup import restore_backup  # noqa: PLC0415 - only when a backup is restored

    return restore_backup(
        source,
        name,
        database_name=database_name,
        force=force,
        timeout=timeout,
        progress=progress,
        backend_of=get_registry().get_storage_backend,
    )


_MANAGER: Manager | None = None


def reset_manager() -> None:
    """Unload the profile of this process's manager and forget the manager (tests)."""
    global _MANAGER  # noqa: PLW0603
    if _MANAGER is not None:
        _MANAGER.unload_profile()
    _MANAGER = None


def get_manager() -> Manager:
    """Return the manager of this process."""
    global _MANAGER  # noqa: PLW0603 - one manager per process, created on first use
    if _MANAGER is None:
        _MANAGER = Manager()
    return _MANAGER


def load_profile(profile: str | None = None, allow_switch: bool = False) -> Profile:
    """Load a profile in this process's manager and return it, as aiida-core's ``load_profile``.

    :param profile: its name; default: the profile loaded already, else ``$PROVSTORE_PROFILE``, else the default one.
    :param allow_switch: let a profile other than the one loaded, whose storage is open, take its place.
    :raises ConfigError: if another profile's storage is open and ``allow_switch`` is false.
    """
    manager = get_manager()
    loaded = manager.get_profile()
    if loaded is not None and profile is None:
        return loaded
    if loaded is not None and profile != loaded.name and manager._storage is not None and not allow_switch:
        raise ConfigError(
            f'profile {loaded.name!r} is loaded and its storage open: pass allow_switch=True to load {profile!r}'
        )
    return manager.load_profile(profile)
