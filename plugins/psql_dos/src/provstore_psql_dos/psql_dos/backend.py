"""The ``psql_dos`` storage backend: a PostgreSQL database (through psycopg 3) plus a file repository.

The database (option ``database_name``, default ``provstore_<profile name>``) is created by :meth:`initialise` when
it does not exist, through the server's maintenance database ``postgres``; the role needs the ``CREATEDB``
privilege then, or the database must have been created beforehand. The repository is at
``<profile folder>/repository`` unless ``repository_options`` names another ``filepath``.

This module is light: SQLAlchemy and psycopg are imported inside methods.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from provstore.exceptions import ConfigError, StorageError
from provstore.options import Option
from provstore_psql_dos.base import DosStorageBackend, repository_options

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Engine

    from provstore.config import Profile
    from provstore.storage.backup import BackupWriter

__all__ = ['MAINTENANCE_DATABASES', 'PostgresParameters', 'PsqlDosStorageBackend']

MAINTENANCE_DATABASES = ('postgres', 'template1')
"""Databases to connect to for creating, dropping and looking up databases, tried in this order."""

BACKUP_DATABASE = 'database/database.dump'
"""The database's dump in a backup (``pg_dump`` custom format)."""

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL silently truncates longer names, so two long database names could name the same database."""


def _program(name: str) -> str:
    """Return the path of the PostgreSQL client program ``name``.

    :raises StorageError: if it is not on ``PATH``.
    """
    found = shutil.which(name)
    if found is None:
        raise StorageError(
            f'{name} is not on PATH: install the PostgreSQL client programs (pg_dump, pg_restore) of the '
            "server's major version or newer"
        )
    return found


@dataclass(frozen=True)
class PostgresParameters:
    """Where a profile's database is and how to log in."""

    hostname: str
    port: int
    username: str
    password: str
    database: str

    def __str__(self) -> str:
        return f'PostgreSQL database {self.database!r} on {self.hostname}:{self.port} (role {self.username!r})'

    def connect(self, database: str | None = None, autocommit: bool = False) -> psycopg.Connection[Any]:
        """Open a psycopg connection to ``database`` (default: the profile's database)."""
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used

        from provstore_psql_dos.engine import CONNECT_TIMEOUT  # noqa: PLC0415

        return psycopg.connect(
            host=self.hostname,
            port=self.port,
            user=self.username,
            password=self.password or None,
            dbname=database or self.database,
            connect_timeout=CONNECT_TIMEOUT,
            application_name='provstore',
            autocommit=autocommit,
        )

    @contextlib.contextmanager
    def maintenance_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Yield an autocommit connection to the server's maintenance database.

        :raises StorageError: naming the server and the reason, if no maintenance database can be reached.
        """
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used

        errors = []
        for name in MAINTENANCE_DATABASES:
            try:
                connection = self.connect(name, autocommit=True)
            except psycopg.OperationalError as exc:
                errors.append(' '.join(str(exc).split()))  # NOTE: psycopg's message spans lines
                continue
            with connection:
                yield connection
            return
        raise StorageError(
            f'Cannot reach the PostgreSQL server {self.hostname}:{self.port} as role {self.username!r}: {errors[-1]}'
        )

    def run(self, program: str, *arguments: str) -> None:
        """Run the PostgreSQL client ``program`` against this server with ``arguments``.

        :raises StorageError: if it is missing, or fails (with the last line it wrote).
        """
        command = [_program(program), '--no-password', '-h', self.hostname, '-p', str(self.port), '-U', self.username]
        environment = {**os.environ, 'PGPASSWORD': self.password} if self.password else None
        result = subprocess.run([*command, *arguments], env=environment, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f'exit code {result.returncode}']
            raise StorageError(f'{program} failed on the {self}: {lines[-1]}')

    def database_exists(self) -> bool:
        """Return whether the database exists on the server."""
        with self.maintenance_connection() as connection:
            row = connection.execute('SELECT 1 FROM pg_database WHERE datname = %s', (self.database,)).fetchone()
        return row is not None


class PsqlDosStorageBackend(DosStorageBackend):
    """A PostgreSQL database plus a file repository (disk_objectstore by default): the backend for large profiles.

    Each open storage keeps a small pool of connections (5, plus up to 5 more under load), each checked before
    use (a poll of its socket, no round trip), so a restarted server is reconnected to without errors.
    """

    name: ClassVar[str] = 'psql_dos'
    options: ClassVar[tuple[Option, ...]] = (
        Option('database_hostname', str, default='localhost', help='host name or address of the PostgreSQL server'),
        Option('database_port', int, default=5432, help='port of the PostgreSQL server'),
        Option('database_username', str, default='postgres', help='the PostgreSQL role to log in as'),
        Option(
            'database_password',
            str,
            default='',
            help='password of the role; empty when the server trusts it or ~/.pgpass holds it',
            secret=True,
        ),
        Option('database_name', str, default='', help='name of the database; default: provstore_<profile name>'),
        *repository_options('<profile folder>/repository'),
    )

    # -- where the storage is ---------------------------------------------------------------------------------

    @classmethod
    def parameters(cls, profile: Profile) -> PostgresParameters:
        """Return where the profile's database is and how to log in.

        :raises ConfigError: if the options are invalid or the database name is longer than 63 bytes.
        """
        where = f'profile {profile.name!r}'
        config = cls.validate_config(dict(profile.storage_config), where)
        database = config['database_name'] or f'provstore_{profile.name}'
        if len(database.encode()) > MAX_IDENTIFIER_BYTES:
            raise ConfigError(
                f'{where}: the database name {database!r} is longer than {MAX_IDENTIFIER_BYTES} bytes; give a shorter '
                "one with the option 'database_name'"
            )
        return PostgresParameters(
            hostname=config['database_hostname'],
            port=config['database_port'],
            username=config['database_username'],
            password=config['database_password'],
            database=database,
        )

    @classmethod
    def default_repository_folder(cls, profile: Profile) -> Path:
        """Return ``<profile folder>/repository``.

        :raises ConfigError: if the profile has no folder.
        """
        if profile.folder == Path():
            raise ConfigError(f"profile {profile.name!r} has no folder; give a 'filepath' in repository_options")
        return profile.folder / 'repository'

    @classmethod
    def describe_database(cls, profile: Profile) -> str:
        """Return ``PostgreSQL database '<name>' on <host>:<port> (role '<user>')``."""
        return str(cls.parameters(profile))

    # -- the database -----------------------------------------------------------------------------------------

    @classmethod
    def version_profile(cls, profile: Profile) -> str | None:
        """Return the schema version recorded in the database, or ``None`` if the database or the record is missing.

        Cheap: one psycopg connection and one query (a second connection only when the first fails).

        :raises StorageError: if the server cannot be reached.
        """
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used

        parameters = cls.parameters(profile)
        try:
            with parameters.connect() as connection:
                found = connection.execute("SELECT to_regclass('alembic_version')").fetchone()
                if found is None or found[0] is None:
                    return None
                row = connection.execute('SELECT version_num FROM alembic_version').fetchone()
        except psycopg.OperationalError as exc:
            if not parameters.database_exists():
                return None
            raise StorageError(f'Cannot connect to the {parameters}: {" ".join(str(exc).split())}') from None
        return None if row is None else str(row[0])

    @classmethod
    def _create_engine(cls, profile: Profile, pooled: bool) -> Engine:
        from provstore_psql_dos.engine import create_postgresql_engine  # noqa: PLC0415 - lazy: drivers only when used

        parameters = cls.parameters(profile)
        return create_postgresql_engine(
            hostname=parameters.hostname,
            port=parameters.port,
            username=parameters.username,
            password=parameters.password,
            database=parameters.database,
            pooled=pooled,
        )

    @classmethod
    def _create_database(cls, profile: Profile) -> None:
        """Create the database (UTF-8) when it does not exist.

        :raises StorageError: if it cannot be created (the role lacks ``CREATEDB``, for one).
        """
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used
        from psycopg import errors, sql  # noqa: PLC0415

        parameters = cls.parameters(profile)
        try:
            parameters.connect().close()
        except psycopg.OperationalError:
            pass  # NOTE: the database is missing (or the server unreachable, which the next step reports)
        else:
            return
        with parameters.maintenance_connection() as connection:
            statement = sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(parameters.database)
            )
            try:
                connection.execute(statement)
            except errors.DuplicateDatabase:
                pass  # NOTE: created by another process since the check above
            except psycopg.Error as exc:
                raise StorageError(f'Cannot create the {parameters}: {str(exc).strip()}') from None

    @classmethod
    def _drop_database(cls, profile: Profile) -> None:
        """Drop the database, if it exists and holds a provstore schema or nothing at all.

        :raises StorageError: if it holds tables but no provstore schema (it is left alone), or other sessions
            use it.
        """
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used
        from psycopg import sql  # noqa: PLC0415

        parameters = cls.parameters(profile)
        if not parameters.database_exists():
            return
        if cls.version_profile(profile) is None:
            with parameters.connect() as connection:
                row = connection.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                ).fetchone()
            if row is not None and row[0]:
                raise StorageError(
                    f'The {parameters} holds {row[0]} table(s) but no provstore schema; refusing to drop it'
                )
        with parameters.maintenance_connection() as connection:
            try:
                connection.execute(sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(parameters.database)))
            except psycopg.Error as exc:
                raise StorageError(f'Cannot drop the {parameters}: {str(exc).strip()}') from None

    # -- an open storage --------------------------------------------------------------------------------------

    def _describe_database(self, detailed: bool) -> dict[str, Any]:
        parameters = self.parameters(self._profile)
        info: dict[str, Any] = {
            'hostname': parameters.hostname,
            'port': parameters.port,
            'username': parameters.username,
            'name': parameters.database,
        }
        if detailed:
            info['size_bytes'] = self._database_size()
        return info

    def _database_size(self) -> int:
        from sqlalchemy import text  # noqa: PLC0415 - lazy: drivers only when used

        with self.connection() as connection:
            return int(connection.execute(text('SELECT pg_database_size(current_database())')).scalar_one())

    def _maintain_database(self, full: bool, dry_run: bool) -> tuple[list[str], dict[str, Any]]:
        """When ``full``: VACUUM and ANALYZE the database (live, the server's autovacuum does this work)."""
        if not full:
            return ['nothing to do in live maintenance (the server autovacuums)'], {}
        parameters = self.parameters(self._profile)
        before = self._database_size()
        if dry_run:
            return [f'would VACUUM and ANALYZE the {parameters} ({before} bytes)'], {'size_bytes': before}
        # NOTE: VACUUM cannot run inside a transaction block.
        with self._engine.connect() as connection:
            connection.execution_options(isolation_level='AUTOCOMMIT').exec_driver_sql('VACUUM ANALYZE')
        after = self._database_size()
        return [f'VACUUMed and ANALYZEd the {parameters}: {before} -> {after} bytes'], {
            'size_bytes_before': before,
            'size_bytes_after': after,
        }

    # -- backups ----------------------------------------------------------------------------------------------

    def _backup_database(self, writer: BackupWriter) -> dict[str, int]:
        """Dump the database with ``pg_dump`` (custom format) from a snapshot this method exports and counts in.

        The rows counted and the rows dumped are those of one snapshot: a repeatable-read transaction exports it
        and stays open while ``pg_dump --snapshot`` runs. Writers go on meanwhile.
        """
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used
        from psycopg import sql  # noqa: PLC0415

        from provstore_psql_dos.models import ENTITY_TABLES  # noqa: PLC0415

        parameters = self.parameters(self._profile)
        _program('pg_dump')  # NOTE: fail before anything is written when it is missing
        with parameters.connect() as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            row = connection.execute('SELECT pg_export_snapshot()').fetchone()
            assert row is not None
            snapshot = str(row[0])
            counts = {}
            for entity, table in ENTITY_TABLES.items():
                found = connection.execute(sql.SQL('SELECT count(*) FROM {}').format(sql.Identifier(table))).fetchone()
                counts[entity] = int(found[0]) if found else 0
            writer.add_file(
                BACKUP_DATABASE,
                lambda temporary: parameters.run(
                    'pg_dump', '--format=custom', f'--snapshot={snapshot}', '-f', str(temporary), parameters.database
                ),
            )
            connection.rollback()
        return counts

    @classmethod
    def _restore_database(cls, profile: Profile, folder: Path) -> None:
        """Create the (missing) database and fill it with ``pg_restore``; drop it again if that fails."""
        import psycopg  # noqa: PLC0415 - lazy: drivers only when used
        from psycopg import sql  # noqa: PLC0415

        parameters = cls.parameters(profile)
        _program('pg_restore')
        if parameters.database_exists():
            raise StorageError(f'The {parameters} exists already; give another --database-name, or drop it')
        cls._create_database(profile)
        try:
            parameters.run(
                'pg_restore',
                '--no-owner',
                '--no-privileges',
                '--exit-on-error',
                '-d',
                parameters.database,
                str(folder / BACKUP_DATABASE),
            )
        except BaseException:
            with parameters.maintenance_connection() as connection, contextlib.suppress(psycopg.Error):
                connection.execute(sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(parameters.database)))
            raise

    @classmethod
    def _place_options(cls) -> tuple[str, ...]:
        return ('database_name',)
