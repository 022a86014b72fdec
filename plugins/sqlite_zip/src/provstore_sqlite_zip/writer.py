"""Writing a ``.aiida`` archive: ``repo/<sha256>`` streamed as they come, then ``metadata.json`` and ``db.sqlite3``.

Rows go into a scratch SQLite database beside the destination, with psql_dos's tables (the archive database
mirrors the main one), while objects are copied in chunks into a temporary zip beside the destination, possibly from
another thread (:class:`~provstore_sqlite_zip.zipwriter.ZipStreamWriter`: no Python object per member is kept). At
:meth:`SqliteZipWriter.write_metadata` the metadata and the database are added to the zip and listed first in its
central directory, where aiida-core's importer looks for them (among the first four entries). The finished zip is
synced and renamed to its final name only by :meth:`SqliteZipWriter.finish`.

An object whose first KiB holds nearly every byte value (random or already compressed data: deflate cannot shrink
it) is stored, not deflated: deflating it costs most of the time of writing an archive and saves nothing. Counting
byte values is the test because it is cheap; a trial deflate of a sample costs more than copying the object. Every
reader of zip files, aiida-core's included, reads either kind of member.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import operator
import os
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from provstore.exceptions import ArchiveExportError
from provstore.files import move_into_place
from provstore.storage import EntityType, Row
from provstore_sqlite_zip.cache import REQUIRED_COLUMNS
from provstore_sqlite_zip.zipped import DATABASE_MEMBER, METADATA_MEMBER, REPOSITORY_PREFIX, SHA256, VERSION_HEAD
from provstore_sqlite_zip.zipwriter import ZipStreamWriter

__all__ = ['AIIDA_VERSION', 'SqliteZipWriter', 'check_destination', 'scratch_file']

AIIDA_VERSION = '2.6.0'
"""The ``aiida_version`` written: the aiida-core release whose archive schema (``main_0001``) these files follow.
aiida-core reads only ``export_version`` to decide whether it can import a file; this value is shown to users."""

_SAMPLE = 1024
"""Bytes at the start of an object whose distinct values tell whether deflating it is worth it; shorter objects
always are."""
_UNIFORM = 224
"""An object whose sample holds more distinct byte values than this is stored. Uniformly random bytes give 251 on
average (256 (1 - e**-4)), below 240 hardly ever; text and structured data far fewer."""


def check_destination(path: Path, force: bool) -> Path:
    """Return ``path`` made absolute, where a new archive may be written.

    :raises ArchiveExportError: if ``path`` exists and ``force`` is false, or its folder does not exist.
    """
    path = Path(path).absolute()
    if path.exists() and not force:
        raise ArchiveExportError(f'{path}: the file exists: use --force (force=True) to overwrite it')
    if not path.parent.is_dir():
        raise ArchiveExportError(f'{path}: the folder {path.parent} does not exist')
    return path


def scratch_file(path: Path, suffix: str) -> Path:
    """Return a new empty temporary file beside ``path`` (hidden, named after it); the caller removes it.

    It has the permissions of a file the user makes (``0o666`` less the umask), not mkstemp's ``0o600``: an
    archive is made to be shared.
    """
    descriptor, name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=suffix, dir=path.parent)
    try:
        umask = os.umask(0o077)  # NOTE: the only way to read the umask is to set it; put back at once
        os.umask(umask)
        os.fchmod(descriptor, 0o666 & ~umask)
    finally:
        os.close(descriptor)
    return Path(name)


class SqliteZipWriter:
    """An :class:`~provstore.archive.ArchiveWriter` of a main_0001 ``.aiida`` file."""

    def __init__(self, path: Path, compression: int = 6, force: bool = False) -> None:
        """:raises ArchiveExportError: if ``path`` exists and ``force`` is false, or its folder does not exist."""
        from sqlalchemy import create_engine  # noqa: PLC0415 - SQLAlchemy only when an archive is written
        from sqlalchemy.pool import NullPool  # noqa: PLC0415

        from provstore_psql_dos.models import Base  # noqa: PLC0415

        self.path = check_destination(path, force)
        self._compression = compression
        self._database = scratch_file(self.path, '.sqlite3.part')
        self._partial = scratch_file(self.path, '.part')
        self._zip = ZipStreamWriter(self._partial, level=compression)
        self._rows_closed = False
        tables = [Base.metadata.tables[name] for name in REQUIRED_COLUMNS]
        engine = create_engine(f'sqlite:///{self._database}', poolclass=NullPool)
        try:
            Base.metadata.create_all(engine, tables=tables)
        finally:
            engine.dispose()
        self._columns = {table.name: [column.name for column in table.columns] for table in tables}
        self._required = {
            table.name: frozenset(column.name for column in table.columns if not column.nullable) for table in tables
        }
        # Rows in text form go in as they are, in one transaction; a scratch file needs no journal nor syncs (the zip
        # is synced when finished; an interrupted write leaves nothing under the final name either way).
        self._connection = sqlite3.connect(self._database, isolation_level=None)
        self._connection.execute('PRAGMA synchronous = OFF')
        self._connection.execute('PRAGMA journal_mode = OFF')
        # NOTE: the plain indexes are made again once every row is in: building one is faster than keeping it up
        # to date row by row. Those of unique constraints stay, to refuse duplicates as they come.
        self._indexes = [
            statement
            for (statement,) in self._connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
            )
        ]
        for (name,) in self._connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall():
            self._connection.execute(f'DROP INDEX "{name}"')
        self._connection.execute('BEGIN')
        self._statements: dict[str, str] = {}
        self._done = False

    def write_rows(self, entity: EntityType, rows: Sequence[Row]) -> None:
        """Insert a batch of rows in text form (``id`` kept) into the archive's database; a column a row omits is
        NULL."""
        from provstore_psql_dos.tables import table_info  # noqa: PLC0415

        if self._rows_closed:
            raise RuntimeError('rows are written before the metadata')
        if not rows:
            return
        name = table_info(entity).name
        columns = self._columns[name]
        statement = self._statements.get(name)
        if statement is None:
            statement = self._statements[name] = (
                f'INSERT INTO {name} ({", ".join(columns)}) VALUES ({", ".join("?" for _ in columns)})'
            )
        try:
            self._connection.executemany(statement, _as_tuples(rows, columns))
        except sqlite3.Error as exc:
            raise ArchiveExportError(f'{self.path}: cannot write {entity.value} rows into the archive: {exc}') from None

    def required_columns(self, entity: EntityType) -> frozenset[str]:
        """Return the columns of ``entity`` that may not be NULL in the archive's database."""
        from provstore_psql_dos.tables import table_info  # noqa: PLC0415

        return self._required[table_info(entity).name]

    def write_metadata(self, details: Mapping[str, Any]) -> None:
        """Start the zip with ``metadata.json`` (``details`` as ``creation_parameters``) and the database."""
        self.write_metadata_as(
            {
                'export_version': VERSION_HEAD,
                'aiida_version': AIIDA_VERSION,
                'key_format': 'sha256',
                'compression': self._compression,
                'ctime': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                'creation_parameters': dict(details),
            }
        )

    def write_metadata_as(self, metadata: Mapping[str, Any]) -> None:
        """Close the rows and add ``metadata`` as ``metadata.json`` (JSON-serialisable, as it is) and the database,
        both listed first in the zip's central directory."""
        if self._rows_closed:
            raise RuntimeError('the metadata is written once')
        self._rows_closed = True
        for statement in self._indexes:
            self._connection.execute(statement)
        self._connection.execute('COMMIT')
        self._connection.close()
        self._zip.write_bytes(METADATA_MEMBER, json.dumps(dict(metadata), indent=1).encode(), leading=True)
        self._zip.write_file(DATABASE_MEMBER, self._database, leading=True)
        self._database.unlink()

    def write_object(self, key: str, stream: BinaryIO) -> int:
        """Copy one object into ``repo/<key>`` in chunks; return its size. Objects may come before or after the
        metadata, and from another thread than the rows (never from two threads at once).

        :raises ArchiveExportError: if ``key`` is not a sha256 hex digest (the archive's key format).
        """
        if not SHA256.fullmatch(key):
            raise ArchiveExportError(f'the object key {key!r} is not a sha256 digest: this archive format needs them')
        return self._zip.write_stream(f'{REPOSITORY_PREFIX}{key}', stream, worth=_worth_deflating)

    def finish(self) -> None:
        """Close the zip, sync it, and rename it to the final name (then sync the folder)."""
        if not self._rows_closed:
            raise RuntimeError('the metadata was never written')
        self._zip.close()
        move_into_place(self._partial, self.path)
        self._done = True

    def abort(self) -> None:
        """Remove the temporary files; the final name is never touched."""
        if self._done:
            return
        with contextlib.suppress(Exception):
            self._connection.close()
        self._zip.abort()
        for scratch in (self._database, self._partial):
            scratch.unlink(missing_ok=True)
        self._done = True


def _as_tuples(rows: Sequence[Row], columns: list[str]) -> list[tuple[Any, ...]]:
    """Return the rows' values in the order of ``columns``; a column a row lacks is ``None``."""
    if len(columns) < 2:  # NOTE: itemgetter of one key gives the value, not a tuple
        return [tuple(row.get(column) for column in columns) for row in rows]
    values = operator.itemgetter(*columns)
    try:
        return list(map(values, rows))
    except KeyError:
        return [tuple(row.get(column) for column in columns) for row in rows]


def _worth_deflating(first: bytes) -> bool:
    """Whether an object whose first chunk is ``first`` is worth deflating: it is shorter than :data:`_SAMPLE`, or
    its first :data:`_SAMPLE` bytes hold at most :data:`_UNIFORM` distinct values."""
    return len(first) < _SAMPLE or len(set(first[:_SAMPLE])) <= _UNIFORM
