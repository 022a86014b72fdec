"""Where the files of an unstored node wait to be stored: small ones in memory, the others on disk.

Writing a file of a few kilobytes into a folder of its own costs about half a millisecond (creating, renaming), and
the folder another few milliseconds to make and remove: most of what storing a node with a few files costs. So a
:class:`NodeSandbox` keeps objects of up to :data:`MEMORY_OBJECT_SIZE` bytes in memory, as long as all the objects
kept so by the process stay within :data:`MEMORY_BUDGET`; any other object goes to a ``sandbox`` repository backend
(a temporary folder, found through the plugin registry) made when the first such object comes. Memory use stays
bounded however many unstored nodes there are.
"""

from __future__ import annotations

import io
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, ClassVar, cast

from provstore.registry import get_repository_backend
from provstore.repository import AbstractRepositoryBackend, MaintenanceReport

__all__ = ['MEMORY_BUDGET', 'MEMORY_OBJECT_SIZE', 'SANDBOX_BACKEND', 'NodeSandbox']

SANDBOX_BACKEND = 'sandbox'
"""The name of the repository backend that holds the files of unstored nodes that are not kept in memory."""

MEMORY_OBJECT_SIZE = 1024 * 1024
"""Objects of unstored nodes up to this many bytes are kept in memory (within :data:`MEMORY_BUDGET`)."""

MEMORY_BUDGET = 256 * 1024 * 1024
"""The most bytes the objects kept in memory by all the sandboxes of a process may take together."""


class _Budget:
    """The bytes of memory the sandboxes of this process use, shared by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.used = 0

    def take(self, size: int) -> bool:
        """Take ``size`` bytes if they fit in :data:`MEMORY_BUDGET`; return whether they were taken."""
        with self._lock:
            if self.used + size > MEMORY_BUDGET:
                return False
            self.used += size
            return True

    def give_back(self, size: int) -> None:
        """Give back ``size`` bytes taken before."""
        with self._lock:
            self.used -= size


BUDGET = _Budget()


def _release(held: list[int]) -> None:
    """Give back the bytes a sandbox holds (``held[0]``): when it is erased or garbage-collected."""
    BUDGET.give_back(held[0])
    held[0] = 0


class _Prefixed(io.RawIOBase):
    """A byte stream of ``prefix`` followed by what is left in ``rest``."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast('B')
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_up_to(handle: BinaryIO, size: int) -> bytes:
    """Read from ``handle`` until ``size`` bytes or its end, whichever comes first."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = handle.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b''.join(parts)


class NodeSandbox(AbstractRepositoryBackend):
    """The objects of one unstored node: small ones in memory, the rest in a ``sandbox`` backend made on demand.

    Keys are random (uuid4 hex), as a ``sandbox``'s. The memory is given back when the sandbox is erased (the node
    was stored) or garbage-collected; the ``sandbox`` folder, if one was made, is removed then too.
    """

    name: ClassVar[str] = SANDBOX_BACKEND

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._disk: AbstractRepositoryBackend | None = None
        self._initialised = True
        self._held = [0]
        weakref.finalize(self, _release, self._held)

    def __repr__(self) -> str:
        return f'<NodeSandbox: {len(self._objects)} object(s) in memory, on disk: {self._disk!r}>'

    @property
    def disk(self) -> AbstractRepositoryBackend | None:
        """The ``sandbox`` backend holding the objects not kept in memory, if there is one yet."""
        return self._disk

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
        """Make the sandbox usable again after :meth:`erase`; keyword arguments are ignored."""
        self._initialised = True

    @property
    def is_initialised(self) -> bool:
        """Whether the sandbox is usable (it is, until erased)."""
        return self._initialised

    def erase(self) -> None:
        """Drop every object: give back the memory and remove the ``sandbox`` folder, if any."""
        self._objects.clear()
        _release(self._held)
        if self._disk is not None:
            self._disk.erase()
            self._disk = None
        self._initialised = False

    # -- writing ----------------------------------------------------------------------------------------------

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        head = _read_up_to(handle, MEMORY_OBJECT_SIZE + 1)
        if len(head) <= MEMORY_OBJECT_SIZE and BUDGET.take(len(head)):
            key = uuid.uuid4().hex
            self._objects[key] = head
            self._held[0] += len(head)
            return key
        if self._disk is None:
            disk = get_repository_backend(SANDBOX_BACKEND)()
            disk.initialise()
            self._disk = disk
        return self._disk.put_object_from_filelike(cast(BinaryIO, _Prefixed(head, handle)))

    # -- reading ----------------------------------------------------------------------------------------------

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key in order, whether the object exists."""
        found = [isinstance(key, str) and key in self._objects for key in keys]
        if self._disk is not None:
            rest = [index for index, exists in enumerate(found) if not exists]
            for index, exists in zip(rest, self._disk.has_objects([keys[index] for index in rest]), strict=True):
                found[index] = exists
        return found

    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of every object, in memory and on disk."""
        yield from list(self._objects)
        if self._disk is not None:
            yield from self._disk.list_objects()

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the number of objects (in memory and on disk); with ``detailed``, the bytes in memory too."""
        info: dict[str, Any] = {'objects': len(self._objects), 'in_memory': len(self._objects), 'on_disk': None}
        if self._disk is not None:
            disk = self._disk.get_info(detailed)
            info['on_disk'] = disk
            info['objects'] += disk.get('objects', 0)
        if detailed:
            info['memory_bytes'] = self._held[0]
        return info

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Open the object with ``key`` for reading.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        content = self._objects.get(key) if isinstance(key, str) else None
        if content is not None:
            yield io.BytesIO(content)
            return
        if self._disk is None or not self._disk.has_object(key):
            raise self.missing_keys_error([key])
        with self._disk.open(key) as handle:
            yield handle

    # -- deleting and maintenance -----------------------------------------------------------------------------

    def _delete_objects(self, keys: list[str]) -> None:
        on_disk = []
        for key in keys:
            content = self._objects.pop(key, None)
            if content is None:
                on_disk.append(key)
            else:
                BUDGET.give_back(len(content))
                self._held[0] -= len(content)
        if on_disk and self._disk is not None:
            self._disk.delete_objects(on_disk)

    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        """Do nothing: a sandbox needs no maintenance. Other keyword arguments are ignored."""
        return MaintenanceReport(dry_run=dry_run, live=live)
