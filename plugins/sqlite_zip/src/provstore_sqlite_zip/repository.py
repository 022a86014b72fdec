"""The repository of an archive read in place: the zip's ``repo/<sha256>`` members, streamed, never extracted."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from provstore.repository import AbstractRepositoryBackend, MaintenanceReport
from provstore_sqlite_zip.members import MemberStream
from provstore_sqlite_zip.zipped import ArchiveZip, open_archive_zip

__all__ = ['ZipRepositoryBackend']


class ZipRepositoryBackend(AbstractRepositoryBackend):
    """The objects of an ``.aiida`` archive, read in place from its zip; every write is refused."""

    name: ClassVar[str] = 'sqlite_zip'
    read_only: ClassVar[bool] = True

    def __init__(self, filepath: str) -> None:
        """:param filepath: the archive file; it is opened (and checked) on first use."""
        self._path = Path(filepath)
        self._lock = threading.Lock()
        self._archive: ArchiveZip | None = None

    def __repr__(self) -> str:
        return f'<{type(self).__name__} of {self._path}>'

    def _opened(self) -> ArchiveZip:
        """Return the zip's members, checking it on first use.

        :raises ArchiveError: if the file is not a readable archive.
        """
        with self._lock:
            if self._archive is None:
                self._archive = open_archive_zip(self._path)
            return self._archive

    @property
    def uuid(self) -> str | None:
        """``None``: an archive's repository has no identity of its own."""
        return None

    @property
    def key_format(self) -> str | None:
        """``'sha256'``: members are named by the sha256 of their content."""
        return 'sha256'

    def initialise(self, **kwargs: Any) -> None:
        """Nothing to do when the archive exists; a read-only backend cannot create one."""
        if not self.is_initialised:
            self.check_writable()

    @property
    def is_initialised(self) -> bool:
        """Whether the archive file exists."""
        return self._path.is_file()

    def erase(self) -> None:
        """Refused: the archive is never written or deleted through its repository."""
        self.check_writable()

    def close(self) -> None:
        """Forget the zip's members; they are read again on next use."""
        with self._lock:
            self._archive = None

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        self.check_writable()
        raise AssertionError('unreachable: the backend is read-only')  # pragma: no cover

    def _delete_objects(self, keys: list[str]) -> None:
        self.check_writable()

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key, whether the archive has the member ``repo/<key>``."""
        objects = self._opened().objects
        return [key in objects for key in keys]

    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of the archive's repository members."""
        return iter(self._opened().objects)

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the archive's path and number of objects; with ``detailed``, their bytes (stored and compressed)."""
        objects = self._opened().objects
        info: dict[str, Any] = {'filepath': str(self._path), 'objects': len(objects)}
        if detailed:
            info['size_bytes'], info['compressed_bytes'] = objects.totals()
        return info

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the member ``repo/<key>`` as a stream that checks its size and CRC as it is read
        (:class:`~provstore_sqlite_zip.members.MemberStream`): a member holding more than it declares is refused.

        :raises FileNotFoundError: if the archive has no such member.
        :raises ArchiveError: when reading a corrupt member, naming the defect.
        """
        archive = self._opened()
        member = archive.objects.get(key)
        if member is None:
            raise self.missing_keys_error([key])
        return MemberStream(self._path, member)  # type: ignore[return-value]

    def _iter_object_streams(self, keys: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Yield the members in the order of the file, read through one open file."""
        objects = self._opened().objects
        members = sorted(((objects[key], key) for key in keys), key=lambda item: item[0].offset)
        with open(self._path, 'rb') as raw:
            for member, key in members:
                with MemberStream(self._path, member, raw) as stream:
                    yield key, stream  # type: ignore[misc]

    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        """Nothing to do on a dry run; refused otherwise."""
        if not dry_run:
            self.check_writable()
        return MaintenanceReport(dry_run=dry_run, live=live, steps=(), details={})
