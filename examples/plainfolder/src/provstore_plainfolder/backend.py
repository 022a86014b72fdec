"""The ``example.plainfolder`` repository backend: objects as plain files named by their sha256.

Layout of the repository folder::

    <folder>/uuid                   the repository's uuid4, written once by initialise()
    <folder>/objects/<ab>/<cdef…>   one file per object: its sha256 split after the first two hex characters
    <folder>/tmp/                   writes in progress (same filesystem as objects/, so the final link is atomic)

Everything under ``objects/`` is the plain content of an object, so the folder can be browsed, copied and
rsynced with ordinary tools (exclude ``tmp/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, ClassVar
from uuid import uuid4

from provstore.exceptions import RepositoryError
from provstore.repository import CHUNK_SIZE, AbstractRepositoryBackend, MaintenanceReport

__all__ = ['PlainFolderRepositoryBackend']

_KEY = re.compile(r'[0-9a-f]{64}')
_PREFIX = re.compile(r'[0-9a-f]{2}')
_TEMP_PREFIX = 'put-'


class PlainFolderRepositoryBackend(AbstractRepositoryBackend):
    """Objects as plain files named by their sha256, in one folder you can browse and rsync.

    Writes are atomic and safe for many concurrent writers, across processes: an object is streamed into a
    temporary file while it is hashed, synced to disk, then hard-linked into place. Two writers of the same
    content both end up with the same, complete object.

    :param filepath: the repository folder; it is created by :meth:`initialise`.
    """

    name: ClassVar[str] = 'example.plainfolder'

    stale_after_seconds: ClassVar[float] = 3600.0
    """Age after which a temporary file counts as left over by a crashed writer, for :meth:`maintain`."""

    def __init__(self, filepath: str) -> None:
        path = os.fspath(filepath)
        if not path:
            raise ValueError(f'filepath must be a non-empty path to a folder, got {filepath!r}')
        self._folder = os.path.abspath(path)
        self._objects = os.path.join(self._folder, 'objects')
        self._tmp = os.path.join(self._folder, 'tmp')
        self._uuid_file = os.path.join(self._folder, 'uuid')

    def __repr__(self) -> str:
        return f'{type(self).__name__}(filepath={self._folder!r})'

    @property
    def folder(self) -> str:
        """The absolute path of the repository folder."""
        return self._folder

    # -- identity and lifecycle -------------------------------------------------------------------------------

    @property
    def uuid(self) -> str | None:
        """The uuid written in ``<folder>/uuid`` by :meth:`initialise`, or ``None`` before that."""
        try:
            with open(self._uuid_file, encoding='ascii') as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return None

    @property
    def key_format(self) -> str:
        """Always ``'sha256'``: keys are the sha256 hex digest of the content."""
        return 'sha256'

    def initialise(self, **kwargs: Any) -> None:
        """Create the repository folder and its uuid; do nothing if the repository already exists.

        :raises TypeError: if given any option; this backend has none.
        :raises RepositoryError: if the folder exists and holds anything that is not a repository of this kind.
        """
        if kwargs:
            raise TypeError(f'{self.name} initialise() takes no options, got {", ".join(sorted(kwargs))}')
        if self.is_initialised:
            return
        if os.path.isdir(self._folder):
            foreign = sorted(set(os.listdir(self._folder)) - {'objects', 'tmp'})
            if foreign:
                raise RepositoryError(
                    f'Cannot initialise a repository in {self._folder}: the folder is not empty '
                    f'(found {", ".join(foreign[:5])})'
                )
        os.makedirs(self._objects, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)
        # NOTE: the uuid file is written last and linked into place, so it exists only once the folder is
        # complete, and concurrent initialisers agree on one uuid (the first link wins, the others keep it).
        self._write_and_link(io.BytesIO(f'{uuid4()}\n'.encode('ascii')), target=self._uuid_file)

    @property
    def is_initialised(self) -> bool:
        """Whether ``<folder>/uuid`` exists."""
        return os.path.isfile(self._uuid_file)

    def erase(self) -> None:
        """Delete the repository: its uuid, its objects and its temporary files, then the folder if empty.

        Files in the folder that this backend did not create are left alone.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._uuid_file)
        for folder in (self._objects, self._tmp):
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(folder)
        with contextlib.suppress(OSError):
            os.rmdir(self._folder)

    # -- writing ----------------------------------------------------------------------------------------------

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        """Stream ``handle`` to a temporary file while hashing it, then link the file into place."""
        if not self.is_initialised:
            raise RepositoryError(f'Repository in {self._folder} is not initialised: call initialise() first')
        return self._write_and_link(handle)

    def _write_and_link(self, handle: BinaryIO, target: str | None = None) -> str:
        """Write ``handle`` to a new file called ``target``, atomically, and return the sha256 of its content.

        The content is streamed to a temporary file while it is hashed, synced to disk, and only then given its
        name. The temporary file is removed whatever happens.

        :param target: the final path; by default the object path of the content's sha256.
        """
        digest = hashlib.sha256()
        # NOTE: mkstemp creates the file readable by its owner only, and the object keeps that mode: a repository
        # is private to its user unless they choose otherwise (chmod), as the profile's config file is.
        descriptor, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self._tmp)
        try:
            with os.fdopen(descriptor, 'wb') as stream:
                while chunk := handle.read(CHUNK_SIZE):
                    digest.update(chunk)
                    stream.write(chunk)
                stream.flush()
                os.fsync(stream.fileno())
            key = digest.hexdigest()
            _link_into_place(temporary, self._path(key) if target is None else target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return key

    # -- reading ----------------------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        """Return the path of the object with ``key``, which must be a valid key."""
        return os.path.join(self._objects, key[:2], key[2:])

    @staticmethod
    def _is_valid_key(key: object) -> bool:
        """Whether ``key`` is 64 lowercase hex characters: anything else is never looked up on disk."""
        return isinstance(key, str) and _KEY.fullmatch(key) is not None

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key in order, whether the object exists; invalid keys do not."""
        return [self._is_valid_key(key) and os.path.isfile(self._path(key)) for key in keys]

    def _scan(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Yield ``(key, entry)`` for every object file, streaming the folder with :func:`os.scandir`."""
        try:
            prefixes = os.scandir(self._objects)
        except FileNotFoundError:
            return
        with prefixes:
            for prefix in prefixes:
                if not (_PREFIX.fullmatch(prefix.name) and prefix.is_dir(follow_symlinks=False)):
                    continue
                try:
                    entries = os.scandir(prefix.path)
                except FileNotFoundError:  # removed by a concurrent full maintenance
                    continue
                with entries:
                    for entry in entries:
                        key = prefix.name + entry.name
                        if _KEY.fullmatch(key) and entry.is_file():
                            yield key, entry

    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of every object, reading the folder as it goes."""
        for key, _ in self._scan():
            yield key

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the folder and the number of objects; with ``detailed``, also their total size in bytes.

        :param detailed: also stat every object and count the temporary files.
        """
        count = 0
        size = 0
        for _, entry in self._scan():
            count += 1
            if detailed:
                with contextlib.suppress(FileNotFoundError):
                    size += entry.stat().st_size
        info: dict[str, Any] = {'folder': self._folder, 'objects': count}
        if detailed:
            info['objects_size_bytes'] = size
            info['temporary_files'] = len(list(self._temporary_files()))
        return info

    def open(self, key: str) -> BinaryIO:
        """Open the object with ``key`` for reading; the file object is its own context manager.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        if not self._is_valid_key(key):
            raise self.missing_keys_error([key])
        try:
            return open(self._path(key), 'rb')
        except FileNotFoundError:
            raise self.missing_keys_error([key]) from None

    # -- deleting and maintenance -----------------------------------------------------------------------------

    def _delete_objects(self, keys: list[str]) -> None:
        """Unlink the object files; the prefix folders stay (see :meth:`maintain`)."""
        # NOTE: an empty prefix folder is not removed here: a concurrent writer may have just created it and be
        # about to link an object into it. Empty folders are removed by maintain(live=False) only.
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key))

    def _temporary_files(self) -> Iterator[os.DirEntry[str]]:
        try:
            entries = os.scandir(self._tmp)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    yield entry

    def _stale_temporary_files(self) -> list[tuple[str, int]]:
        """Return ``(path, size)`` of every temporary file not modified for :attr:`stale_after_seconds`."""
        cutoff = time.time() - self.stale_after_seconds
        stale = []
        for entry in self._temporary_files():
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat(follow_symlinks=False)
                if stat.st_mtime < cutoff:
                    stale.append((entry.path, stat.st_size))
        return stale

    def _empty_prefix_folders(self) -> list[str]:
        with os.scandir(self._objects) as prefixes:
            candidates = [entry.path for entry in prefixes if entry.is_dir(follow_symlinks=False)]
        return [path for path in candidates if not os.listdir(path)]

    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        """Remove what crashed writers and deletions left behind.

        With ``live=False`` (nobody else uses the repository): remove temporary files older than
        :attr:`stale_after_seconds` and empty prefix folders. With ``live=True`` nothing is removed, since a
        slow writer may still own an old temporary file; the report only counts them.

        :param dry_run: report what would be removed and remove nothing.
        :param live: whether other processes may be using the repository.
        :raises TypeError: if given any other option; this backend has none.
        """
        if kwargs:
            raise TypeError(f'{self.name} maintain() takes no other options, got {", ".join(sorted(kwargs))}')
        stale = self._stale_temporary_files() if self.is_initialised else []
        stale_bytes = sum(size for _, size in stale)
        details: dict[str, Any] = {
            'stale_temporary_files': len(stale),
            'stale_temporary_bytes': stale_bytes,
            'removed_temporary_files': 0,
            'removed_folders': 0,
        }
        if live:
            step = f'Found {len(stale)} stale temporary file(s); left in place, removed only with live=False'
            return MaintenanceReport(dry_run=dry_run, live=live, steps=(step,), details=details)

        empty = self._empty_prefix_folders() if self.is_initialised else []
        if dry_run:
            steps = (
                f'Would remove {len(stale)} stale temporary file(s) ({stale_bytes} bytes)',
                f'Would remove {len(empty)} empty object folder(s)',
            )
            return MaintenanceReport(dry_run=dry_run, live=live, steps=steps, details=details)

        for path, _ in stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                details['removed_temporary_files'] += 1
        for path in empty:
            with contextlib.suppress(OSError):
                os.rmdir(path)
                details['removed_folders'] += 1
        steps = (
            f'Removed {details["removed_temporary_files"]} stale temporary file(s) ({stale_bytes} bytes)',
            f'Removed {details["removed_folders"]} empty object folder(s)',
        )
        return MaintenanceReport(dry_run=dry_run, live=live, steps=steps, details=details)


def _link_into_place(source: str, target: str) -> None:
    """Give the complete file ``source`` the name ``target`` atomically, keeping ``target`` if it exists."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    try:
        # NOTE: a hard link never replaces an existing object, so its readers are never disturbed; if the name
        # exists, another writer stored the same content (same sha256) first, and that copy is kept.
        os.link(source, target)
    except FileExistsError:
        return
    except OSError:
        # Hard links are not supported by this filesystem: an atomic rename is the next best thing.
        if not os.path.exists(target):
            os.replace(source, target)
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Make a new name in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    if os.name != 'posix':
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
