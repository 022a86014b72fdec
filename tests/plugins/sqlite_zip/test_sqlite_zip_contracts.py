"""``sqlite_zip`` runs the read-only query conformance contract of ``provstore.testing``, as a third party would.

The graph's archive is written here by hand: the graph is stored with ``sqlite_dos``, its database copied (SQLite's
backup, without the tables an archive has not) and its repository's objects added as ``repo/<sha256>`` members.
NOTE: not with ``create_archive``: the query graph holds unsealed process nodes (its cases query them), which
``create_archive`` refuses, as aiida-core does.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provstore.storage import EntityStorage
from provstore.testing import ReadOnlyQueryConformanceContract, new_profile, opened_storage
from provstore.testing.query_graph import build_query_graph
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend
from provstore_sqlite_zip.backend import SqliteZipStorageBackend


def write_archive_by_hand(storage: SqliteDosStorageBackend, target: Path) -> Path:
    """Write the content of an open ``sqlite_dos`` storage as a main_0001 ``.aiida`` zip at ``target``."""
    database = target.with_suffix('.sqlite3')
    source = sqlite3.connect(storage.database_file(storage.profile))
    copy = sqlite3.connect(database)
    try:
        source.backup(copy)
        copy.execute('DROP TABLE db_dbsetting')
        copy.execute('DROP TABLE alembic_version')
        copy.commit()
        copy.execute('VACUUM')
    finally:
        copy.close()
        source.close()
    repository = storage.get_repository()
    with zipfile.ZipFile(target, 'w', compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr('metadata.json', json.dumps({'export_version': 'main_0001', 'key_format': 'sha256'}))
        handle.write(database, 'db.sqlite3')
        for key, stream in repository.iter_object_streams(list(repository.list_objects())):
            with handle.open(f'repo/{key}', 'w') as member:
                while chunk := stream.read(1 << 20):
                    member.write(chunk)
    database.unlink()
    return target


class TestSqliteZipQueries(ReadOnlyQueryConformanceContract):
    """The reading cases on the graph's archive, opened in place by ``sqlite_zip``."""

    backend_class = SqliteZipStorageBackend

    @pytest.fixture(scope='class')
    @classmethod
    def query_storage(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntityStorage]:
        """Store the graph with ``sqlite_dos``, write it as an archive, and open the archive in place."""
        folder = tmp_path_factory.mktemp('sqlite-zip-query-graph')
        source = new_profile(SqliteDosStorageBackend, folder / 'source')
        with opened_storage(SqliteDosStorageBackend, source, initialise=True, erase=True) as writable:
            assert isinstance(writable, SqliteDosStorageBackend)
            build_query_graph(writable)
            archive = write_archive_by_hand(writable, folder / 'graph.aiida')
        profile = new_profile(
            SqliteZipStorageBackend, folder / 'archive', filepath=str(archive), cache_folder=str(folder / 'cache')
        )
        with opened_storage(SqliteZipStorageBackend, profile) as storage:
            assert isinstance(storage, EntityStorage)
            yield storage
