"""Which processes use a profile: a shared or exclusive OS lock on ``<profile folder>/access.lock``.

Every process that opens a profile holds a *shared* lock on the profile's lock file
(:meth:`ProfileAccess.acquire_shared`). Full maintenance and migration take the *exclusive* lock
(:meth:`ProfileAccess.exclusive`), which is refused at once, with a message listing the other processes (pid and
command), unless it is granted within the given timeout.

The lock is an advisory :func:`fcntl.flock` lock, so the kernel drops it when the process ends, however it ends
(``SIGKILL``, out-of-memory kill, crash): there are no PID files, nothing goes stale and nothing needs cleaning up.
The lock file is created with owner-only permissions (``0600``), its folder with ``0700`` when missing, and it is never
deleted: deleting a lock file that others hold would let the next process lock a new file with the same name while the
old holders still lock the old one.

Scope:

- The lock belongs to the process (all its threads share it), through one :class:`ProfileAccess` per profile folder
  (:meth:`ProfileAccess.for_folder`), so a process never conflicts with itself.
- A child made by :func:`os.fork` does not share the parent's lock: it closes the inherited descriptor (releasing
  through it would drop the parent's lock too) and takes its own shared lock when the parent held one and nobody holds
  the profile exclusively. Children started with :mod:`subprocess` inherit nothing (the descriptor is close-on-exec)
  and take the lock themselves when they open the profile.
- POSIX only (Linux, macOS, BSD): :mod:`fcntl` does not exist on Windows.

Listing the holders: on Linux, without any PID file, from ``/proc/locks`` (the ``FLOCK`` entries on the lock file's
device and inode; the device is read from this process's own lock when it holds one, because ``stat`` reports another
device number on btrfs subvolumes) and ``/proc/<pid>/cmdline``. Processes in another PID namespace (another container)
show as pid 0 there: they are counted but not listed. Where ``/proc/locks`` does not exist (macOS, BSD) the holders are
unknown: :meth:`ProfileAccess.holders` returns an empty list and the error only says that another process uses the
profile.

Network filesystems:

- NFS (Linux >= 2.6.12): the client emulates ``flock`` with byte-range POSIX locks over the whole file, so the lock
  works between machines only when the NFS lock manager works (``lockd``/``statd`` for NFSv3, built into NFSv4);
  without it, locking fails with ``OSError: [Errno 37] No locks available``, and a mount with ``-o local_lock=flock``
  (or ``nolock``) makes the lock local to each machine. ``/proc/locks`` shows only the holders on this machine, so the
  listing of holders may be incomplete (or empty while the lock is refused).
- Some FUSE and SMB/CIFS mounts implement no locking at all: ``flock`` then succeeds silently and protects nothing.
- Hence: keep the profile folder (the configuration folder) on a local disk, even when the profile's data (database,
  repository) lives on shared storage.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from provstore.exceptions import ProfileLockedError

__all__ = ['LOCK_FILE_NAME', 'Holder', 'LockMode', 'ProfileAccess']

LOGGER = logging.getLogger(__name__)

LockMode = Literal['shared', 'exclusive']

LOCK_FILE_NAME = 'access.lock'
"""The name of the lock file inside a profile folder."""

_PROC_LOCKS = '/proc/locks'
_MAX_COMMAND_IN_MESSAGE = 200
_MAX_HOLDERS_IN_MESSAGE = 10
_FIRST_POLL_DELAY = 0.005
_MAX_POLL_DELAY = 0.1

_LockId = tuple[int, int, int]
"""A file as ``/proc/locks`` names it: device major, device minor, inode."""


@dataclass(frozen=True)
class Holder:
    """Another process that holds a profile's lock."""

    pid: int
    command: str
    """The process's command line, or ``'?'`` when unknown."""
    mode: LockMode


class ProfileAccess:
    """Which processes use a profile, through an flock on ``<folder>/access.lock``.

    Get instances from :meth:`for_folder`, never by calling the class: two instances for one folder in one process
    would lock against each other.
    """

    _instances: ClassVar[dict[Path, ProfileAccess]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    folder: Path
    """The profile folder, resolved (absolute, symlinks followed)."""
    mode: LockMode | None
    """What this process holds now."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mode = None
        self._lock_file = folder / LOCK_FILE_NAME
        self._fd: int | None = None
        self._mutex = threading.RLock()
        self._depth = 0  # how many exclusive() blocks are open in this process
        self._mode_before: LockMode | None = None  # what to go back to when the outermost block ends
        self._generation = 0  # bumped by release(), so that open blocks do not restore anything
        self._lock_ids: set[_LockId] = set()
        self._learned_lock_id = False

    @classmethod
    def for_folder(cls, folder: str | os.PathLike[str]) -> ProfileAccess:
        """Return this process's instance for a profile folder, the same one for every spelling of the folder.

        :param folder: the profile folder; created (``0700``) when a lock is first taken.
        :return: the instance, cached per resolved folder for the life of the process.
        """
        resolved = Path(folder).resolve()
        with cls._instances_lock:
            instance = cls._instances.get(resolved)
            if instance is None:
                instance = cls._instances[resolved] = cls(resolved)
            return instance

    def __repr__(self) -> str:
        return f'<ProfileAccess {str(self.folder)!r} mode={self.mode}>'

    def acquire_shared(self, timeout: float = 0.0) -> None:
        """Hold the profile shared, as every process that uses it does; nothing happens when this process holds it.

        :param timeout: seconds to wait while another process holds the profile exclusively.
        :raises ProfileLockedError: another process still holds the profile exclusively after ``timeout`` seconds.
        """
        _check_timeout(timeout)
        with self._mutex:
            if self.mode == 'exclusive':
                self._mode_before = 'shared'  # keep it when the exclusive block ends
            if self.mode is not None:
                return
            fd = self._open()
            try:
                self._poll(fd, exclusive=False, timeout=timeout, keep_shared=False)
            except BaseException:
                self._restore(None)
                raise
            self.mode = 'shared'
            self._learn_lock_id(fd)

    def release(self) -> None:
        """Drop whatever this process holds; nothing happens when it holds nothing.

        An :meth:`exclusive` block that is open at the time does not take anything back when it ends.
        """
        with self._mutex:
            self._generation += 1
            self._depth = 0
            self._mode_before = None
            self._restore(None)

    @contextmanager
    def exclusive(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the profile exclusively for the block, then go back to what this process held before (shared or none).

        Blocks nest, also across threads: the lock is the process's, and the last block to end gives it back.

        :param timeout: seconds to wait (polling) for the other processes to let go; 0 fails at once.
        :raises ProfileLockedError: other processes still hold the profile after ``timeout`` seconds; the message lists
            them (pid and command) where the platform can tell. This process keeps what it held.
        """
        _check_timeout(timeout)
        with self._mutex:
            if self.mode == 'exclusive':
                self._depth += 1
            else:
                before = self.mode
                fd = self._open()
                try:
                    self._poll(fd, exclusive=True, timeout=timeout, keep_shared=before == 'shared')
                except BaseException:
                    self._restore(before)
                    raise
                self.mode = 'exclusive'
                self._learn_lock_id(fd)
                self._depth = 1
                self._mode_before = before
            generation, pid = self._generation, os.getpid()
        try:
            yield
        finally:
            with self._mutex:
                # NOTE: after release() inside the block, or in a forked child, this block owns nothing any more.
                if generation == self._generation and pid == os.getpid():
                    self._depth -= 1
                    if self._depth == 0:
                        self._restore(self._mode_before)

    def holders(self) -> list[Holder]:
        """Return the other processes that hold the profile now, by pid; empty where the platform cannot tell.

        :return: one :class:`Holder` per process, this process excluded.
        """
        with self._mutex:
            return self._scan()[0]

    # Internals ---------------------------------------------------------------------------------------------------

    def _open(self) -> int:
        """Return the lock file's descriptor, creating the folder and the file when missing."""
        if self._fd is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # NOTE: read-write, because NFS emulates flock with POSIX locks and an exclusive one needs a writable file.
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, 'O_NOFOLLOW', 0)
            self._fd = os.open(self._lock_file, flags, 0o600)
            self._lock_ids.add(_lock_id(os.fstat(self._fd)))
        return self._fd

    def _restore(self, mode: LockMode | None) -> None:
        """Hold ``mode`` again after a failed or finished request: shared (kept or re-taken) or nothing."""
        self.mode = mode
        if self._fd is None:
            return
        if mode is None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            return
        try:
            # Taking shared again is a no-op when it is still held, and a downgrade when exclusive is held.
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            # NOTE: flock drops the shared lock before it tries to convert it to exclusive; another process took the
            # exclusive lock in that gap. Waiting (without timeout) is the only way to hold what the caller held.
            LOGGER.warning(
                'Lost the shared lock on profile folder %s to another process that took it exclusively; waiting for it',
                self.folder,
            )
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def _poll(self, fd: int, *, exclusive: bool, timeout: float, keep_shared: bool) -> None:
        """Take the lock, polling until ``timeout``; on refusal, take shared back first when ``keep_shared``."""
        operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        delay = _FIRST_POLL_DELAY
        retried = False
        while True:
            try:
                fcntl.flock(fd, operation)
            except BlockingIOError:
                if keep_shared:
                    self._restore('shared')
            else:
                return
            now = time.monotonic()
            if now < deadline:
                time.sleep(min(delay, deadline - now))
                delay = min(2 * delay, _MAX_POLL_DELAY)
                continue
            holders, unlisted = self._scan()
            if not exclusive:
                holders = [holder for holder in holders if holder.mode == 'exclusive']
            if not holders and unlisted == 0 and not retried:
                retried = True  # the holders left between the attempt and the scan: one more attempt
                continue
            raise ProfileLockedError(self._refusal(holders, unlisted, exclusive=exclusive, waited=timeout > 0))

    def _refusal(self, holders: list[Holder], unlisted: int | None, *, exclusive: bool, waited: bool) -> str:
        """Return the one-line message of a refused request."""
        shown = holders[:_MAX_HOLDERS_IN_MESSAGE]
        listed = ', '.join(f'pid {holder.pid} ({_shorten(holder.command)})' for holder in shown)
        if len(holders) > _MAX_HOLDERS_IN_MESSAGE:
            listed += f', ... ({len(holders) - _MAX_HOLDERS_IN_MESSAGE} more)'
        retry = f'retry with {"a longer " if waited else ""}--timeout'
        if not exclusive:
            message = (
                f'Profile folder {self.folder} is held exclusively (maintenance or migration) by '
                f'{listed or "another process"}; wait for it to finish or {retry}'
            )
        else:
            count = len(holders) + (unlisted or 0)
            if listed:
                who = f'{count} other process(es): {listed}' + (f' and {unlisted} not visible here' if unlisted else '')
            else:
                who = 'another process' if count <= 1 else f'{count} other processes not visible here'
            them = 'it' if count <= 1 else 'them'
            message = f'Profile folder {self.folder} is in use by {who}; stop {them} or {retry}'
        return ' '.join(message.splitlines())

    def _learn_lock_id(self, fd: int) -> None:
        """Record how ``/proc/locks`` names the lock file, from the lock this process holds on it (Linux)."""
        if self._learned_lock_id:
            return
        self._learned_lock_id = True
        try:
            with open(f'/proc/self/fdinfo/{fd}', encoding='ascii', errors='replace') as stream:
                lines = stream.read().splitlines()
        except OSError:
            return
        for line in lines:
            if line.startswith('lock:'):
                entry = _parse_lock_line(line.removeprefix('lock:'))
                if entry is not None:
                    self._lock_ids.add(entry[3])

    def _scan(self) -> tuple[list[Holder], int | None]:
        """Return the other holders that can be listed, and how many more cannot (``None``: unknown)."""
        lock_ids = set(self._lock_ids)
        if self._fd is None:
            try:
                lock_ids.add(_lock_id(os.stat(self._lock_file)))
            except FileNotFoundError:
                return [], 0
        try:
            with open(_PROC_LOCKS, encoding='ascii', errors='replace') as stream:
                lines = stream.read().splitlines()
        except OSError:
            return [], None
        me = os.getpid()
        modes: dict[int, LockMode] = {}
        unlisted = 0
        for line in lines:
            entry = _parse_lock_line(line)
            if entry is None or entry[3] not in lock_ids or entry[2] == me:
                continue
            kind, mode, pid = entry[:3]
            if kind != 'FLOCK':
                continue
            if pid <= 0:
                unlisted += 1
            elif modes.get(pid) != 'exclusive':
                modes[pid] = mode
        return [Holder(pid, _command(pid), mode) for pid, mode in sorted(modes.items())], unlisted

    def _after_fork_in_child(self) -> None:
        """Stop using the parent's lock (shared with it through the inherited descriptor) and take one of our own."""
        self._mutex = threading.RLock()
        held, fd = self.mode, self._fd
        self.mode, self._fd = None, None
        self._depth, self._mode_before = 0, None
        self._generation += 1
        if fd is None:
            return
        os.close(fd)  # NOTE: close, never unlock: unlocking would drop the parent's lock, which is the same lock.
        if held is None:
            return
        try:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # the parent holds it exclusively: the child starts with nothing
            self._restore(None)
        else:
            self.mode = 'shared'


def _after_fork_in_child() -> None:
    ProfileAccess._instances_lock = threading.Lock()
    for instance in ProfileAccess._instances.values():
        instance._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_timeout(timeout: float) -> None:
    if not timeout >= 0:  # also refuses NaN
        raise ValueError(f'The timeout must be a number of seconds >= 0, not {timeout!r}')


def _lock_id(stat: os.stat_result) -> _LockId:
    return os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino


def _parse_lock_line(line: str) -> tuple[str, LockMode, int, _LockId] | None:
    """Parse a held lock of ``/proc/locks`` (``1: FLOCK  ADVISORY  READ 12345 fd:01:1234567 0 EOF``); skip waiters."""
    fields = line.split()
    if len(fields) < 6 or fields[1] == '->':
        return None
    try:
        major, minor, inode = fields[5].split(':')
        lock_id = (int(major, 16), int(minor, 16), int(inode))
        pid = int(fields[4])
    except ValueError:
        return None
    return fields[1], 'exclusive' if fields[3] == 'WRITE' else 'shared', pid, lock_id


def _command(pid: int) -> str:
    """Return the command line of a process, or ``'?'``."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as stream:
            arguments = stream.read().split(b'\0')
    except OSError:
        return '?'
    return ' '.join(argument.decode('utf-8', 'replace') for argument in arguments if argument) or '?'


def _shorten(command: str) -> str:
    command = ' '.join(command.split())
    if len(command) > _MAX_COMMAND_IN_MESSAGE:
        return command[: _MAX_COMMAND_IN_MESSAGE - 3] + '...'
    return command
