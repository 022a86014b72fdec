"""The read-only storage backend ``sqlite_zip``: an ``.aiida`` archive queried in place.

The archive's database is the schema of ``psql_dos``, so this backend is ``sqlite_dos``'s SQL (entity statements,
the QueryBuilder's compiler, the traversal) run over the archive's ``db.sqlite3``, extracted once into a cache
(:mod:`provstore_sqlite_zip.cache`) and opened read-only and immutable; the repository is the zip's ``repo/``
members (:class:`~provstore_sqlite_zip.repository.ZipRepositoryBackend`). Every write is refused with
:class:`~provstore.exceptions.ReadOnlyStorageError`; the archive file is never written.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from provstore.exceptions import ReadOnlyStorageError, StorageError
from provstore.options import Option
from provstore.storage import EntityStorage, EntityType
from provstore_psql_dos.base import DosStorageBackend, absolute_folder
from provstore_sqlite_zip.zipped import FORMAT_NAME, VERSION_HEAD, open_archive_zip

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from provstore.config import Profile
    from provstore.repository import AbstractRepositoryBackend

__all__ = ['SqliteZipStorageBackend']


class SqliteZipStorageBackend(DosStorageBackend):
    """An ``.aiida`` archive (export_version main_0000, main_0001 or 1.0) queried in place, read-only.

    Options: ``filepath``, the archive; ``cache_folder``, where its database is extracted once and reused (default
    ``$PROVSTORE_PATH/cache/sqlite_zip`` or ``~/.cache/provstore/sqlite_zip``).
    """

    name: ClassVar[str] = FORMAT_NAME
    read_only: ClassVar[bool] = True
    options: ClassVar[tuple[Option, ...]] = (
        Option('filepath', str, help='the archive file (.aiida), an absolute path'),
        Option(
            'cache_folder',
            str,
            default='',
            help='folder of the extracted databases of archives; default: $PROVSTORE_PATH/cache/sqlite_zip, else '
            '~/.cache/provstore/sqlite_zip',
        ),
    )

    # NOTE: an archive's database holds aiida-core's tables only, not psql_dos's table of file references: they are
    # read from the nodes' repository_metadata, as any storage without that table does.
    iter_file_references = EntityStorage.iter_file_references
    iter_referenced_keys = EntityStorage.iter_referenced_keys

    # -- where the archive is ---------------------------------------------------------------------------------

    @classmethod
    def archive_file(cls, profile: Profile) -> Path:
        """Return the archive of the profile (option ``filepath``).

        :raises ConfigError: if ``filepath`` is relative.
        """
        where = f'profile {profile.name!r}'
        return absolute_folder(cls.validate_config(dict(profile.storage_config), where)['filepath'], where, 'filepath')

    @classmethod
    def cache_folder(cls, profile: Profile) -> Path:
        """Return where the archive's database is cached (option ``cache_folder``, else the default)."""
        where = f'profile {profile.name!r}'
        folder = cls.validate_config(dict(profile.storage_config), where)['cache_folder']
        if folder:
            return absolute_folder(folder, where, 'cache_folder')
        from provstore_sqlite_zip.cache import default_cache_folder  # noqa: PLC0415

        return default_cache_folder()

    @classmethod
    def make_repository(cls, profile: Profile) -> AbstractRepositoryBackend:
        """Return the read-only repository over the archive's ``repo/`` members."""
        from provstore_sqlite_zip.repository import ZipRepositoryBackend  # noqa: PLC0415

        return ZipRepositoryBackend(str(cls.archive_file(profile)))

    @classmethod
    def default_repository_folder(cls, profile: Profile) -> Path:
        """Return the archive file: it holds the repository."""
        return cls.archive_file(profile)

    @classmethod
    def describe_database(cls, profile: Profile) -> str:
        """Return ``the database of the archive <path>``."""
        return f'the database of the archive {cls.archive_file(profile)}'

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @classmethod
    def version_head(cls) -> str:
        """Return the newest export_version, ``main_0001``."""
        return VERSION_HEAD

    @classmethod
    def version_profile(cls, profile: Profile) -> str | None:
        """Return ``main_0001`` for an archive read in place (main_0000 and 1.0 have its tables), ``None`` when the
        file does not exist; reads ``metadata.json`` only.

        :raises ArchiveError: if the file is not a readable archive, or of a version this code does not read.
        """
        path = cls.archive_file(profile)
        if not path.exists():
            return None
        open_archive_zip(path)  # NOTE: refuses any version but those of VERSIONS_READABLE
        return VERSION_HEAD

    @classmethod
    def initialise(cls, profile: Profile, reset: bool = False) -> bool:
        """Check the archive and extract its database into the cache; return ``False`` (the archive exists).

        :raises ReadOnlyStorageError: if ``reset``, or if there is no archive (this backend cannot make one).
        :raises ArchiveError: if the file is not a readable archive.
        """
        path = cls.archive_file(profile)
        if reset:
            raise ReadOnlyStorageError(f'The storage of profile {profile.name!r} ({cls.name}) is read-only: {path}')
        if not path.exists():
            raise ReadOnlyStorageError(
                f'The storage of profile {profile.name!r} ({cls.name}) is read-only and cannot make the archive '
                f'{path}, which does not exist'
            )
        cls._database(profile)
        return False

    @classmethod
    def migrate(cls, profile: Profile) -> None:
        """Nothing to do: every version this backend opens is read in place.

        :raises StorageError: if the archive does not exist.
        """
        if cls.version_profile(profile) is None:
            raise StorageError(f'No archive {cls.archive_file(profile)} for profile {profile.name!r}')

    @classmethod
    def erase(cls, profile: Profile) -> None:
        """Forget the archive's cached database; the archive file itself is never deleted."""
        from provstore_sqlite_zip.cache import forget_database  # noqa: PLC0415

        path = cls.archive_file(profile)
        if not path.is_file():
            return
        forget_database(open_archive_zip(path), cls.cache_folder(profile))

    @classmethod
    def _database(cls, profile: Profile) -> Path:
        """Return the archive's database in the cache, extracted and checked first if needed."""
        from provstore_sqlite_zip.cache import cached_database  # noqa: PLC0415

        return cached_database(open_archive_zip(cls.archive_file(profile)), cls.cache_folder(profile))

    @classmethod
    def _create_engine(cls, profile: Profile, pooled: bool) -> Engine:
        from provstore_psql_dos.engine import create_sqlite_engine  # noqa: PLC0415 - lazy: drivers only when used

        return create_sqlite_engine(cls._database(profile), pooled=pooled, immutable=True)

    @classmethod
    def _create_database(cls, profile: Profile) -> None:
        raise ReadOnlyStorageError(f'The storage of profile {profile.name!r} ({cls.name}) is read-only')

    @classmethod
    def _drop_database(cls, profile: Profile) -> None:
        cls.erase(profile)

    # -- an open storage --------------------------------------------------------------------------------------

    def _open_sql(self) -> None:
        """As :class:`DosStorageBackend`, but no JSON index is ever declared: an archive has no settings table."""
        super()._open_sql()
        from provstore_psql_dos.queries import QueryRunner  # noqa: PLC0415 - lazy: SQLAlchemy only when used

        self._queries = QueryRunner(self, self._engine, self._dialect, declared=lambda: (frozenset(), frozenset()))

    def _check_repository(self) -> None:
        """Check the zip once more (it may have changed since the database was cached)."""
        self._repository.has_objects([])

    def check_writable(self) -> None:
        """Refuse every write, naming the archive file (a profile over an archive may have no name of its own).

        :raises ReadOnlyStorageError: always (or :class:`StorageError` if closed).
        """
        self.check_open()
        raise ReadOnlyStorageError(
            f'The archive {self.archive_file(self._profile)} is read-only ({self.name} reads it in place): '
            'import it into a profile to change it'
        )

    def list_json_indexes(self) -> list[tuple[EntityType, str, tuple[str, ...]]]:
        """Return no path: an archive has no JSON index."""
        self.check_open()
        return []

    def _describe_database(self, detailed: bool) -> dict[str, Any]:
        path = self.archive_file(self._profile)
        info: dict[str, Any] = {'filepath': str(path), 'cache': str(self._database(self._profile))}
        if detailed:
            with contextlib.suppress(OSError):
                info['size_bytes'] = path.stat().st_size
        return info

    def _maintain_database(self, full: bool, dry_run: bool) -> tuple[list[str], dict[str, Any]]:
        """Nothing to do: an archive is read-only."""
        return [], {}
