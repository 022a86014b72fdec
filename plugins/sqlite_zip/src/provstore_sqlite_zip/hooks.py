"""Hook implementations of the ``sqlite_zip`` plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provstore import hookimpl

if TYPE_CHECKING:
    from provstore.archive import ArchiveFormat
    from provstore.storage import StorageBackend


@hookimpl
def register_archive_formats() -> list[type[ArchiveFormat]]:
    """Return the ``sqlite_zip`` archive format."""
    from provstore_sqlite_zip.format import SqliteZipFormat  # noqa: PLC0415 - lazy by design

    return [SqliteZipFormat]


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    """Return the read-only ``sqlite_zip`` storage backend (an archive queried in place)."""
    from provstore_sqlite_zip.backend import SqliteZipStorageBackend  # noqa: PLC0415 - lazy by design

    return [SqliteZipStorageBackend]
