"""The writer of ``.aiida`` files: its database has the schema of main_0001, indexes included."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from provstore.storage import EntityType
from provstore_psql_dos.models import Base
from provstore_sqlite_zip.cache import REQUIRED_COLUMNS
from provstore_sqlite_zip.writer import SqliteZipWriter


def _schema(database: Path) -> set[tuple[str, str, str]]:
    connection = sqlite3.connect(database)
    try:
        return set(connection.execute('SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL'))
    finally:
        connection.close()


def test_the_database_has_every_table_and_index_of_the_models(tmp_path: Path) -> None:
    """The plain indexes, dropped while rows go in, are all back in the archive's database, as the models make them;
    the rows written are there."""
    expected = tmp_path / 'expected.sqlite3'
    engine = create_engine(f'sqlite:///{expected}', poolclass=NullPool)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[name] for name in REQUIRED_COLUMNS])
    engine.dispose()
    writer = SqliteZipWriter(tmp_path / 'out.aiida')
    writer.write_rows(
        EntityType.USER, [{'id': 7, 'email': 'a@b.c', 'first_name': '', 'last_name': '', 'institution': ''}]
    )
    writer.write_metadata({})
    writer.finish()
    written = tmp_path / 'written.sqlite3'
    with zipfile.ZipFile(tmp_path / 'out.aiida') as handle:
        written.write_bytes(handle.read('db.sqlite3'))
    schema = _schema(written)
    assert schema == _schema(expected)
    assert any(kind == 'index' and name.startswith('ix_db_dbnode') for kind, name, _ in schema)
    connection = sqlite3.connect(written)
    assert connection.execute('SELECT id, email FROM db_dbuser').fetchall() == [(7, 'a@b.c')]
    connection.close()
