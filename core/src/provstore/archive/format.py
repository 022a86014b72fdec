"""The interface every archive format implements, and the narrow protocol of reading an archive.

An archive format is a class of class methods (it holds no state): which versions it writes and reads, the version
of a file read from its metadata alone, and :meth:`ArchiveFormat.open`, which gives the archive as a read-only
:class:`~provstore.storage.StorageBackend`, so that every query of the ORM works on it in place.

:class:`ArchiveReader` is what creating and importing archives, written once in the core over any format, read:
the metadata, the rows of each entity kind streamed in batches, and the objects of the repository streamed.
:class:`ArchiveWriter` is the same three parts for writing, used by :func:`~provstore.archive.create.create_archive`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from provstore.storage import EntityType, Row, StorageBackend

__all__ = ['ArchiveFormat', 'ArchiveMetadata', 'ArchiveReader', 'ArchiveWriter', 'StorageArchiveReader']


@dataclass(frozen=True)
class ArchiveMetadata:
    """What an archive says about itself, read without touching its database or objects."""

    format: str
    """The name of the archive format."""
    version: str
    """The format version of the file."""
    key_format: str
    """How the keys of its objects are made (``'sha256'``)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The format's own metadata, JSON-serialisable (for ``.aiida`` files: ``metadata.json`` as it is)."""


@runtime_checkable
class ArchiveReader(Protocol):
    """An archive open for reading: metadata, rows per entity kind and object streams, all streamed."""

    @property
    def metadata(self) -> ArchiveMetadata:
        """The archive's metadata."""

    def count_rows(self, entity: EntityType) -> int:
        """Return the number of rows of ``entity`` in the archive."""

    def iter_rows(self, entity: EntityType, batch_size: int = 1000) -> Iterator[Row]:
        """Yield the rows of ``entity`` by ascending id, in :mod:`text form <provstore.storage.textrows>` (JSON
        text, UTC time text), read ``batch_size`` at a time."""

    def get_rows(self, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        """Return every row of ``entity`` whose ``column`` is one of ``values`` (in no particular order)."""

    def iter_object_streams(self, keys: Iterable[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(key, stream)`` for each distinct key; a stream is valid until the next item is requested.

        :raises FileNotFoundError: naming every key the archive lacks, before anything is yielded.
        """

    def close(self) -> None:
        """Release the files the reader holds. Idempotent."""


@runtime_checkable
class ArchiveWriter(Protocol):
    """An archive being written: rows (in batches) and objects, then the metadata, then :meth:`finish`.

    Objects may be written from another thread while rows are (one thread for each), before or after the metadata.
    Nothing appears under the final name until :meth:`finish`; :meth:`abort` removes every file written so far.
    """

    def write_rows(self, entity: EntityType, rows: Sequence[Row]) -> None:
        """Add a batch of rows of ``entity`` in :mod:`text form <provstore.storage.textrows>`, ``id`` included."""

    def write_metadata(self, details: Mapping[str, Any]) -> None:
        """Close the rows and record ``details`` (JSON-serialisable) in the metadata; called once, after the rows."""

    def write_object(self, key: str, stream: BinaryIO) -> int:
        """Copy the object ``key`` from ``stream`` in chunks and return the number of bytes read."""

    def finish(self) -> None:
        """Complete the archive and move it into place under its final name."""

    def abort(self) -> None:
        """Remove what was written; nothing is left under the final name or beside it. Idempotent."""


class ArchiveFormat(abc.ABC):
    """A single-file format that holds a whole or partial provenance graph with its files.

    Archives are untrusted input: every method that reads a file refuses a malformed one with a
    :class:`~provstore.exceptions.ArchiveError` whose one-line message names the defect.
    """

    name: ClassVar[str]
    """The name users select this format by, unique across installed plugins."""

    @classmethod
    @abc.abstractmethod
    def version_head(cls) -> str:
        """The version this format writes."""

    @classmethod
    @abc.abstractmethod
    def versions_readable(cls) -> tuple[str, ...]:
        """The versions :meth:`open` reads in place, :meth:`version_head` among them."""

    @classmethod
    @abc.abstractmethod
    def read_metadata(cls, path: Path) -> ArchiveMetadata:
        """Return the metadata of the archive at ``path``, read from its metadata alone.

        :raises provstore.exceptions.ArchiveError: if the file is not an archive of this format, or its metadata
            is malformed, or its version is not one this code knows.
        """

    @classmethod
    def read_version(cls, path: Path) -> str:
        """Return the format version of the archive at ``path``, from its metadata alone.

        :raises provstore.exceptions.ArchiveError: as :meth:`read_metadata`.
        """
        return cls.read_metadata(path).version

    @classmethod
    @abc.abstractmethod
    def open(cls, path: Path) -> StorageBackend:
        """Return the archive at ``path`` open as a read-only storage (close it when done).

        :raises provstore.exceptions.ArchiveError: if the file is not a readable archive of this format.
        """

    @classmethod
    def open_writer(cls, path: Path, *, compression: int = 6, force: bool = False) -> ArchiveWriter:
        """Return a writer of a new archive at ``path`` (``compression`` 0, stored, to 9).

        :raises ArchiveExportError: if ``path`` exists and ``force`` is false.
        :raises NotImplementedError: if the format only reads (the default).
        """
        raise NotImplementedError(f'the archive format {cls.name!r} does not write archives')

    @classmethod
    def verify(cls, path: Path, *, check_hashes: bool = True) -> list[str]:
        """Return every defect found in the archive at ``path``, one line each; empty when it is sound.

        Checks what :meth:`read_metadata` and :meth:`open` check, then the rows (schema and link rules) and the
        objects (present, and, with ``check_hashes``, hashing to their key), without writing anything.
        The default only checks that the archive opens; formats override it.
        """
        from provstore.exceptions import ArchiveError  # noqa: PLC0415

        try:
            cls.open(path).close()
        except ArchiveError as exc:
            return [str(exc)]
        return []

    @classmethod
    def migrate(
        cls,
        source: Path,
        destination: Path,
        *,
        force: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Write the archive at ``source`` as a new file at ``destination`` of :meth:`version_head`; ``source`` is
        never changed.

        :param progress: called as ``progress(stage, done, total)``, as by
            :func:`~provstore.archive.create.create_archive`.

        :raises ArchiveError: if ``source`` is not a readable archive of this format.
        :raises ArchiveExportError: if ``destination`` exists and ``force`` is false.
        :raises NotImplementedError: if the format has no migrations (the default).
        """
        raise NotImplementedError(f'the archive format {cls.name!r} does not migrate archives')

    @classmethod
    def open_reader(cls, path: Path) -> ArchiveReader:
        """Return a reader of the archive at ``path``: by default its :meth:`open` storage, read row by row."""
        return StorageArchiveReader(cls.read_metadata(path), cls.open(path))


class StorageArchiveReader:
    """An :class:`ArchiveReader` over a storage that is also an :class:`~provstore.storage.EntityStorage`."""

    def __init__(self, metadata: ArchiveMetadata, storage: StorageBackend) -> None:
        """:raises TypeError: if ``storage`` cannot give rows (it is not an ``EntityStorage``)."""
        from provstore.storage import EntityStorage  # noqa: PLC0415 - the storage layer, only when a reader is made

        if not isinstance(storage, EntityStorage):
            storage.close()
            raise TypeError(f'{type(storage).__name__} is not an EntityStorage: it cannot give the rows of an archive')
        self._metadata = metadata
        self._storage = storage
        self._entities: EntityStorage = storage

    @property
    def metadata(self) -> ArchiveMetadata:
        """The archive's metadata."""
        return self._metadata

    def count_rows(self, entity: EntityType) -> int:
        """Return the number of rows of ``entity``."""
        return self._entities.count_rows(entity)

    def iter_rows(self, entity: EntityType, batch_size: int = 1000) -> Iterator[Row]:
        """Yield the rows of ``entity`` in text form, ``batch_size`` at a time."""
        return self._entities.iter_text_rows(entity, batch_size)

    def get_rows(self, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        """Return the rows of ``entity`` whose ``column`` is one of ``values``."""
        return self._entities.get_rows(entity, column, values)

    def iter_object_streams(self, keys: Iterable[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(key, stream)`` from the archive's repository."""
        return self._entities.get_repository().iter_object_streams(keys)

    def close(self) -> None:
        """Close the storage."""
        self._storage.close()
