"""The archive format ``sqlite_zip``: aiida-core's ``.aiida`` zip of ``metadata.json``, ``db.sqlite3`` and
``repo/<sha256>``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from provstore.archive import ArchiveFormat, ArchiveMetadata, ArchiveWriter
from provstore_sqlite_zip.zipped import FORMAT_NAME, VERSION_HEAD, VERSIONS_READABLE, open_archive_zip

if TYPE_CHECKING:
    from provstore.storage import StorageBackend

__all__ = ['SqliteZipFormat']


class SqliteZipFormat(ArchiveFormat):
    """aiida-core's .aiida archives: a zip of metadata.json, an SQLite database and the files by sha256."""

    name: ClassVar[str] = FORMAT_NAME

    @classmethod
    def version_head(cls) -> str:
        """Return ``main_0001``, the newest export_version of aiida-core."""
        return VERSION_HEAD

    @classmethod
    def versions_readable(cls) -> tuple[str, ...]:
        """Return ``main_0000``, ``main_0001`` and ``1.0``."""
        return VERSIONS_READABLE

    @classmethod
    def read_metadata(cls, path: Path) -> ArchiveMetadata:
        """Return the metadata of the archive at ``path``, reading the zip's directory and ``metadata.json`` only.

        :raises ArchiveError: naming the defect of a file that is not a readable archive.
        """
        return open_archive_zip(Path(path)).metadata

    @classmethod
    def open_writer(cls, path: Path, *, compression: int = 6, force: bool = False) -> ArchiveWriter:
        """Return a writer of a main_0001 archive at ``path``, moved into place only when finished.

        :raises ArchiveExportError: if ``path`` exists and ``force`` is false.
        """
        from provstore_sqlite_zip.writer import SqliteZipWriter  # noqa: PLC0415 - SQLAlchemy only when writing

        return SqliteZipWriter(path, compression=compression, force=force)

    @classmethod
    def verify(cls, path: Path, *, check_hashes: bool = True) -> list[str]:
        """Return every defect of the archive at ``path``, one line each; empty when it is sound.

        Checks the zip, ``metadata.json``, the database's structure and rows (schema, references, link rules), the
        repository keys of every node, and, with ``check_hashes``, the content of every member (sizes, CRC,
        decompression bombs, sha256 names). Nothing is written but the database's copy in the cache, kept only
        when the archive is sound (see :mod:`provstore_sqlite_zip.verify`).
        """
        from provstore_sqlite_zip.verify import verify_archive  # noqa: PLC0415

        return verify_archive(Path(path), check_hashes=check_hashes)

    @classmethod
    def migrate(
        cls,
        source: Path,
        destination: Path,
        *,
        force: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Write the archive at ``source`` (main_0000, 1.0) as a new main_0001 file at ``destination``.

        Rows lacking what main_0001 requires get aiida-core's defaults (or are dropped where aiida-core drops them);
        the file is written beside ``destination`` and moved into place when complete. A main_0001 archive is
        copied unchanged. ``source`` is never written.

        :raises ArchiveError: if ``source`` is not a readable archive.
        :raises ArchiveExportError: if ``destination`` exists and ``force`` is false, or is ``source``.
        """
        from provstore_sqlite_zip.migrate import migrate_archive  # noqa: PLC0415 - SQLAlchemy only when migrating

        migrate_archive(source, destination, force=force, progress=progress)

    @classmethod
    def open(cls, path: Path) -> StorageBackend:
        """Return the archive at ``path`` open as a read-only ``sqlite_zip`` storage, its database cached.

        :raises ArchiveError: naming the defect of a file that is not a readable archive.
        """
        from provstore.config import Profile  # noqa: PLC0415
        from provstore_sqlite_zip.backend import SqliteZipStorageBackend  # noqa: PLC0415

        path = Path(path).expanduser().absolute()
        open_archive_zip(path)  # NOTE: refuses a missing or malformed file before a profile is made
        config = SqliteZipStorageBackend.validate_config({'filepath': str(path)}, f'archive {path}')
        profile = Profile(name='archive', storage_backend=FORMAT_NAME, storage_config=config, folder=path.parent)
        return SqliteZipStorageBackend(profile)
