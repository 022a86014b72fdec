"""The ``sqlite_dos`` backend: its SQLite set-up, concurrent writers, options, repository and files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update

from provstore.config import Profile
from provstore.exceptions import ConfigError, StorageError
from provstore.registry import get_storage_backend
from provstore_psql_dos.base import REPOSITORY_UUID_KEY, SCHEMA_VERSION_HEAD
from provstore_psql_dos.engine import BUSY_TIMEOUT
from provstore_psql_dos.models import DbSetting, DbUser
from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend


@pytest.fixture
def profile(make_profile: Callable[..., Profile]) -> Profile:
    """A ``sqlite_dos`` profile with default options, not initialised."""
    return make_profile(SqliteDosStorageBackend)


@pytest.fixture
def storage(profile: Profile) -> Iterator[SqliteDosStorageBackend]:
    """The profile's storage, initialised and open; closed afterwards."""
    SqliteDosStorageBackend.initialise(profile)
    storage = SqliteDosStorageBackend(profile)
    yield storage
    storage.close()


def test_backends_are_registered_through_the_entry_point() -> None:
    """The installed plugin provides both backends by name."""
    assert get_storage_backend('sqlite_dos') is SqliteDosStorageBackend
    assert get_storage_backend('psql_dos') is PsqlDosStorageBackend


def test_layout(storage: SqliteDosStorageBackend, profile: Profile) -> None:
    """The database and the repository are in the storage folder, ``<profile folder>/storage``."""
    folder = profile.folder / 'storage'
    assert SqliteDosStorageBackend.storage_folder(profile) == folder
    assert (folder / 'database.sqlite').is_file()
    assert (folder / 'container' / 'config.json').is_file()
    assert storage.get_repository().uuid is not None


def test_pragmas_on_every_connection(storage: SqliteDosStorageBackend) -> None:
    """Each pooled connection has WAL journaling, the busy timeout and foreign keys on."""
    with storage.engine.connect() as first, storage.engine.connect() as second:
        for connection in (first, second):
            assert connection.exec_driver_sql('PRAGMA journal_mode').scalar() == 'wal'
            assert connection.exec_driver_sql('PRAGMA busy_timeout').scalar() == int(BUSY_TIMEOUT * 1000)
            assert connection.exec_driver_sql('PRAGMA foreign_keys').scalar() == 1
        assert first.connection.dbapi_connection is not second.connection.dbapi_connection


def test_commits_are_durable_by_default(storage: SqliteDosStorageBackend) -> None:
    """A default profile syncs the write-ahead log at every commit: ``synchronous = FULL`` (2) on every connection."""
    with storage.engine.connect() as first, storage.engine.connect() as second:
        for connection in (first, second):
            assert connection.exec_driver_sql('PRAGMA synchronous').scalar() == 2
    assert SqliteDosStorageBackend.validate_config({}, 'profile')['durability'] == 'full'


def test_relaxed_durability_is_an_option(make_profile: Callable[..., Profile]) -> None:
    """``durability: relaxed`` runs ``synchronous = NORMAL`` (1); any other value is refused, naming the option."""
    profile = make_profile(SqliteDosStorageBackend, durability='relaxed')
    SqliteDosStorageBackend.initialise(profile)
    storage = SqliteDosStorageBackend(profile)
    try:
        with storage.engine.connect() as connection:
            assert connection.exec_driver_sql('PRAGMA synchronous').scalar() == 1
    finally:
        storage.close()
    with pytest.raises(ConfigError, match=r"option 'durability' must be one of full, relaxed, got 'fast'"):
        make_profile(SqliteDosStorageBackend, durability='fast')


def test_write_transaction_takes_the_lock_first(storage: SqliteDosStorageBackend) -> None:
    """A write transaction holds the write lock from its start: another writer waits for it, readers do not."""
    events: list[str] = []
    started = threading.Event()

    def other_writer() -> None:
        started.wait()
        with storage.connection(write=True) as connection:
            events.append('other writer in')
            connection.execute(insert(DbSetting).values(key='other', val=2, description=''))

    thread = threading.Thread(target=other_writer)
    thread.start()
    with storage.connection(write=True) as connection:
        started.set()
        time.sleep(0.3)
        with storage.connection() as reader:
            assert reader.execute(select(DbSetting.key).where(DbSetting.key == 'first')).all() == []
        events.append('first writer out')
        connection.execute(insert(DbSetting).values(key='first', val=1, description=''))
    thread.join()
    assert events == ['first writer out', 'other writer in']


def test_concurrent_read_modify_write_loses_nothing(storage: SqliteDosStorageBackend) -> None:
    """Threads incrementing one shared row, each reading then writing, never see "database is locked" nor lose updates.

    This is aiida-core's ``sqlite_dos`` failure with several daemon workers updating one settings row: a deferred
    transaction that read before another writer committed cannot write. Write transactions begin IMMEDIATE.
    """
    with storage.connection(write=True) as connection:
        connection.execute(insert(DbSetting).values(key='counter', val=0, description=''))
    errors: list[BaseException] = []
    threads, increments = 4, 25

    def work() -> None:
        try:
            for _ in range(increments):
                with storage.connection(write=True) as connection:
                    value = connection.execute(select(DbSetting.val).where(DbSetting.key == 'counter')).scalar_one()
                    time.sleep(0.001)
                    connection.execute(update(DbSetting).where(DbSetting.key == 'counter').values(val=value + 1))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with storage.connection() as connection:
        assert connection.execute(select(DbSetting.val).where(DbSetting.key == 'counter')).scalar_one() == 100


def test_version_probe_creates_nothing(profile: Profile) -> None:
    """Asking for the schema version of a storage that does not exist creates no folder and no file."""
    assert SqliteDosStorageBackend.version_profile(profile) is None
    assert not profile.folder.exists()


def test_version_probe_reports_a_corrupt_file(profile: Profile) -> None:
    """A database file that is not SQLite is a StorageError naming the file."""
    path = SqliteDosStorageBackend.database_file(profile)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'not a database' * 100)
    with pytest.raises(StorageError, match=r'database\.sqlite: cannot read the schema version'):
        SqliteDosStorageBackend.version_profile(profile)


def test_repository_uuid_is_recorded(storage: SqliteDosStorageBackend) -> None:
    """The repository's uuid is in ``db_dbsetting`` under ``repository|uuid``, as aiida-core keeps it."""
    with storage.connection() as connection:
        recorded = connection.execute(select(DbSetting.val).where(DbSetting.key == REPOSITORY_UUID_KEY)).scalar_one()
    assert recorded == storage.get_repository().uuid


def test_repository_uuid_mismatch_is_refused(profile: Profile) -> None:
    """A database whose repository was replaced by another one does not open; the message names both uuids."""
    SqliteDosStorageBackend.initialise(profile)
    repository = SqliteDosStorageBackend.make_repository(profile)
    old_uuid = repository.uuid
    repository.erase()
    repository.initialise()
    new_uuid = repository.uuid
    repository.close()
    assert old_uuid != new_uuid
    with pytest.raises(StorageError, match=rf'do not belong together.*uuid {old_uuid}.*uuid {new_uuid}'):
        SqliteDosStorageBackend(profile)


def test_missing_repository_is_refused(profile: Profile) -> None:
    """A storage whose repository was deleted does not open; the message says the repository does not exist."""
    SqliteDosStorageBackend.initialise(profile)
    SqliteDosStorageBackend.make_repository(profile).erase()
    with pytest.raises(StorageError, match=r'repository .* does not exist'):
        SqliteDosStorageBackend(profile)


def test_repository_elsewhere(make_profile: Callable[..., Profile], tmp_path: Path) -> None:
    """``repository_options`` may put the repository anywhere; ``erase`` removes it there."""
    repository = tmp_path / 'shared' / 'repo'
    profile = make_profile(SqliteDosStorageBackend, repository_options={'filepath': str(repository)})
    SqliteDosStorageBackend.initialise(profile)
    assert (repository / 'config.json').is_file()
    assert not (SqliteDosStorageBackend.storage_folder(profile) / 'container').exists()
    SqliteDosStorageBackend.erase(profile)
    assert not repository.exists()
    assert not SqliteDosStorageBackend.storage_folder(profile).exists()


def test_erase_keeps_foreign_files(make_profile: Callable[..., Profile], tmp_path: Path) -> None:
    """Erasing deletes the database files and the repository, but not other files in the storage folder."""
    folder = tmp_path / 'mine'
    profile = make_profile(SqliteDosStorageBackend, filepath=str(folder))
    SqliteDosStorageBackend.initialise(profile)
    (folder / 'notes.txt').write_text('keep me')
    SqliteDosStorageBackend.erase(profile)
    assert sorted(path.name for path in folder.iterdir()) == ['notes.txt']


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({'filepath': 'relative/folder'}, r"option 'filepath' must be an absolute path, got 'relative/folder'"),
        ({'repository_options': {'filepath': 'repo'}}, r"repository_options: 'filepath' must be an absolute path"),
        ({'repository_backend': 'no.such.backend'}, r"profile 'test': option repository_backend: .*no\.such\.backend"),
        ({'repository_options': {'colour': 'blue'}}, r"repository_options does not suit repository backend 'disk_obj"),
    ],
)
def test_invalid_options(make_profile: Callable[..., Profile], options: dict[str, object], message: str) -> None:
    """Invalid options are a ConfigError naming the profile and the option, raised before anything is created."""
    profile = make_profile(SqliteDosStorageBackend, **options)
    with pytest.raises(ConfigError, match=message):
        SqliteDosStorageBackend.initialise(profile)
    assert not profile.folder.exists()


def test_profile_without_folder_needs_filepath() -> None:
    """A profile that has no folder and no ``filepath`` is a ConfigError asking for ``filepath``."""
    profile = Profile(name='nowhere', storage_backend='sqlite_dos', storage_config={})
    with pytest.raises(ConfigError, match=r"profile 'nowhere' has no folder; give the option 'filepath'"):
        SqliteDosStorageBackend.version_profile(profile)


def test_get_info_counts_entities(storage: SqliteDosStorageBackend) -> None:
    """``get_info`` counts the rows of each entity table and includes the repository's figures."""
    with storage.connection(write=True) as connection:
        connection.execute(insert(DbUser), [{'email': 'a@b.c'}, {'email': 'd@e.f'}])
    info = storage.get_info(detailed=True)
    assert json.loads(json.dumps(info)) == info
    assert info['entities'] == {
        'users': 2,
        'computers': 0,
        'authinfos': 0,
        'nodes': 0,
        'links': 0,
        'groups': 0,
        'group_nodes': 0,
        'comments': 0,
        'logs': 0,
    }
    assert info['schema_version'] == SCHEMA_VERSION_HEAD
    assert info['repository_backend'] == 'disk_objectstore'
    assert info['database']['size_bytes'] > 0
    assert info['repository']


def test_full_maintenance_vacuums_the_database(storage: SqliteDosStorageBackend, profile: Profile) -> None:
    """Full maintenance VACUUMs: the space of deleted rows is returned and the write-ahead log is emptied."""
    with storage.connection(write=True) as connection:
        connection.execute(
            insert(DbUser), [{'email': f'{index}@x', 'institution': 'x' * 1000} for index in range(2000)]
        )
    with storage.connection(write=True) as connection:
        connection.execute(text('DELETE FROM db_dbuser'))
    path = SqliteDosStorageBackend.database_file(profile)
    report = storage.maintain(full=True)
    assert report.details['database']['size_bytes_after'] < report.details['database']['size_bytes_before']
    assert report.steps[-1].startswith('VACUUMed and ANALYZEd')
    assert report.steps[-1].endswith('[database]')
    assert report.steps[0].endswith('[repository]')
    assert path.with_name('database.sqlite-wal').stat().st_size == 0
    live = storage.maintain()
    assert live.steps[-1] == 'nothing to do in live maintenance (VACUUM and ANALYZE need full maintenance) [database]'


def test_a_repository_whose_location_has_another_name_fails_in_one_line(
    make_profile: Callable[..., Profile], register_plugin: Callable[..., object], tmp_path: Path
) -> None:
    """A third-party repository backend whose constructor calls its location ``path`` gets a one-line ConfigError
    saying to call it ``filepath`` (the option the storage backend fills in); given ``path`` explicitly, it works."""
    from provstore import hookimpl
    from provstore_sandbox.backend import SandboxRepositoryBackend

    class PathRepository(SandboxRepositoryBackend):
        """A repository backend written before reading the docs."""

        name = 'acme.path'

        def __init__(self, path: str) -> None:
            super().__init__(filepath=path)

    class Plugin:
        @hookimpl
        def register_repository_backends(self) -> list[type]:
            return [PathRepository]

    register_plugin(Plugin(), name='acme')
    profile = make_profile(SqliteDosStorageBackend, repository_backend='acme.path')
    with pytest.raises(
        ConfigError, match=r"needs path, which nothing gives; .* name the constructor parameter 'filepath'"
    ):
        SqliteDosStorageBackend.make_repository(profile)
    given = make_profile(
        SqliteDosStorageBackend,
        name='given',
        repository_backend='acme.path',
        repository_options={'path': str(tmp_path / 'r')},
    )
    assert isinstance(SqliteDosStorageBackend.make_repository(given), PathRepository)
