"""``sqlite_zip`` runs the archive-format contract of ``provstore.testing`` (which includes the read-only query
conformance contract), as a third-party format would: the contract class, the plugin's classes, nothing else."""

from __future__ import annotations

from provstore.testing import ArchiveFormatContract
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend
from provstore_sqlite_zip.backend import SqliteZipStorageBackend
from provstore_sqlite_zip.format import SqliteZipFormat


class TestSqliteZipFormat(ArchiveFormatContract):
    """The ``.aiida`` format, made from and imported into ``sqlite_dos``; its query cases on the archive in place."""

    format_class = SqliteZipFormat
    backend_class = SqliteZipStorageBackend
    storage_class = SqliteDosStorageBackend
