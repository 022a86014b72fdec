"""The interface of a repository backend: a flat store of immutable byte objects addressed by keys."""

from __future__ import annotations

import abc
import hashlib
import inspect
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, TypeVar

from provstore.exceptions import ReadOnlyStorageError, RepositoryError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    'CHUNK_SIZE',
    'LOCATION_OPTION',
    'AbstractRepositoryBackend',
    'BackupTarget',
    'MaintenanceReport',
    'check_byte_stream',
    'sha256_of_stream',
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read at a time when streaming objects; no object is ever held whole in memory by the core."""

BackendT = TypeVar('BackendT', bound='AbstractRepositoryBackend')

LOCATION_OPTION = 'filepath'
"""The constructor parameter a storage backend fills in with where its repository lives (an absolute path)."""


class BackupTarget(Protocol):
    """Where a repository backend writes its files during a backup (:class:`provstore.storage.backup.BackupWriter`)."""

    def expect(self, files: int, size: int) -> None:
        """Add ``files`` files of ``size`` bytes to the totals the progress shows."""

    def copy_file(self, source: Path, path: str, missing_ok: bool = False) -> None:
        """Copy the file ``source`` (only added to, never rewritten) to ``path`` of the backup."""

    def copy_sqlite_database(self, source: Path, path: str) -> None:
        """Write a consistent copy of the SQLite database ``source`` to ``path`` of the backup."""


@dataclass(frozen=True)
class MaintenanceReport:
    """What a call of :meth:`AbstractRepositoryBackend.maintain` did, or would do when ``dry_run`` is set."""

    dry_run: bool
    live: bool
    steps: tuple[str, ...] = ()
    """One human-readable line per step, in the order they ran (or would run): an action in lower case ("pack 3
    loose objects"); on a dry run "would ..." is added when printed, so a step may also be written with it."""
    details: dict[str, Any] = field(default_factory=dict)
    """Backend-specific figures, JSON-serialisable (object counts before and after, bytes reclaimed...)."""


def check_byte_stream(handle: object) -> None:
    """Raise :class:`TypeError` unless ``handle`` is a readable stream of bytes.

    A text stream, a path, a ``bytes`` object or a stream opened for writing only are all refused.
    """
    if isinstance(handle, (bytes, bytearray, memoryview, str, os.PathLike)) or not hasattr(handle, 'read'):
        raise TypeError(f'expected a readable byte stream, got {type(handle).__name__}')
    if isinstance(handle, io.TextIOBase):
        raise TypeError(f'expected a byte stream, got the text stream {handle!r}')
    readable = getattr(handle, 'readable', None)
    if readable is not None and not readable():
        raise TypeError(f'expected a readable byte stream, got {handle!r}, which is not readable')
    mode = getattr(handle, 'mode', None)
    if isinstance(mode, str) and 'b' not in mode:
        raise TypeError(f'expected a byte stream, got {handle!r} opened in text mode {mode!r}')


def sha256_of_stream(handle: BinaryIO) -> str:
    """Return the hex sha256 digest of everything left in ``handle``, read in chunks."""
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


class AbstractRepositoryBackend(abc.ABC):
    """A flat store of immutable byte objects, each addressed by a key the backend chooses.

    Subclasses set ``name`` and implement the abstract methods. The public ``put_*``, ``open``, ``has_object``,
    ``get_object_content`` and ``delete_object`` methods validate their arguments here, once, and delegate to
    the abstract or overridable methods; backends should not repeat those checks.

    Every key returned by a ``put`` stays valid until the object is deleted. Content-addressed backends
    (``key_format == 'sha256'``) return the same key for the same content and store it once.

    Construction: a storage backend makes its profile's repository with the keyword arguments of the profile's
    repository options, and fills in one of them itself: ``filepath`` (:data:`LOCATION_OPTION`), an absolute path
    inside the profile's storage, when the constructor takes a parameter of that name and the options do not give it.
    The path does not exist yet: the backend decides whether it is a folder or a file and makes it in
    :meth:`initialise`. A location under any other name is never filled in (see :meth:`from_options`).

    Memory: objects are streamed in chunks (:data:`CHUNK_SIZE`), never held whole. The contract suite
    (:class:`provstore.testing.RepositoryBackendContract`) writes, reads and hashes a 64 MiB object and fails a
    backend whose Python allocations peak at 16 MiB or more while doing so.
    """

    name: ClassVar[str]
    """The name profiles use to select this backend, unique across installed plugins."""

    read_only: ClassVar[bool] = False
    """Whether this backend never changes its objects (the files of an archive read in place, for example).

    Then every ``put_*`` and ``delete_*`` call raises :class:`~provstore.exceptions.ReadOnlyStorageError` before
    reading its arguments; :meth:`initialise`, :meth:`erase` and :meth:`maintain` (unless a dry run) must refuse
    with :meth:`check_writable` too.
    """

    def check_writable(self) -> None:
        """Raise :class:`~provstore.exceptions.ReadOnlyStorageError` naming this backend if it is read-only."""
        if self.read_only:
            raise ReadOnlyStorageError(f'The repository {self!r} ({self.name}) is read-only')

    @classmethod
    def from_options(
        cls: type[BackendT], options: Mapping[str, Any], location: str | os.PathLike[str] | None = None
    ) -> BackendT:
        """Return the backend made from a profile's repository ``options``, at ``location`` unless they give one.

        ``location`` becomes the ``filepath`` argument when the constructor has a parameter of that name.

        :raises TypeError: in one line, naming the backend and the required parameters that nothing fills in; a
            required location under another name gets the advice to call it ``filepath``.
        """
        arguments = dict(options)
        parameters = inspect.signature(cls).parameters
        if location is not None and LOCATION_OPTION in parameters and LOCATION_OPTION not in arguments:
            arguments[LOCATION_OPTION] = os.fspath(location)
        missing = [
            name
            for name, parameter in parameters.items()
            if parameter.default is parameter.empty
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
            and name not in arguments
        ]
        if missing:
            advice = (
                f"; a storage backend fills in only {LOCATION_OPTION!r} (the repository's folder or file): name "
                f'the constructor parameter {LOCATION_OPTION!r}, or give {", ".join(missing)} in the repository options'
                if LOCATION_OPTION not in parameters
                else ' in the repository options'
            )
            raise TypeError(
                f'repository backend {cls.name!r} ({cls.__qualname__}) needs {", ".join(missing)}, which nothing '
                f'gives{advice}'
            )
        return cls(**arguments)

    # -- identity and lifecycle -------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def uuid(self) -> str | None:
        """A unique identifier of this repository instance, or ``None`` when the backend has none."""

    @property
    @abc.abstractmethod
    def key_format(self) -> str | None:
        """How keys are made: ``'sha256'`` for content addressing, ``'uuid4'`` for random keys, or ``None``."""

    @abc.abstractmethod
    def initialise(self, **kwargs: Any) -> None:
        """Create the repository's storage if it does not exist yet; do nothing when it already does."""

    @property
    @abc.abstractmethod
    def is_initialised(self) -> bool:
        """Whether :meth:`initialise` has created the storage."""

    @abc.abstractmethod
    def erase(self) -> None:
        """Delete the repository and every object in it. Irreversible."""

    def close(self) -> None:  # noqa: B027 - a hook with a sensible default, not an abstract method
        """Release connections and file handles; the backend reopens them if used again. Default: nothing."""

    # -- writing ----------------------------------------------------------------------------------------------

    def put_object_from_filelike(self, handle: BinaryIO) -> str:
        """Store everything left in ``handle`` as a new object.

        :param handle: a readable byte stream; it is read in chunks and not closed.
        :return: the key of the object.
        :raises TypeError: if ``handle`` is not a readable byte stream.
        :raises ReadOnlyStorageError: if the backend is read-only.
        """
        self.check_writable()
        check_byte_stream(handle)
        return self._put_object_from_filelike(handle)

    @abc.abstractmethod
    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        """Store the stream, which is known to be a readable byte stream, and return its key."""

    def put_object_from_file(self, filepath: str | os.PathLike[str]) -> str:
        """Store the content of the file at ``filepath`` and return its key.

        :raises FileNotFoundError: if there is no file at ``filepath``.
        """
        self.check_writable()
        with open(filepath, 'rb') as handle:
            return self._put_object_from_filelike(handle)

    def put_objects_from_filelikes(self, handles: Iterable[BinaryIO]) -> list[str]:
        """Store many streams at once and return their keys in the same order.

        Backends with a faster bulk path override :meth:`_put_objects_from_filelikes`, not this method.

        :raises TypeError: if any handle is not a readable byte stream; nothing is stored then.
        :raises ReadOnlyStorageError: if the backend is read-only.
        """
        self.check_writable()
        handles = list(handles)
        for handle in handles:
            check_byte_stream(handle)
        return self._put_objects_from_filelikes(handles) if handles else []

    def _put_objects_from_filelikes(self, handles: list[BinaryIO]) -> list[str]:
        """Store streams known to be readable byte streams (at least one); the default stores them one by one."""
        return [self._put_object_from_filelike(handle) for handle in handles]

    # -- reading ----------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key in order, whether the object exists."""

    def has_object(self, key: str) -> bool:
        """Return whether the object with ``key`` exists."""
        return self.has_objects([key])[0]

    @abc.abstractmethod
    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of every object, in no particular order, without building a list of them."""

    @abc.abstractmethod
    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return JSON-serialisable figures about the repository (object counts; sizes when ``detailed``)."""

    @abc.abstractmethod
    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the object with ``key`` for reading, as a byte stream (a context manager).

        :raises FileNotFoundError: if there is no object with ``key``.
        """

    def get_object_content(self, key: str) -> bytes:
        """Return the whole content of the object with ``key``; prefer :meth:`open` for large objects.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        with self.open(key) as handle:
            return handle.read()

    def get_object_sizes(self, keys: Sequence[str]) -> list[int]:
        """Return, for each key in order, the size in bytes of the object's content.

        The default reads every object; a backend that records sizes overrides it to read none.

        :raises FileNotFoundError: naming every missing key.
        """
        unique = list(dict.fromkeys(keys))
        sizes: dict[str, int] = {}
        for key, stream in self.iter_object_streams(unique):
            size = 0
            while chunk := stream.read(1 << 20):
                size += len(chunk)
            sizes[key] = size
        return [sizes[key] for key in keys]

    def iter_object_streams(self, keys: Iterable[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(key, stream)`` once for each distinct key, in whatever order the backend reads fastest.

        Each stream is valid only until the next item is requested. Every key is checked when this method is
        called, before the iterator is returned.

        :raises FileNotFoundError: naming every missing key.
        """
        unique = list(dict.fromkeys(keys))
        missing = [key for key, exists in zip(unique, self.has_objects(unique), strict=True) if not exists]
        if missing:
            raise self.missing_keys_error(missing)
        return self._iter_object_streams(unique)

    def _iter_object_streams(self, keys: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(key, stream)`` for keys known to exist, without duplicates. Default: one :meth:`open` each."""
        for key in keys:
            with self.open(key) as handle:
                yield key, handle

    def get_object_hash(self, key: str) -> str:
        """Return the sha256 hex digest of the object's content, whatever the backend's key format.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        if self.key_format == 'sha256':
            if not self.has_object(key):
                raise self.missing_keys_error([key])
            return key
        with self.open(key) as handle:
            return sha256_of_stream(handle)

    # -- deleting and maintenance -----------------------------------------------------------------------------

    def delete_objects(self, keys: Sequence[str]) -> None:
        """Delete the objects with the given keys, all or none.

        :raises FileNotFoundError: naming every missing key; nothing is deleted then.
        """
        self.check_writable()
        keys = list(dict.fromkeys(keys))
        missing = [key for key, exists in zip(keys, self.has_objects(keys), strict=True) if not exists]
        if missing:
            raise FileNotFoundError(f'{self.missing_keys_error(missing)}; nothing deleted')
        self._delete_objects(keys)

    @abc.abstractmethod
    def _delete_objects(self, keys: list[str]) -> None:
        """Delete objects whose keys are known to exist, without duplicates."""

    def delete_object(self, key: str) -> None:
        """Delete the object with ``key``.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        self.delete_objects([key])

    @abc.abstractmethod
    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        """Optimise the repository's storage.

        :param dry_run: report what would be done and change nothing.
        :param live: do only what is safe while other processes read and write; ``False`` does the full work
            and requires that nobody else uses the repository.
        """

    def backup(self, writer: BackupTarget, prefix: str) -> None:
        """Copy every object into the backup through ``writer``, as files under ``prefix``, while others may write.

        Objects added after the copy starts may or may not be in it; every object present when it starts is.

        :raises RepositoryError: if this backend cannot be backed up.
        """
        raise RepositoryError(f'Repository backend {self.name!r} cannot be backed up')

    def restore_backup(self, folder: Path) -> None:
        """Make this (not yet initialised) repository from the files :meth:`backup` wrote under ``folder``.

        :raises RepositoryError: if this backend cannot restore backups, or the repository exists.
        """
        raise RepositoryError(f'Repository backend {self.name!r} cannot restore backups')

    def missing_keys_error(self, missing: Iterable[str]) -> FileNotFoundError:
        """Return the error for keys that are not in this repository, naming every one of them."""
        missing = sorted(missing)
        keys = 'object with key' if len(missing) == 1 else 'objects with keys'
        return FileNotFoundError(f'No {keys} {", ".join(missing)} in repository {self.name!r}')
