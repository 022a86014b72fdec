"""The ``sandbox`` repository backend: a flat folder of objects named by random keys."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, ClassVar

from provstore.repository import CHUNK_SIZE, AbstractRepositoryBackend, MaintenanceReport

__all__ = ['SandboxRepositoryBackend']

_KEY_PATTERN = re.compile(r'[0-9a-f]{32}')
"""A key is the hex form of a uuid4; anything else (``..``, ``/etc/passwd``, ...) is never a key."""

_PARTIAL_SUFFIX = '.part'
"""Suffix of the hidden file an object is written to before it is renamed to its key."""


def _is_key(key: object) -> bool:
    return isinstance(key, str) and _KEY_PATTERN.fullmatch(key) is not None


class SandboxRepositoryBackend(AbstractRepositoryBackend):
    """A throw-away folder of objects with random keys, for nodes not stored yet.

    Keys are random uuid4 hex strings; the same content stored twice gets two keys. Objects are written to a
    hidden temporary file in the same folder and renamed into place, so a reader never sees a partial object.

    :param filepath: the folder to use, created by :meth:`initialise` and removed only by :meth:`erase`.
        When ``None``, a fresh temporary folder is created and owned by the instance: it is removed by
        :meth:`erase` or as soon as the instance is garbage-collected.
    """

    name: ClassVar[str] = 'sandbox'

    def __init__(self, filepath: str | os.PathLike[str] | None = None) -> None:
        self._owned = filepath is None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if filepath is None:
            self._filepath = self._make_owned_folder()
        else:
            self._filepath = os.path.abspath(os.fspath(filepath))

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self._filepath!r})'

    def _make_owned_folder(self) -> str:
        filepath = tempfile.mkdtemp(prefix='provstore-sandbox-')
        # NOTE: ``weakref.finalize`` rather than ``__del__``: it also runs at interpreter exit and never
        # resurrects the instance.
        self._finalizer = weakref.finalize(self, shutil.rmtree, filepath, ignore_errors=True)
        return filepath

    @property
    def filepath(self) -> str:
        """The absolute path of the folder holding the objects."""
        return self._filepath

    # -- identity and lifecycle -------------------------------------------------------------------------------

    @property
    def uuid(self) -> None:
        """A sandbox has no identity of its own: always ``None``."""
        return None

    @property
    def key_format(self) -> str:
        """Keys are random: ``'uuid4'``."""
        return 'uuid4'

    def initialise(self, **kwargs: Any) -> None:
        """Create the folder if it does not exist; an owned folder removed by :meth:`erase` is made anew.

        Keyword arguments are accepted for compatibility with other backends and ignored.
        """
        if self._owned and (self._finalizer is None or not self._finalizer.alive):
            self._filepath = self._make_owned_folder()
        os.makedirs(self._filepath, exist_ok=True)

    @property
    def is_initialised(self) -> bool:
        """Whether the folder exists."""
        return os.path.isdir(self._filepath)

    def erase(self) -> None:
        """Remove the folder and every object in it."""
        if self._finalizer is not None and self._finalizer.alive:
            self._finalizer()
        else:
            shutil.rmtree(self._filepath, ignore_errors=True)

    # -- writing ----------------------------------------------------------------------------------------------

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        key = uuid.uuid4().hex
        partial = os.path.join(self._filepath, f'.{key}{_PARTIAL_SUFFIX}')
        try:
            with open(partial, 'xb') as sink:
                shutil.copyfileobj(handle, sink, CHUNK_SIZE)
            # NOTE: no fsync: a sandbox does not outlive a crash, and fsync would make every write ~100x slower.
            os.replace(partial, self._path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
            raise
        return key

    # -- reading ----------------------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return os.path.join(self._filepath, key)

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key in order, whether the object exists; a string that is not a key is missing."""
        return [_is_key(key) and os.path.isfile(self._path(key)) for key in keys]

    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of every object, skipping objects still being written."""
        with os.scandir(self._filepath) as entries:
            for entry in entries:
                if _is_key(entry.name) and entry.is_file(follow_symlinks=False):
                    yield entry.name

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the folder and the number of objects; with ``detailed``, also their total size in bytes."""
        count = 0
        size = 0
        with os.scandir(self._filepath) as entries:
            for entry in entries:
                if _is_key(entry.name) and entry.is_file(follow_symlinks=False):
                    count += 1
                    if detailed:
                        size += entry.stat(follow_symlinks=False).st_size
        info: dict[str, Any] = {'filepath': self._filepath, 'objects': count}
        if detailed:
            info['total_size_bytes'] = size
        return info

    def open(self, key: str) -> BinaryIO:
        """Open the object with ``key`` for reading; the returned file is its own context manager.

        :raises FileNotFoundError: if there is no object with ``key`` or ``key`` is not a sandbox key.
        """
        if not _is_key(key):
            raise self.missing_keys_error([key])
        try:
            return open(self._path(key), 'rb')
        except FileNotFoundError:
            raise self.missing_keys_error([key]) from None

    # -- deleting and maintenance -----------------------------------------------------------------------------

    def _delete_objects(self, keys: list[str]) -> None:
        for key in keys:
            # NOTE: an object deleted by another process since it was checked is gone either way.
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path(key))

    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        """Do nothing: loose files in one folder need no maintenance. Other keyword arguments are ignored."""
        return MaintenanceReport(dry_run=dry_run, live=live)
