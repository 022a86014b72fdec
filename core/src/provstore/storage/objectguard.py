"""The lock that keeps live maintenance from deleting an object a writer is about to refer to.

A writer writes (or finds already stored) the objects of its nodes first and commits the rows that refer to them
afterwards; in between, an object is in the repository and referenced by nothing committed. Live maintenance must
not delete it then. The protocol:

- every writer holds the profile's object guard *shared* from before it writes or looks for its objects until the
  rows that refer to them are committed (:meth:`EntityStorage.object_writes`, and every outermost write transaction
  of the backends that keep file references);
- maintenance lists the unreferenced objects without the guard (the slow part), then takes the guard *exclusively*
  (no writer is between its objects and its commit, and none can start), lists the referenced keys again, and
  deletes only the objects that are still unreferenced. When writers keep it from the guard for ``timeout`` seconds,
  it deletes nothing this time and says so.

The guard is an ``flock`` on ``objects.lock`` in the profile's folder: the kernel drops it when a process dies, even
by ``SIGKILL``, so a dead writer never blocks maintenance. It works between processes of one machine (and of several
only on a filesystem whose ``flock`` spans machines).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

__all__ = ['LOCK_NAME', 'ObjectGuard']

LOCK_NAME = 'objects.lock'
_POLL = 0.01


class ObjectGuard:
    """The object guard of one profile folder, one per process (threads share its shared hold)."""

    _guards: ClassVar[dict[Path, ObjectGuard]] = {}
    _guards_lock = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._lock = threading.Lock()
        self._holders = 0
        self._descriptor: int | None = None

    @classmethod
    def for_folder(cls, folder: str | os.PathLike[str]) -> ObjectGuard:
        """Return this process's guard of the profile folder ``folder``."""
        key = Path(folder).resolve()
        with cls._guards_lock:
            guard = cls._guards.get(key)
            if guard is None:
                guard = cls._guards[key] = cls(key)
            return guard

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the guard shared for the block (waiting while maintenance holds it exclusively); re-entrant."""
        with self._lock:
            if self._holders == 0:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_SH)
                except BaseException:
                    os.close(descriptor)
                    raise
                self._descriptor = descriptor
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._descriptor is not None:
                    os.close(self._descriptor)  # NOTE: closing the descriptor releases the flock
                    self._descriptor = None

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Try to hold the guard exclusively for up to ``timeout`` seconds; yield whether it is held."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(_POLL)
                    continue
                yield True
                return
        finally:
            os.close(descriptor)

    def _forget_after_fork(self) -> None:
        # NOTE: a child shares the parent's open file description, hence its lock: it must not release it
        self._lock = threading.Lock()
        self._holders = 0
        self._descriptor = None


def _after_fork_in_child() -> None:
    for guard in ObjectGuard._guards.values():
        guard._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
