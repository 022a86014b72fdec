"""Profile access locks, with real processes: shared holders, exclusive requests, SIGKILL, timeouts, fork."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from provstore.exceptions import ProfileLockedError, ProvstoreError
from provstore.profile_access import LOCK_FILE_NAME, Holder, LockMode, ProfileAccess

HOLDER = Path(__file__).with_name('profile_holder.py')
SUBPROCESS_TIMEOUT = 60  # seconds; a generous bound for a loaded machine, never a measurement


class Holders:
    """Starts holder processes (``profile_holder.py``) and makes sure none outlives its test."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, folder: Path, mode: str = 'shared', *extra: str) -> subprocess.Popen[str]:
        """Start a holder and wait until it holds the lock (its ``ready`` line)."""
        process = subprocess.Popen(
            [sys.executable, str(HOLDER), str(folder), mode, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if line != 'ready\n':
            process.kill()
            assert process.stderr is not None
            pytest.fail(f'holder did not get the {mode} lock: {line!r} {process.stderr.read()!r}')
        return process

    @staticmethod
    def let_go(process: subprocess.Popen[str]) -> None:
        """Let a holder end normally (end-of-file on its stdin) and wait for it."""
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=SUBPROCESS_TIMEOUT) == 0

    def close(self) -> None:
        """Kill what still runs, close every pipe, reap every process."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            process.wait(timeout=SUBPROCESS_TIMEOUT)


def mode_of(access: ProfileAccess) -> LockMode | None:
    """Return what the process holds (a call, so that type checkers do not narrow it between two calls)."""
    return access.mode


def probe_exclusive(folder: Path) -> str:
    """Ask for the exclusive lock from a fresh process; return its one output line (``granted`` or ``locked: ...``)."""
    command = [sys.executable, str(HOLDER), str(folder), 'try-exclusive']
    result = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False)
    assert result.returncode in (0, 3), result.stderr
    return result.stdout.strip()


def let_go_later(process: subprocess.Popen[str], delay: float = 0.2) -> threading.Timer:
    """Close a holder's stdin from another thread after ``delay`` seconds, so that it exits while we wait."""
    assert process.stdin is not None
    timer = threading.Timer(delay, process.stdin.close)
    timer.start()
    return timer


@pytest.fixture
def holders() -> Iterator[Holders]:
    """Holder processes, all gone after the test."""
    started = Holders()
    yield started
    started.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A profile folder that does not exist yet."""
    return tmp_path / 'profile'


@pytest.fixture
def access(folder: Path) -> Iterator[ProfileAccess]:
    """This process's access to ``folder``, released after the test."""
    instance = ProfileAccess.for_folder(folder)
    yield instance
    instance.release()


def test_acquire_shared_and_release_are_idempotent(access: ProfileAccess, folder: Path) -> None:
    """Shared can be asked for and released twice; the lock file stays after release."""
    assert mode_of(access) is None
    access.acquire_shared()
    access.acquire_shared()
    assert mode_of(access) == 'shared'
    assert access.holders() == []  # this process is not one of the *other* holders
    access.release()
    access.release()
    assert mode_of(access) is None
    assert (folder / LOCK_FILE_NAME).is_file()


def test_lock_file_and_folder_are_owner_only(access: ProfileAccess, folder: Path) -> None:
    """The missing profile folder is created 0700, the lock file 0600."""
    access.acquire_shared()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / LOCK_FILE_NAME).stat().st_mode) == 0o600


def test_negative_timeout_is_refused(access: ProfileAccess) -> None:
    """A negative or NaN timeout is a programming error, not a wait."""
    with pytest.raises(ValueError, match='timeout must be a number of seconds >= 0'):
        access.acquire_shared(timeout=-1)
    with pytest.raises(ValueError, match='timeout'), access.exclusive(timeout=float('nan')):
        pass
    assert mode_of(access) is None


def test_exclusive_in_process_when_nobody_else_holds(access: ProfileAccess, folder: Path, holders: Holders) -> None:
    """Exclusive is granted at once, nests, keeps other processes out, and ends with nothing held."""
    with access.exclusive():
        assert mode_of(access) == 'exclusive'
        with access.exclusive():
            assert mode_of(access) == 'exclusive'
        assert mode_of(access) == 'exclusive'  # the inner block does not give the lock back
        refused = probe_exclusive(folder)
        assert refused.startswith('locked: ')
        assert f'pid {os.getpid()} (' in refused
    assert mode_of(access) is None
    holders.start(folder, 'shared')  # fails the test unless the lock is really free


def test_two_holders_refuse_exclusive_until_one_is_killed_and_one_exits(
    access: ProfileAccess, folder: Path, holders: Holders
) -> None:
    """The acceptance scenario: refused with both pids and commands listed; then granted with no clean-up step."""
    first = holders.start(folder, 'shared')
    second = holders.start(folder, 'shared')

    refused = probe_exclusive(folder)
    assert refused.startswith(f'locked: Profile folder {folder} is in use by 2 other process(es): ')
    assert f'pid {first.pid} (' in refused
    assert f'pid {second.pid} (' in refused
    assert refused.count('profile_holder.py') == 2
    assert refused.endswith('; stop them or retry with --timeout')

    with pytest.raises(ProfileLockedError, match=r'in use by 2 other process\(es\)') as refusal, access.exclusive():
        pass
    assert f'pid {first.pid} (' in str(refusal.value)
    assert f'pid {second.pid} (' in str(refusal.value)
    assert mode_of(access) is None

    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=SUBPROCESS_TIMEOUT) == -signal.SIGKILL
    with pytest.raises(ProfileLockedError, match=rf'in use by 1 other process\(es\): pid {second.pid} \('):
        with access.exclusive():
            pass
    holders.let_go(second)

    assert probe_exclusive(folder) == 'granted'
    with access.exclusive():
        assert mode_of(access) == 'exclusive'
    assert mode_of(access) is None


def test_holders_lists_other_processes_with_command_and_mode(
    access: ProfileAccess, tmp_path: Path, holders: Holders
) -> None:
    """holders() names every other holder with its command and mode, never this process."""
    access.acquire_shared()
    first = holders.start(access.folder, 'shared', 'first')
    second = holders.start(access.folder, 'shared', 'second')
    listed = access.holders()
    assert [holder.pid for holder in listed] == sorted([first.pid, second.pid])
    assert all(holder.mode == 'shared' for holder in listed)
    assert [holder.command for holder in listed] == [
        f'{sys.executable} {HOLDER} {access.folder} shared {name}'
        for _, name in sorted([(first.pid, 'first'), (second.pid, 'second')])
    ]

    other = tmp_path / 'other'
    exclusive = holders.start(other, 'exclusive')
    assert ProfileAccess.for_folder(other).holders() == [
        Holder(exclusive.pid, f'{sys.executable} {HOLDER} {other} exclusive', 'exclusive')
    ]


def test_refused_exclusive_keeps_the_shared_lock(access: ProfileAccess, folder: Path, holders: Holders) -> None:
    """A refused conversion from shared takes shared back: another process still sees this one as a holder."""
    access.acquire_shared()
    holder = holders.start(folder, 'shared')
    with pytest.raises(ProfileLockedError, match=rf'in use by 1 other process\(es\): pid {holder.pid} \('):
        with access.exclusive():
            pass
    assert mode_of(access) == 'shared'
    refused = probe_exclusive(folder)
    assert 'in use by 2 other process(es)' in refused
    assert f'pid {os.getpid()} (' in refused


def test_after_the_exclusive_block_the_process_is_back_to_shared(
    access: ProfileAccess, folder: Path, holders: Holders
) -> None:
    """Shared before the block, exclusive inside (others refused), shared again after (others share, not convert)."""
    access.acquire_shared()
    with access.exclusive():
        assert mode_of(access) == 'exclusive'
        assert f'pid {os.getpid()} (' in probe_exclusive(folder)
    assert mode_of(access) == 'shared'
    holders.start(folder, 'shared')  # shared again, not exclusive: another process can share
    refused = probe_exclusive(folder)
    assert 'in use by 2 other process(es)' in refused
    assert f'pid {os.getpid()} (' in refused


def test_shared_asked_inside_an_exclusive_block_is_kept_after_it(access: ProfileAccess) -> None:
    """acquire_shared() inside an exclusive block taken from nothing leaves the process shared after the block."""
    with access.exclusive():
        access.acquire_shared()
        assert mode_of(access) == 'exclusive'
    assert mode_of(access) == 'shared'


def test_release_inside_an_exclusive_block_wins(access: ProfileAccess, folder: Path) -> None:
    """release() inside an exclusive block drops the lock, and the end of the block takes nothing back."""
    access.acquire_shared()
    with access.exclusive():
        access.release()
        assert mode_of(access) is None
        assert probe_exclusive(folder) == 'granted'
    assert mode_of(access) is None


def test_exclusive_with_timeout_waits_for_a_holder_that_exits(
    access: ProfileAccess, folder: Path, holders: Holders
) -> None:
    """With a timeout, the exclusive request polls and is granted once the holder exits meanwhile."""
    holder = holders.start(folder, 'shared')
    with pytest.raises(ProfileLockedError, match=f'pid {holder.pid}'), access.exclusive():
        pass
    timer = let_go_later(holder)
    try:
        with access.exclusive(timeout=SUBPROCESS_TIMEOUT):
            assert mode_of(access) == 'exclusive'
    finally:
        timer.join()
    assert holder.wait(timeout=SUBPROCESS_TIMEOUT) == 0  # it let go by exiting
    assert mode_of(access) is None


def test_exclusive_with_timeout_fails_when_the_holder_stays(
    access: ProfileAccess, folder: Path, holders: Holders
) -> None:
    """With a short timeout and a holder that stays, the request fails after waiting, suggesting a longer timeout."""
    access.acquire_shared()
    holder = holders.start(folder, 'shared')
    started = time.monotonic()
    with pytest.raises(ProfileLockedError, match=rf'pid {holder.pid} .*retry with a longer --timeout$'):
        with access.exclusive(timeout=0.3):
            pass
    assert time.monotonic() - started >= 0.3
    assert mode_of(access) == 'shared'
    assert holder.poll() is None


def test_shared_is_refused_while_another_process_holds_exclusive(
    access: ProfileAccess, folder: Path, holders: Holders
) -> None:
    """A shared request fails at once while another process is exclusive, and waits for it with a timeout."""
    holder = holders.start(folder, 'exclusive')
    with pytest.raises(ProfileLockedError, match=rf'held exclusively .* by pid {holder.pid} \(.*profile_holder\.py'):
        access.acquire_shared()
    assert mode_of(access) is None
    timer = let_go_later(holder)
    try:
        access.acquire_shared(timeout=SUBPROCESS_TIMEOUT)
    finally:
        timer.join()
    assert mode_of(access) == 'shared'
    assert holder.wait(timeout=SUBPROCESS_TIMEOUT) == 0


def test_for_folder_returns_one_instance_per_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative, absolute, dotted and symlinked spellings of a folder give one instance; another folder another."""
    real = tmp_path / 'real'
    real.mkdir()
    (tmp_path / 'link').symlink_to(real)
    monkeypatch.chdir(tmp_path)
    access = ProfileAccess.for_folder(real)
    assert ProfileAccess.for_folder('real') is access
    assert ProfileAccess.for_folder(f'{tmp_path}/./real/') is access
    assert ProfileAccess.for_folder(tmp_path / 'link') is access
    assert ProfileAccess.for_folder(Path('link')) is access
    assert access.folder == real.resolve()
    assert ProfileAccess.for_folder(tmp_path / 'other') is not access


def test_refusal_is_one_line(access: ProfileAccess, folder: Path, holders: Holders) -> None:
    """The error is one line even when a holder's command line has a newline in it."""
    holder = holders.start(folder, 'shared', 'two\nlines')
    with pytest.raises(ProfileLockedError) as refusal, access.exclusive():
        pass
    message = str(refusal.value)
    assert isinstance(refusal.value, ProvstoreError)
    assert '\n' not in message
    assert f'pid {holder.pid} (' in message
    assert 'two lines)' in message


def test_forked_child_holds_its_own_lock(access: ProfileAccess, folder: Path) -> None:
    """A forked child takes its own shared lock; its release() leaves the parent's lock alone."""
    access.acquire_shared()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # Python >= 3.12 warns about fork() with threads
        pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any of pytest's clean-up
        code = 1
        try:
            others = [holder.pid for holder in access.holders()]
            code = 0 if mode_of(access) == 'shared' and others == [os.getppid()] else 2
            access.release()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert mode_of(access) == 'shared'
    assert f'pid {os.getpid()} (' in probe_exclusive(folder)


def test_refusal_without_proc_locks_names_no_pid(
    access: ProfileAccess, folder: Path, holders: Holders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where /proc/locks does not exist (macOS), the refusal says another process holds the profile, with no pid."""
    from provstore import profile_access

    monkeypatch.setattr(profile_access, '_PROC_LOCKS', str(folder / 'no-such-file'))
    holders.start(folder, 'shared')
    assert access.holders() == []
    with pytest.raises(ProfileLockedError, match=r'is in use by another process; stop it or retry with --timeout$'):
        with access.exclusive():
            pass
