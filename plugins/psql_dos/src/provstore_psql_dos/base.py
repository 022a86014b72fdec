"""The shared base of ``psql_dos`` and ``sqlite_dos``: a SQL database (the schema of aiida-core) plus a file repository.

The lifecycle is written once here; each backend says how to reach, create, drop and maintain its database.
This module is light: SQLAlchemy, alembic and the database drivers are imported inside methods, so that listing
plugins imports none of them.
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provstore.exceptions import ConfigError, IncompatibleStorageError, PluginNotFoundError, StorageError
from provstore.options import Option
from provstore.repository import MaintenanceReport
from provstore.storage import EntityType, StorageBackend
from provstore_psql_dos.entitymethods import EntityMethods
from provstore_psql_dos.errors import one_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from provstore.config import Profile
    from provstore.repository import AbstractRepositoryBackend
    from provstore.storage.backup import BackupWriter
    from provstore.storage.query import Query
    from provstore_psql_dos.dialects import Dialect
    from provstore_psql_dos.entities import EntitySql
    from provstore_psql_dos.indexes import JsonIndexes
    from provstore_psql_dos.queries import QueryRunner

__all__ = [
    'DEFAULT_REPOSITORY_BACKEND',
    'REPOSITORY_UUID_KEY',
    'SCHEMA_VERSION_HEAD',
    'DosStorageBackend',
    'repository_options',
]

SNAPSHOT_FACTS = 'database/snapshot.json'
"""The file of a backup with the facts of its database snapshot (schema version, row counts)."""

SCHEMA_VERSION_HEAD = 'main_0002'
"""The alembic revision of the newest schema: the schema version this code reads and writes."""

REPOSITORY_UUID_KEY = 'repository|uuid'
"""The key of the ``db_dbsetting`` row holding the uuid of the storage's repository (as aiida-core has it)."""

DEFAULT_REPOSITORY_BACKEND = 'disk_objectstore'
"""The repository backend of a profile that names none."""


def repository_options(default_location: str) -> tuple[Option, ...]:
    """Return the options that choose and configure the repository, shared by both backends.

    :param default_location: where the repository is when its options give no ``filepath``, for the help text.
    """
    return (
        Option(
            'repository_backend',
            str,
            default=DEFAULT_REPOSITORY_BACKEND,
            help='the repository backend holding the files of nodes, by name',
        ),
        Option(
            'repository_options',
            dict,
            default={},
            help=f'options of the repository backend, a JSON object; its filepath defaults to {default_location}',
        ),
    )


class _ThreadState(threading.local):
    """The transaction block a thread has open on one storage: its connection, and whether it writes."""

    connection: Connection | None = None
    write: bool = False


class DosStorageBackend(StorageBackend, EntityMethods):
    """A SQL database with the tables of aiida-core plus a file repository: the base of ``psql_dos`` and ``sqlite_dos``.

    Subclasses implement how to reach their database: :meth:`version_profile` (cheap, without SQLAlchemy),
    :meth:`_create_engine`, :meth:`_create_database`, :meth:`_drop_database`, :meth:`default_repository_folder`,
    :meth:`_describe_database` and :meth:`_maintain_database`.

    The schema is created and migrated by alembic (:mod:`provstore_psql_dos.migrations`), in one transaction. The
    repository's uuid is kept in ``db_dbsetting`` under ``repository|uuid``; a storage whose database and
    repository do not belong together refuses to open.

    Transactions are per thread: a :meth:`transaction` (or :meth:`connection`) block holds one connection for the
    thread that opened it, every entity method that thread calls inside runs on it, and blocks nested inside are
    savepoints. Outside a block, each entity method runs in a short transaction of its own. The statements of the
    entity methods are in :mod:`provstore_psql_dos.entities`, the same rows and results on both dialects; queries run
    in :mod:`provstore_psql_dos.queries`, declared JSON indexes in :mod:`provstore_psql_dos.indexes`; what differs
    between the databases is the storage's dialect (:mod:`provstore_psql_dos.dialects`), chosen when it opens.
    """

    # -- what a backend says about its database ---------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def _create_engine(cls, profile: Profile, pooled: bool) -> Engine:
        """Return a SQLAlchemy engine on the profile's database (a pool of connections if ``pooled``)."""

    @classmethod
    @abc.abstractmethod
    def _create_database(cls, profile: Profile) -> None:
        """Create the profile's database, empty, if it does not exist."""

    @classmethod
    @abc.abstractmethod
    def _drop_database(cls, profile: Profile) -> None:
        """Delete the profile's database if it exists."""

    @classmethod
    @abc.abstractmethod
    def default_repository_folder(cls, profile: Profile) -> Path:
        """Return where the repository is when ``repository_options`` gives no ``filepath``."""

    @classmethod
    @abc.abstractmethod
    def describe_database(cls, profile: Profile) -> str:
        """Return a short description of the profile's database, for messages."""

    @abc.abstractmethod
    def _describe_database(self, detailed: bool) -> dict[str, Any]:
        """Return JSON-serialisable figures about the open database, for :meth:`get_info`."""

    @abc.abstractmethod
    def _maintain_database(self, full: bool, dry_run: bool) -> tuple[list[str], dict[str, Any]]:
        """Maintain the database (only when ``full``); return the steps done or to do, and figures."""

    def _backup_database(self, writer: BackupWriter) -> dict[str, int]:
        """Write a snapshot of the database through ``writer`` under ``database/``; return the row count of every
        table of :data:`~provstore_psql_dos.models.ENTITY_TABLES` in that snapshot.

        :raises StorageError: here, for a backend that makes no backups.
        """
        raise StorageError(f'Storage backend {self.name!r} cannot make backups')

    @classmethod
    def _restore_database(cls, profile: Profile, folder: Path) -> None:
        """Create the profile's (missing) database from the snapshot in the backup's ``folder/database``.

        :raises StorageError: here, for a backend that restores no backups.
        """
        raise StorageError(f'Storage backend {cls.name!r} cannot restore backups')

    @classmethod
    def _place_options(cls) -> tuple[str, ...]:
        """The options naming where a profile's data is, dropped when a backup is restored under another name."""
        return ()

    # -- backups (see provstore.storage.backup) ----------------------------------------------------------------

    def backup(self, writer: BackupWriter) -> dict[str, Any]:
        """Snapshot the database, then copy the repository.

        NOTE: the snapshot is taken again when an interrupted backup is resumed (only repository files are kept
        from it): the profile's lock was not held between the runs, so only a snapshot taken now is sure to find
        every object it references in the repository.
        """
        self.check_open()
        import json  # noqa: PLC0415

        writer.expect(2, 0)  # the database's copy and the facts of its snapshot
        counts = self._backup_database(writer)
        facts = {'schema_version': self.version_head(), 'backend': self.name, 'entities': counts}
        writer.add_bytes(SNAPSHOT_FACTS, json.dumps(facts).encode())
        try:
            self._repository.backup(writer, 'repository')
        finally:
            self._repository.close()
        return facts

    @classmethod
    def restored_config(cls, config: dict[str, Any], name: str, database_name: str | None) -> dict[str, Any]:
        """Drop the old profile's places (see :meth:`_place_options`) and the repository's filepath."""
        config = {key: value for key, value in config.items() if key not in cls._place_options()}
        repository = dict(config.get('repository_options', {}))
        repository.pop('filepath', None)
        config['repository_options'] = repository
        if database_name:
            if 'database_name' not in {option.name for option in cls.options}:
                raise ConfigError(f'Storage backend {cls.name!r} has no database name to give')
            config['database_name'] = database_name
        return config

    @classmethod
    def restore_backup(cls, profile: Profile, folder: Path, facts: dict[str, Any]) -> None:
        """Restore the database, then the repository; open the storage and compare its rows and objects with
        the snapshot's."""
        if facts.get('schema_version') != cls.version_head():
            raise StorageError(
                f'The backup is at schema version {facts.get("schema_version")!r}; this code restores '
                f'{cls.version_head()!r} only'
            )
        cls._restore_database(profile, folder)
        repository = cls.make_repository(profile)
        try:
            repository.restore_backup(folder / 'repository')
        finally:
            repository.close()
        storage = cls(profile)
        try:
            counts = storage.get_info()['entities']
            if counts != facts['entities']:
                raise StorageError(
                    f'The restored storage of profile {profile.name!r} holds {counts}, the backup {facts["entities"]}'
                )
            missing = storage._missing_referenced_objects()
            if missing:
                raise StorageError(
                    f'The restored repository of profile {profile.name!r} lacks {len(missing)} object(s) its nodes '
                    f'reference, e.g. {missing[0]}'
                )
        finally:
            storage.close()

    def _missing_referenced_objects(self) -> list[str]:
        """Return the keys that nodes' ``repository_metadata`` reference and the repository lacks."""
        import json  # noqa: PLC0415

        from sqlalchemy import text  # noqa: PLC0415 - lazy: drivers only when used

        keys: set[str] = set()

        def walk(tree: Any) -> None:
            if not isinstance(tree, dict):
                return
            if isinstance(tree.get('k'), str):
                keys.add(tree['k'])
            for child in dict(tree.get('o') or {}).values():
                walk(child)

        with self.connection() as connection:
            for (metadata,) in connection.execute(text('SELECT repository_metadata FROM db_dbnode')):
                walk(json.loads(metadata) if isinstance(metadata, str) else metadata)
        ordered = sorted(keys)
        present = self._repository.has_objects(ordered)
        return [key for key, found in zip(ordered, present, strict=True) if not found]

    # -- the repository ---------------------------------------------------------------------------------------

    @classmethod
    def make_repository(cls, profile: Profile) -> AbstractRepositoryBackend:
        """Return the profile's repository backend, as options ``repository_backend`` and ``repository_options`` say.

        The class is found by name through the plugin registry. Its ``filepath`` defaults to
        :meth:`default_repository_folder` when the class takes one.

        :raises ConfigError: naming the profile, if the backend is not installed or refuses the options.
        """
        where = f'profile {profile.name!r}'
        config = cls.validate_config(dict(profile.storage_config), where)
        name = config['repository_backend']
        options = dict(config['repository_options'])
        from provstore.registry import get_repository_backend  # noqa: PLC0415 - builds the registry on first use

        try:
            backend_class = get_repository_backend(name)
        except PluginNotFoundError as exc:
            raise ConfigError(f'{where}: option repository_backend: {exc}') from None
        if 'filepath' in options and (
            not isinstance(options['filepath'], str) or not Path(options['filepath']).expanduser().is_absolute()
        ):
            raise ConfigError(
                f"{where}: option repository_options: 'filepath' must be an absolute path, got {options['filepath']!r}"
            )
        try:
            return backend_class.from_options(options, cls.default_repository_folder(profile))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f'{where}: option repository_options does not suit repository backend {name!r}: {exc}'
            ) from None

    # -- lifecycle of a profile's storage ---------------------------------------------------------------------

    @classmethod
    def version_head(cls) -> str:
        """Return :data:`SCHEMA_VERSION_HEAD`."""
        return SCHEMA_VERSION_HEAD

    @classmethod
    def initialise(cls, profile: Profile, reset: bool = False) -> bool:
        """Create the database (if needed), the schema at the head version and the repository; or migrate.

        The schema and the row tying the database to its repository are written in one transaction, so an
        interrupted initialisation leaves no schema version behind and can be repeated.

        :param reset: erase the storage first (irreversible).
        :return: ``True`` if the storage was created or reset, ``False`` if it existed already.
        :raises StorageError: if the database holds tables that are not a provstore schema.
        """
        if cls.version_profile(profile) is not None:
            if not reset:
                cls.migrate(profile)
                return False
            cls.erase(profile)
        repository = cls.make_repository(profile)
        cls._create_database(profile)
        from sqlalchemy import insert  # noqa: PLC0415 - lazy: drivers only when used
        from sqlalchemy import inspect as sqlalchemy_inspect  # noqa: PLC0415

        from provstore_psql_dos import migrator  # noqa: PLC0415
        from provstore_psql_dos.models import DbSetting  # noqa: PLC0415

        engine = cls._create_engine(profile, pooled=False)
        try:
            with transaction(engine, write=True) as connection:
                tables = sorted(sqlalchemy_inspect(connection).get_table_names())
                if tables:
                    shown = ', '.join(tables[:5]) + (', ...' if len(tables) > 5 else '')
                    raise StorageError(
                        f'{cls.describe_database(profile)} holds tables ({shown}) but no provstore schema version; '
                        f'refusing to initialise the storage of profile {profile.name!r} in it'
                    )
                # NOTE: the repository is made once the database is known to be usable; if the transaction fails
                # after this, the empty repository is reused by the next attempt.
                repository.initialise()
                migrator.upgrade(connection)
                connection.execute(
                    insert(DbSetting).values(
                        key=REPOSITORY_UUID_KEY, val=repository.uuid, description='Repository UUID'
                    )
                )
        finally:
            engine.dispose()
            repository.close()
        return True

    @classmethod
    def migrate(cls, profile: Profile) -> None:
        """Bring the schema to the head version with alembic, in one transaction; nothing to do when it is there.

        :raises StorageError: if the storage does not exist.
        :raises IncompatibleStorageError: if its version is not one this code knows (a newer provstore made it).
        """
        version = cls.version_profile(profile)
        if version is None:
            raise StorageError(
                f'The storage of profile {profile.name!r} ({cls.name}) does not exist: nothing in '
                f'{cls.describe_database(profile)}'
            )
        if version == cls.version_head():
            return
        from provstore_psql_dos import migrator  # noqa: PLC0415 - lazy: alembic only when used

        if version not in migrator.known_revisions():
            raise IncompatibleStorageError(
                f'The storage of profile {profile.name!r} is at schema version {version!r}, which this code does not '
                f'know (its newest is {cls.version_head()}): upgrade provstore; the storage was left as it is'
            )
        engine = cls._create_engine(profile, pooled=False)
        try:
            with transaction(engine, write=True) as connection:
                migrator.upgrade(connection)
        finally:
            engine.dispose()

    @classmethod
    def erase(cls, profile: Profile) -> None:
        """Delete the database and the repository with everything in them; nothing to do when they do not exist."""
        cls._drop_database(profile)
        repository = cls.make_repository(profile)
        repository.erase()

    # -- an open storage --------------------------------------------------------------------------------------

    def __init__(self, profile: Profile) -> None:
        """Open the storage of ``profile``: a pool of database connections and its repository.

        :raises StorageError: if the storage does not exist, or its database and repository do not belong
            together (their repository uuids differ).
        :raises IncompatibleStorageError: if its schema version is not :meth:`version_head`.
        """
        super().__init__(profile)
        self._thread = _ThreadState()
        self._repository = self.make_repository(profile)
        self._engine = self._create_engine(profile, pooled=True)
        try:
            self._open_sql()
            self._check_repository()
        except BaseException:
            self._close()
            raise

    def _open_sql(self) -> None:
        """Choose the dialect of the database, once, and make what asks it: entity statements, queries, indexes."""
        from provstore_psql_dos.dialects import dialect_of  # noqa: PLC0415 - lazy: SQLAlchemy only when used
        from provstore_psql_dos.entities import EntitySql  # noqa: PLC0415
        from provstore_psql_dos.indexes import JsonIndexes  # noqa: PLC0415
        from provstore_psql_dos.queries import QueryRunner  # noqa: PLC0415

        self._dialect: Dialect = dialect_of(self._engine.dialect)
        self._sql: EntitySql = EntitySql(self._dialect)
        self._indexes: JsonIndexes = JsonIndexes(self, self._engine, self._dialect, changed=self._forget_statements)
        self._queries: QueryRunner = QueryRunner(self, self._engine, self._dialect, declared=self._indexes.declared)

    def _forget_statements(self) -> None:
        """Forget the statements made for queries: the declared JSON indexes may have changed."""
        self._queries.forget()

    def _check_repository(self) -> None:
        """Raise :class:`StorageError` unless the repository's uuid is the one recorded in the database."""
        from sqlalchemy import select  # noqa: PLC0415 - lazy: drivers only when used

        from provstore_psql_dos.models import DbSetting  # noqa: PLC0415

        with self.connection() as connection:
            recorded = connection.execute(
                select(DbSetting.val).where(DbSetting.key == REPOSITORY_UUID_KEY)
            ).scalar_one_or_none()
        if not self._repository.is_initialised:
            raise StorageError(
                f'The storage of profile {self._profile.name!r} is incomplete: its repository {self._repository!r} '
                f'(uuid {recorded}) does not exist'
            )
        actual = self._repository.uuid
        if recorded != actual:
            raise StorageError(
                f'The database and the repository of profile {self._profile.name!r} do not belong together: the '
                f'database records repository uuid {recorded}, but the repository {self._repository!r} has uuid '
                f'{actual}'
            )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the open storage (a small pool of connections)."""
        self.check_open()
        return self._engine

    # -- transactions -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in a write transaction, committed when the outermost block ends, rolled back on an exception.

        The outermost block holds one connection for this thread (on SQLite its transaction starts with
        ``BEGIN IMMEDIATE``, taking the write lock first); every entity method called inside uses it. Nested blocks
        are savepoints: an exception inside one undoes only that block. A read-only storage gives a read
        transaction, in which every write raises :class:`ReadOnlyStorageError`.

        :raises StorageError: if the transaction cannot be committed (a foreign key that points nowhere, say).
        """
        self.check_open()
        if self.read_only or self._thread.connection is not None:
            with self._block(write=not self.read_only):
                yield
            return
        # NOTE: an outermost write block may write objects and commit rows that refer to them: see object_writes
        with self.object_writes(), self._block(write=True):
            yield

    def object_writes(self) -> contextlib.AbstractContextManager[None]:
        """Hold the profile's object guard shared for the block: live maintenance deletes no object meanwhile."""
        from provstore.storage.objectguard import ObjectGuard  # noqa: PLC0415

        return ObjectGuard.for_folder(self._profile.folder).shared()

    @contextlib.contextmanager
    def connection(self, write: bool = False) -> Iterator[Connection]:
        """Yield the SQLAlchemy connection of a transaction block, for SQL of one's own (the lifecycle, tests).

        The block behaves as a :meth:`transaction` block and shares the thread's open block, if any (as a savepoint).

        :param write: the block will write. On SQLite an outermost write block starts with ``BEGIN IMMEDIATE``,
            taking the write lock (waiting for it up to the busy timeout) before reading anything.
        :raises ReadOnlyStorageError: if ``write`` and the storage is read-only.
        :raises StorageError: if ``write`` inside a block of this thread that does not write, or if the transaction
            cannot be committed.
        """
        if write:
            self.check_writable()
        else:
            self.check_open()
        with self._block(write) as connection:
            yield connection

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the block's reads in this thread in one read transaction that sees a single snapshot of the database
        (PostgreSQL: ``REPEATABLE READ``; SQLite: a deferred transaction in WAL mode), while others keep writing.

        Writes inside the block are refused. Inside an open block of this thread, that block is used as it is.
        """
        self.check_open()
        if self._thread.connection is not None:
            yield
            return
        with self._block(write=False, snapshot=True):
            yield

    @property
    def in_transaction(self) -> bool:
        """Whether this thread has a :meth:`transaction` (or :meth:`connection`) block open on this storage."""
        return self._thread.connection is not None

    @property
    def open_connection(self) -> Connection | None:
        """The connection of this thread's open transaction block, if any."""
        return self._thread.connection

    @contextlib.contextmanager
    def _block(self, write: bool, single: bool = False, snapshot: bool = False) -> Iterator[Connection]:
        """Yield the connection of the thread's block: a savepoint in the open one, else a new transaction.

        :param single: the caller runs one statement. Inside a block it then needs no savepoint when it reads, or
            writes on SQLite (a failed statement undoes itself there and leaves the transaction open); outside a
            block on PostgreSQL it runs in autocommit: one round trip to the server instead of three.
        :param snapshot: a new transaction reads one snapshot (see :meth:`snapshot`).
        """
        state = self._thread
        if state.connection is not None:
            if write and not state.write:
                raise StorageError(
                    f'Cannot write to the storage of profile {self._profile.name!r} inside a transaction block that '
                    'was opened to read only (connection() without write=True)'
                )
            if single and (not write or self._dialect.failed_statement_keeps_transaction):
                yield state.connection
                return
            with state.connection.begin_nested():
                yield state.connection
            return
        from sqlalchemy.exc import DBAPIError  # noqa: PLC0415 - lazy: drivers only when used

        from provstore_psql_dos.engine import WRITE_OPTION  # noqa: PLC0415

        with self._engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_OPTION: True})
            if snapshot and self._dialect.snapshot_isolation is not None:
                connection.execution_options(isolation_level=self._dialect.snapshot_isolation)
            elif single and self._dialect.autocommit_single_statement:
                # NOTE: one statement is atomic by itself: BEGIN and COMMIT would only add round trips.
                connection.execution_options(isolation_level='AUTOCOMMIT')
            committing = False
            try:
                # NOTE: SQLAlchemy's context manager also rolls back after a failed COMMIT: SQLite keeps a transaction
                # open when a deferred foreign key fails it, and the pooled connection must not keep it.
                with connection.begin():
                    state.connection, state.write = connection, write
                    try:
                        yield connection
                    finally:
                        state.connection, state.write = None, False
                    committing = True
            except DBAPIError as exc:
                if not committing:
                    raise
                raise StorageError(
                    f'The transaction on {self.describe_database(self._profile)} was rolled back: {one_line(exc)}'
                ) from exc

    @contextlib.contextmanager
    def _run(self, write: bool, what: str, single: bool = False) -> Iterator[tuple[Connection, EntitySql]]:
        """Yield a connection (a savepoint of the thread's block, else a transaction of its own) and the statements.

        :param what: what is done, for the message of a :class:`StorageError` a database error becomes.
        :param single: the work is one statement (see :meth:`_block`).
        """
        if write:
            self.check_writable()
        else:
            self.check_open()
        from sqlalchemy.exc import DBAPIError  # noqa: PLC0415 - lazy: drivers only when used

        try:
            with self._block(write, single) as connection:
                yield connection, self._sql
        except DBAPIError as exc:
            raise StorageError(f'Cannot {what}: {one_line(exc)}') from exc

    def get_repository(self) -> AbstractRepositoryBackend:
        """Return the repository backend holding the files of this storage's nodes."""
        self.check_open()
        return self._repository

    # -- queries and JSON indexes: forwarded -------------------------------------------------------------------

    def run_query(self, query: Query, batch_size: int | None = None) -> Iterator[tuple[Any, ...]]:
        """Yield the rows of ``query``, fetched ``batch_size`` at a time (see :meth:`.queries.QueryRunner.run`)."""
        self.check_open()
        return self._queries.run(query, batch_size)

    def count_query(self, query: Query) -> int:
        """Return the number of rows of ``query``, counted by the database."""
        self.check_open()
        return self._queries.count(query)

    def query_sql(self, query: Query, inline: bool = False) -> str:
        """Return the SQL of ``query`` in this storage's dialect (``inline``: values written in, to read only)."""
        self.check_open()
        return self._queries.sql(query, inline)

    def explain_query(self, query: Query) -> str:
        """Return the database's plan of ``query``: ``EXPLAIN`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite."""
        self.check_open()
        statement = self._queries.statement(query)
        with self._run(False, 'explain a query', single=True) as (connection, _):
            return self._dialect.explain(connection, statement)

    def add_json_index(self, entity: EntityType, field: str, path: Sequence[str]) -> str:
        """Make the index serving filters on a JSON path (nothing happens if it is there) and return its name.

        What is built is the dialect's: on PostgreSQL a hash index and, for nodes, a number table with its tally
        (:mod:`provstore_psql_dos.jsonindex`), neither blocking writers for long; on SQLite an expression index. The
        path is recorded in the database once all is built (:mod:`provstore_psql_dos.indexes`).

        :raises QueryError: for an entity without that JSON field, or a key that cannot be queried.
        """
        self.check_open()
        return self._indexes.add(entity, field, path)

    def list_json_indexes(self) -> list[tuple[EntityType, str, tuple[str, ...]]]:
        """Return the JSON paths that have an index, as ``(entity, field, path)``."""
        self.check_open()
        return self._indexes.paths()

    def drop_json_index(self, entity: EntityType, field: str, path: Sequence[str]) -> None:
        """Drop the index of a JSON path and forget it (nothing happens if there is none)."""
        self.check_open()
        self._indexes.drop(entity, field, path)

    def _close(self) -> None:
        """Close every pooled database connection and the repository's handles."""
        self._engine.dispose()
        self._repository.close()

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the backend, schema version, database, entity counts per table and the repository's figures."""
        self.check_open()
        from sqlalchemy import func, select  # noqa: PLC0415 - lazy: drivers only when used

        from provstore_psql_dos.models import ENTITY_TABLES, Base  # noqa: PLC0415

        counts = [
            select(func.count()).select_from(Base.metadata.tables[table]).scalar_subquery().label(entity)
            for entity, table in ENTITY_TABLES.items()
        ]
        nodes = Base.metadata.tables['db_dbnode']
        with self.connection() as connection:
            row = connection.execute(select(*counts)).one()
            if detailed:
                by_type = {
                    column: {
                        str(value): int(count)
                        for value, count in connection.execute(
                            select(nodes.c[column], func.count()).group_by(nodes.c[column]).order_by(nodes.c[column])
                        )
                        if value is not None
                    }
                    for column in ('node_type', 'process_type')
                }
                sizes = self._dialect.relation_sizes(connection)
        database = self._describe_database(detailed)
        info: dict[str, Any] = {
            'backend': self.name,
            'profile': self._profile.name,
            'profile_folder': str(self._profile.folder),
            'schema_version': self.version_head(),
            'database': database,
            'entities': {entity: int(row._mapping[entity]) for entity in ENTITY_TABLES},
            'repository_backend': self._repository.name,
            'repository': self._repository.get_info(detailed),
        }
        if detailed:
            info['nodes_by_type'] = by_type['node_type']
            info['nodes_by_process_type'] = by_type['process_type']
            database.update(sizes)
        return info

    def maintain(self, full: bool = False, dry_run: bool = False, compress: bool = False) -> MaintenanceReport:
        """Maintain the repository (live, or full when ``full``), then, when ``full``, the database.

        :param full: also repack the repository and VACUUM and ANALYZE the database; the core holds the profile's
            exclusive lock.
        :param dry_run: report what would be done and change nothing.
        :param compress: compress objects as they are packed (full: the packed ones too) where it saves space.
        """
        from provstore.storage.collect import delete_unreferenced  # noqa: PLC0415
        from provstore.storage.objectguard import ObjectGuard  # noqa: PLC0415

        if dry_run:
            self.check_open()
        else:
            self.check_writable()
        try:
            guard = ObjectGuard.for_folder(self._profile.folder)
            collection = delete_unreferenced(self, guard, dry_run=dry_run)
            options = {'compress': True} if compress else {}  # NOTE: an option only some repositories know
            report = self._repository.maintain(dry_run=dry_run, live=not full, **options)
        finally:
            # NOTE: release the repository's handles: an SQLite index (disk-objectstore's) left open keeps the
            # -wal and -shm files it created even for a dry run, and holds a read snapshot; the next use reopens.
            self._repository.close()
        database_steps, database_details = self._maintain_database(full=full, dry_run=dry_run)
        # NOTE: the part goes last, so that a dry run's steps still start with 'would' (as the CLI expects).
        steps = (
            f'{collection.step(dry_run)} [repository]',
            *(f'{step} [repository]' for step in report.steps),
            *(f'{step} [database]' for step in database_steps),
        )
        details = {
            'unreferenced': {
                'found': collection.unreferenced,
                'deleted': collection.deleted,
                'deleted_bytes': collection.deleted_bytes,
                'kept_busy': collection.kept_busy,
            },
            'repository': report.details,
            'database': database_details,
        }
        return MaintenanceReport(dry_run=dry_run, live=not full, steps=steps, details=details)


@contextlib.contextmanager
def transaction(engine: Engine, write: bool = False) -> Iterator[Connection]:
    """Yield a connection of ``engine`` in a transaction; ``write`` starts it with ``BEGIN IMMEDIATE`` on SQLite."""
    from provstore_psql_dos.engine import WRITE_OPTION  # noqa: PLC0415 - lazy: drivers only when used

    with engine.connect() as connection:
        if write:
            connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def absolute_folder(value: str, where: str, option: str) -> Path:
    """Return ``value`` as a path, or raise :class:`ConfigError` naming ``where`` and ``option`` if it is relative."""
    folder = Path(os.path.expanduser(value))
    if not folder.is_absolute():
        raise ConfigError(f'{where}: option {option!r} must be an absolute path, got {value!r}')
    return folder
