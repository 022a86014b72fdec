"""The ``sqlite_dos`` storage backend: one SQLite file plus a file repository, needing no server.

Layout of the storage folder (option ``filepath``, default ``<profile folder>/storage``)::

    database.sqlite          the database (with database.sqlite-wal and -shm while in use)
    container/               the repository, unless repository_options names another filepath

This module is light: SQLAlchemy and ``sqlite3`` are imported inside methods.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from provstore.exceptions import ConfigError, StorageError
from provstore.options import Option
from provstore_psql_dos.base import DosStorageBackend, absolute_folder, repository_options

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from provstore.config import Profile
    from provstore.storage.backup import BackupWriter

__all__ = ['DATABASE_FILENAME', 'REPOSITORY_FOLDERNAME', 'SqliteDosStorageBackend']

DATABASE_FILENAME = 'database.sqlite'
"""The database file, inside the storage folder (the name aiida-core's ``sqlite_dos`` uses)."""

REPOSITORY_FOLDERNAME = 'container'
"""The default repository folder, inside the storage folder (the name aiida-core's ``sqlite_dos`` uses)."""

_DATABASE_SUFFIXES = ('', '-wal', '-shm', '-journal')
"""The database file and the files SQLite keeps beside it."""


class SqliteDosStorageBackend(DosStorageBackend):
    """One SQLite file plus a file repository (disk_objectstore by default): the embedded default, no server needed.

    The database is in write-ahead-log mode: any number of processes read while one writes. Writers take turns,
    each waiting up to the busy timeout (30 s) for the write lock; write transactions start with
    ``BEGIN IMMEDIATE`` (see :meth:`transaction`). A commit that returned survives a power loss unless the option
    ``durability`` is ``relaxed``.
    """

    name: ClassVar[str] = 'sqlite_dos'
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            'filepath',
            str,
            default='',
            help='folder of the storage (database and repository); default: <profile folder>/storage',
        ),
        Option(
            'durability',
            str,
            default='full',
            choices=('full', 'relaxed'),
            help='full: a commit that returned survives a power loss (SQLite synchronous=FULL); relaxed: the last '
            'commits before a power loss may be lost, the database stays consistent (synchronous=NORMAL, faster)',
        ),
        *repository_options(f'<filepath>/{REPOSITORY_FOLDERNAME}'),
    )

    # -- where the storage is ---------------------------------------------------------------------------------

    @classmethod
    def storage_folder(cls, profile: Profile) -> Path:
        """Return the storage folder: option ``filepath``, else ``<profile folder>/storage``.

        :raises ConfigError: if ``filepath`` is relative, or neither it nor the profile's folder is set.
        """
        where = f'profile {profile.name!r}'
        filepath = cls.validate_config(dict(profile.storage_config), where)['filepath']
        if filepath:
            return absolute_folder(filepath, where, 'filepath')
        if profile.folder == Path():
            raise ConfigError(f"{where} has no folder; give the option 'filepath'")
        return profile.folder / 'storage'

    @classmethod
    def database_file(cls, profile: Profile) -> Path:
        """Return the path of the profile's SQLite database file."""
        return cls.storage_folder(profile) / DATABASE_FILENAME

    @classmethod
    def default_repository_folder(cls, profile: Profile) -> Path:
        """Return ``<storage folder>/container``."""
        return cls.storage_folder(profile) / REPOSITORY_FOLDERNAME

    @classmethod
    def describe_database(cls, profile: Profile) -> str:
        """Return ``the SQLite database <path>``."""
        return f'the SQLite database {cls.database_file(profile)}'

    # -- the database -----------------------------------------------------------------------------------------

    @classmethod
    def version_profile(cls, profile: Profile) -> str | None:
        """Return the schema version recorded in the database file, or ``None`` when there is none.

        Cheap: opens the file read-only with the standard library and reads one row; creates nothing.

        :raises StorageError: if the file exists but cannot be read as an SQLite database.
        """
        path = cls.database_file(profile)
        if not path.is_file():
            return None
        import sqlite3  # noqa: PLC0415 - lazy: only when a database is read
        from urllib.parse import quote  # noqa: PLC0415

        try:
            connection = sqlite3.connect(f'file:{quote(str(path))}?mode=ro', uri=True, timeout=30.0)
            try:
                found = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchone()
                row = connection.execute('SELECT version_num FROM alembic_version').fetchone() if found else None
            finally:
                connection.close()
        except sqlite3.Error as exc:
            raise StorageError(f'{path}: cannot read the schema version: {exc}') from None
        return None if row is None else str(row[0])

    @classmethod
    def _create_engine(cls, profile: Profile, pooled: bool) -> Engine:
        from provstore_psql_dos.engine import create_sqlite_engine  # noqa: PLC0415 - lazy: drivers only when used

        durable = cls.validate_config(dict(profile.storage_config), f'profile {profile.name!r}')['durability'] == 'full'
        return create_sqlite_engine(cls.database_file(profile), pooled=pooled, durable=durable)

    @classmethod
    def _create_database(cls, profile: Profile) -> None:
        """Create the storage folder; SQLite creates the file on first connection."""
        folder = cls.storage_folder(profile)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f'{folder} is not a folder; cannot create a storage in it') from None

    @classmethod
    def _drop_database(cls, profile: Profile) -> None:
        """Delete the database file and the files SQLite keeps beside it."""
        path = cls.database_file(profile)
        for suffix in _DATABASE_SUFFIXES:
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    @classmethod
    def erase(cls, profile: Profile) -> None:
        """Delete the database and the repository, then the storage folder if nothing else is left in it."""
        super().erase(profile)
        with contextlib.suppress(FileNotFoundError, OSError):
            cls.storage_folder(profile).rmdir()

    # -- an open storage --------------------------------------------------------------------------------------

    def _describe_database(self, detailed: bool) -> dict[str, Any]:
        path = self.database_file(self._profile)
        info: dict[str, Any] = {'filepath': str(path)}
        if detailed:
            info['size_bytes'] = _size(path)
        return info

    def _maintain_database(self, full: bool, dry_run: bool) -> tuple[list[str], dict[str, Any]]:
        """When ``full``: VACUUM and ANALYZE the database, then move its write-ahead log into the file."""
        path = self.database_file(self._profile)
        before = _size(path)
        if not full:
            return ['nothing to do in live maintenance (VACUUM and ANALYZE need full maintenance)'], {}
        if dry_run:
            return [f'would VACUUM and ANALYZE {path} and checkpoint its write-ahead log ({before} bytes)'], {
                'size_bytes': before
            }
        # NOTE: VACUUM cannot run in a transaction; a raw connection of this engine issues no BEGIN by itself.
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute('VACUUM')
                cursor.execute('ANALYZE')
                cursor.execute('PRAGMA wal_checkpoint(TRUNCATE)')
            finally:
                cursor.close()
        finally:
            connection.close()
        after = _size(path)
        return [f'VACUUMed and ANALYZEd {path} and checkpointed its write-ahead log: {before} -> {after} bytes'], {
            'size_bytes_before': before,
            'size_bytes_after': after,
        }

    # -- backups ----------------------------------------------------------------------------------------------

    def _backup_database(self, writer: BackupWriter) -> dict[str, int]:
        """Copy the database through SQLite's online backup API (writers go on) and count the copy's rows."""
        writer.copy_sqlite_database(self.database_file(self._profile), BACKUP_DATABASE)
        return count_rows(writer.folder / BACKUP_DATABASE)

    @classmethod
    def _restore_database(cls, profile: Profile, folder: Path) -> None:
        """Copy the backup's database file into the storage folder, made durable before it takes its name."""
        cls._create_database(profile)
        target = cls.database_file(profile)
        if target.exists():
            raise StorageError(f'Cannot restore a database into {target}: the file exists')
        temporary = target.with_name(target.name + '.restoring')
        shutil.copyfile(folder / BACKUP_DATABASE, temporary)
        with open(temporary, 'rb') as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    @classmethod
    def _place_options(cls) -> tuple[str, ...]:
        return ('filepath',)


BACKUP_DATABASE = 'database/database.sqlite'
"""The database's copy in a backup."""


def count_rows(path: Path) -> dict[str, int]:
    """Return the row count of every entity table in the SQLite file ``path``, opened immutable (nothing written)."""
    import sqlite3  # noqa: PLC0415 - lazy: only when a backup is made
    from urllib.parse import quote  # noqa: PLC0415

    from provstore_psql_dos.models import ENTITY_TABLES  # noqa: PLC0415

    connection = sqlite3.connect(f'file:{quote(str(path))}?immutable=1', uri=True)
    try:
        return {
            entity: int(connection.execute(f'SELECT count(*) FROM {table}').fetchone()[0])
            for entity, table in ENTITY_TABLES.items()
        }
    finally:
        connection.close()


def _size(path: Path) -> int:
    """Return the bytes of the database file and its write-ahead log."""
    total = 0
    for suffix in ('', '-wal'):
        with contextlib.suppress(FileNotFoundError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total
