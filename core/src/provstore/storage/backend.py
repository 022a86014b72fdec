"""The interface every storage backend implements: the profile-level lifecycle of a profile's storage.

A storage backend is a class: its class methods act on a profile's storage whether or not it is open
(create it, read its schema version, migrate it, erase it); an instance is the storage of one profile, open
for use until :meth:`StorageBackend.close`. The entity collections, transactions and queries are added by
the ORM.

A backend whose data includes files makes its repository backend with
:meth:`provstore.repository.AbstractRepositoryBackend.from_options`: the profile's repository options, with
``filepath`` filled in (an absolute path inside the profile's storage) when the repository's constructor takes it.
For the ORM to store nodes, the class also subclasses :class:`provstore.storage.EntityStorage`.

The core, not the backend, takes the profile's access locks: opening goes through the manager (shared lock),
and :func:`provstore.manager.migrate_storage` and full maintenance take the exclusive lock before calling the
backend.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from provstore.exceptions import IncompatibleStorageError, ReadOnlyStorageError, StorageError
from provstore.options import Option, validate_options

if TYPE_CHECKING:
    from pathlib import Path

    from provstore.config import Profile
    from provstore.repository import MaintenanceReport
    from provstore.storage.backup import BackupWriter

__all__ = ['StorageBackend']


class StorageBackend(abc.ABC):
    """A profile's storage: a database of nodes, links and groups plus a file repository."""

    name: ClassVar[str]
    """The name profiles use to select this backend, unique across installed plugins."""

    options: ClassVar[tuple[Option, ...]] = ()
    """The options of this backend, as data: the CLI and the validation of profiles are generated from them."""

    read_only: ClassVar[bool] = False
    """Whether this backend never changes a storage's content (an archive opened in place, for example).

    Its storage may still be created (:meth:`initialise` of one that does not exist) and erased whole; resetting
    it, migrating it from an older version, maintenance that is not a dry run and every write through an open
    instance raise :class:`ReadOnlyStorageError`.
    """

    def __init__(self, profile: Profile) -> None:
        """Open the storage of ``profile``.

        :raises StorageError: if the storage does not exist (it was never initialised).
        :raises IncompatibleStorageError: if its schema version is not :meth:`version_head`.
        """
        self._profile = profile
        self._closed = False
        version = self.version_profile(profile)
        if version is None:
            raise StorageError(
                f'The storage of profile {profile.name!r} ({self.name}) does not exist; initialise it first'
            )
        if version != self.version_head():
            raise IncompatibleStorageError(
                f'The storage of profile {profile.name!r} is at schema version {version}, but this code needs '
                f'{self.version_head()}: run `provstore storage migrate -p {profile.name}`'
            )

    def __repr__(self) -> str:
        state = 'closed' if self._closed else 'open'
        return f'<{type(self).__name__} of profile {self._profile.name!r} ({state})>'

    @property
    def profile(self) -> Profile:
        """The profile whose storage this is."""
        return self._profile

    @classmethod
    def validate_config(cls, config: dict[str, Any], where: str) -> dict[str, Any]:
        """Return ``config`` checked against :attr:`options`, converted, with defaults filled in.

        :raises ConfigError: naming ``where`` and the offending option.
        """
        return validate_options(cls.options, config, where)

    # -- lifecycle of a profile's storage (class methods) ---------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def version_head(cls) -> str:
        """The schema version this code reads and writes."""

    @classmethod
    @abc.abstractmethod
    def version_profile(cls, profile: Profile) -> str | None:
        """The schema version of the profile's storage, or ``None`` when it has not been initialised.

        Cheap: reads one value, opens no session beyond what that needs.
        """

    @classmethod
    @abc.abstractmethod
    def initialise(cls, profile: Profile, reset: bool = False) -> bool:
        """Create the profile's storage at the head version, or migrate it when it exists.

        :param reset: delete everything the storage holds first (irreversible).
        :return: ``True`` if storage was created (or reset), ``False`` if it existed already.
        """

    @classmethod
    @abc.abstractmethod
    def migrate(cls, profile: Profile) -> None:
        """Bring the profile's storage to the head version; nothing to do when it is there already.

        Called by the core with the profile's exclusive lock held.

        :raises IncompatibleStorageError: if the storage is newer than this code.
        """

    @classmethod
    @abc.abstractmethod
    def erase(cls, profile: Profile) -> None:
        """Delete the profile's storage and everything in it (database and repository). Irreversible."""

    # -- an open storage --------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release every connection and file handle; the instance is unusable afterwards. Idempotent."""
        if not self._closed:
            self._close()
            self._closed = True

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the backend's resources (called once)."""

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @abc.abstractmethod
    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return JSON-serialisable figures about the storage (entity counts; sizes when ``detailed``)."""

    @abc.abstractmethod
    def maintain(self, full: bool = False, dry_run: bool = False, compress: bool = False) -> MaintenanceReport:
        """Optimise the storage.

        :param full: do everything, including what is unsafe while other processes use the profile; the core
            holds the profile's exclusive lock when it passes ``True``.
        :param dry_run: report what would be done and change nothing.
        :param compress: also compress stored data where the backend can and it saves space.
        """

    # -- backups (see provstore.storage.backup) -------------------------------------------------------------

    def backup(self, writer: BackupWriter) -> dict[str, Any]:
        """Write a consistent copy of this storage through ``writer``: the database snapshot first, then the files.

        Called with the profile's shared lock held, while other processes may write. The writer skips the files an
        interrupted run copied already, when their source is unchanged.

        :return: JSON-serialisable facts about the snapshot (schema version, entity counts) for the manifest.
        :raises StorageError: if this backend cannot make backups.
        """
        raise StorageError(f'Storage backend {self.name!r} cannot make backups')

    @classmethod
    def restored_config(cls, config: dict[str, Any], name: str, database_name: str | None) -> dict[str, Any]:
        """Return the options of a profile ``name`` restored from a backup of a profile with options ``config``.

        Drops what names the old profile's places (its folders, its database) so that the defaults of ``name``
        apply, or ``database_name`` when given.
        """
        raise StorageError(f'Storage backend {cls.name!r} cannot restore backups')

    @classmethod
    def restore_backup(cls, profile: Profile, folder: Path, facts: dict[str, Any]) -> None:
        """Create the storage of ``profile`` from the backup in ``folder`` and check it against ``facts`` (what
        :meth:`backup` returned). Called with the profile's exclusive lock held, on a profile without storage.

        :raises StorageError: if the restored storage does not hold what the snapshot held.
        """
        raise StorageError(f'Storage backend {cls.name!r} cannot restore backups')

    def check_open(self) -> None:
        """Raise :class:`StorageError` if this storage has been closed."""
        if self._closed:
            raise StorageError(f'The storage of profile {self._profile.name!r} is closed')

    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyStorageError` if this storage is read-only (or :class:`StorageError` if closed)."""
        self.check_open()
        if self.read_only:
            raise ReadOnlyStorageError(f'The storage of profile {self._profile.name!r} ({self.name}) is read-only')
