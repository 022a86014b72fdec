"""Backups of a profile's storage: a consistent snapshot, copied incrementally, checked against a manifest.

Layout of a backup destination ``DEST``::

    DEST/.backup.lock                 flock held by the process writing into DEST (one writer at a time)
    DEST/.partial/                    the backup being written; the next run resumes it after an interruption
        journal.jsonl                 a line per file written so far: path, size, sha256, size and mtime of its source
    DEST/<UTC time>/                  a complete backup, e.g. 20261205T130102123456Z
        database/...                  the storage backend's copy of the database
        repository/...                the repository backend's copy of the files
        manifest.json                 written last: every file with its size and sha256, the profile's configuration
    DEST/last -> <UTC time>           the newest complete backup (a symlink, replaced atomically)

How a backup is consistent while the profile is in use: the storage backend snapshots its database first, then
the repository backend copies its objects. Objects are content-addressed and only added while others work, so
every object the snapshot references is in the copy. The process holds the profile's *shared* lock
(:mod:`provstore.profile_access`) all along; full maintenance, the only thing that rewrites or drops stored
bytes, needs the exclusive lock and is refused meanwhile (and a backup waits for nothing: it is refused while full
maintenance runs).

What the core does and what the backends do: the core owns the folder, the journal, resuming, hard links to the
previous backup, the manifest, pruning and checking; a storage backend implements
:meth:`provstore.storage.StorageBackend.backup` and ``restore_backup`` and hands each file to a :class:`BackupWriter`.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provstore.exceptions import BackupError

if TYPE_CHECKING:
    from provstore.config import Profile
    from provstore.storage.backend import StorageBackend

__all__ = [
    'LAST_NAME',
    'LOCK_NAME',
    'MANIFEST_NAME',
    'PARTIAL_NAME',
    'PAUSE_VARIABLE',
    'BackupFile',
    'BackupReport',
    'BackupWriter',
    'create_backup',
    'list_backups',
    'read_manifest',
    'resolve_backup',
    'restore_backup',
    'verify_backup',
]

MANIFEST_NAME = 'manifest.json'
PARTIAL_NAME = '.partial'
LAST_NAME = 'last'
JOURNAL_NAME = 'journal.jsonl'
LOCK_NAME = '.backup.lock'
PRUNING_PREFIX = '.pruning-'
FORMAT = 'provstore-backup'
FORMAT_VERSION = 1
CHUNK = 1024 * 1024

PAUSE_VARIABLE = 'PROVSTORE_BACKUP_TEST_PAUSE'
"""Seconds to sleep after each file written: lets the tests kill a backup half way. Unset in real use."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BackupFile:
    """A file of a backup, as the manifest and the journal list it."""

    path: str
    """Relative to the backup folder, with ``/``."""
    size: int
    sha256: str
    source_size: int | None = None
    """Size of the source when it was copied (``None`` for snapshots): a later backup links the file when equal."""
    source_mtime_ns: int | None = None


@dataclass(frozen=True)
class BackupReport:
    """What a backup did."""

    folder: str
    files: int
    bytes: int
    files_copied: int
    bytes_copied: int
    files_linked: int
    """Files hard-linked from the previous backup, unchanged since."""
    files_resumed: int
    """Files kept from an interrupted run, checked against its journal."""
    pruned: tuple[str, ...]


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackupWriter:
    """Writes the files of one backup into its folder, journaling each, skipping or linking what it can.

    Backends call :meth:`copy_file`, :meth:`copy_sqlite_database`, :meth:`add_file` and :meth:`add_bytes`; every file is
    fsynced when written, its folders before the manifest is.
    """

    def __init__(
        self, folder: Path, previous: tuple[Path, dict[str, BackupFile]] | None, progress: Progress | None
    ) -> None:
        self.folder = folder
        self._previous = previous
        self._progress = progress
        self.entries: dict[str, BackupFile] = {}
        self.files_copied = self.bytes_copied = self.files_linked = 0
        self._written: set[str] = set()
        self._done_files = self._done_bytes = 0
        self._total_files = self._total_bytes = 0
        self._resumable = self._read_journal()
        self._journal = open(folder / JOURNAL_NAME, 'a', encoding='utf-8')
        self._pause = float(os.environ.get(PAUSE_VARIABLE, '0') or 0)

    def close(self) -> None:
        """Close the journal."""
        self._journal.close()

    def _read_journal(self) -> dict[str, BackupFile]:
        """Return the files of an interrupted run whose copy is whole (size and sha256 as journaled)."""
        path = self.folder / JOURNAL_NAME
        found: dict[str, BackupFile] = {}
        with contextlib.suppress(FileNotFoundError), open(path, encoding='utf-8') as stream:
            for line in stream:
                try:
                    entry = BackupFile(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # NOTE: the last line of a killed run may be cut short
                found[entry.path] = entry
        whole = {}
        for entry in found.values():
            target = self.folder / entry.path
            with contextlib.suppress(OSError):
                if target.stat().st_size == entry.size and _sha256_of(target) == entry.sha256:
                    whole[entry.path] = entry
        self.entries.update(whole)  # NOTE: kept even when their source is gone (a loose object packed since)
        # Anything else (a temporary file, a file whose journal line was lost) goes: the folder holds what is listed.
        for where, _, names in os.walk(self.folder):
            for name in names:
                path = Path(where, name)
                if path.relative_to(self.folder).as_posix() not in whole and path != self.folder / JOURNAL_NAME:
                    path.unlink()
        return whole

    # -- what backends call ---------------------------------------------------------------------------------

    def expect(self, files: int, size: int) -> None:
        """Add ``files`` files of ``size`` bytes to the totals the progress shows."""
        self._total_files += files
        self._total_bytes += size
        self._report()

    def copy_file(self, source: Path, path: str, missing_ok: bool = False) -> None:
        """Copy ``source`` to ``path``: kept when an interrupted run copied it unchanged, hard-linked when the
        previous backup has it unchanged (same size and modification time), else copied.

        Only the bytes there when it is first looked at are copied: a file growing meanwhile (a pack file being
        appended to) is copied as it was then.

        :param missing_ok: a source that is gone (an object moved elsewhere meanwhile) is skipped.
        """
        try:
            stat = source.stat()
        except FileNotFoundError:
            if missing_ok:
                self._step(0)
                return
            raise
        size, mtime = stat.st_size, stat.st_mtime_ns
        kept = self._resumable.get(path)
        if kept is not None and (kept.source_size, kept.source_mtime_ns) == (size, mtime):
            self._step(size)
            return
        target = self.folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        old = self._previous[1].get(path) if self._previous else None
        if old is not None and self._previous and (old.source_size, old.source_mtime_ns) == (size, mtime):
            linked = self._previous[0] / path
            with contextlib.suppress(OSError):
                if linked.stat().st_size == old.size:
                    target.unlink(missing_ok=True)
                    os.link(linked, target)
                    self.files_linked += 1
                    self._record(BackupFile(path, old.size, old.sha256, size, mtime))
                    self._step(size)
                    return
        temporary = target.with_name(target.name + '.tmp')
        digest = hashlib.sha256()
        with open(source, 'rb') as reader, open(temporary, 'wb') as writer:
            left = size
            while left > 0:
                chunk = reader.read(min(CHUNK, left))
                if not chunk:
                    raise BackupError(f'{source} shrank while it was copied: it is not a file that is only added to')
                digest.update(chunk)
                writer.write(chunk)
                left -= len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
        self.files_copied += 1
        self.bytes_copied += size
        self._record(BackupFile(path, size, digest.hexdigest(), size, mtime))
        self._step(size)

    def copy_sqlite_database(self, source: Path, path: str) -> None:
        """Write a consistent copy of the SQLite database ``source`` to ``path``, through SQLite's online backup API.

        Other processes go on reading and writing meanwhile. The copy is in rollback-journal mode, so opening it
        read-only creates nothing beside it.
        """
        import sqlite3  # noqa: PLC0415 - only when a backup is made

        def write(temporary: Path) -> None:
            reader = sqlite3.connect(source, timeout=60.0)
            try:
                writer = sqlite3.connect(temporary)
                try:
                    reader.backup(writer)
                    writer.execute('PRAGMA journal_mode = DELETE')
                finally:
                    writer.close()
            finally:
                reader.close()

        self.add_file(path, write)

    def add_file(self, path: str, write: Callable[[Path], None]) -> None:
        """Let ``write`` make the file ``path`` (it is given a temporary path beside it), then record it."""
        target = self.folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + '.tmp')
        temporary.unlink(missing_ok=True)
        write(temporary)
        _fsync_file(temporary)
        os.replace(temporary, target)
        size = target.stat().st_size
        self.files_copied += 1
        self.bytes_copied += size
        self._record(BackupFile(path, size, _sha256_of(target)))
        self._total_bytes += size  # NOTE: known only now: a snapshot's size is not known beforehand
        self._step(size)

    def add_bytes(self, path: str, content: bytes) -> None:
        """Write ``content`` to the file ``path``."""

        def write(temporary: Path) -> None:
            temporary.write_bytes(content)

        self.add_file(path, write)

    # -- internals ------------------------------------------------------------------------------------------

    @property
    def files_resumed(self) -> int:
        """Files kept from an interrupted run, not written again by this one."""
        return len(set(self._resumable) - self._written)

    def _record(self, entry: BackupFile) -> None:
        self.entries[entry.path] = entry
        self._written.add(entry.path)
        # NOTE: not fsynced: a resumed run checks every journaled file's size and sha256 before keeping it.
        self._journal.write(json.dumps(asdict(entry)) + '\n')
        self._journal.flush()
        if self._pause:
            time.sleep(self._pause)

    def _step(self, size: int) -> None:
        self._done_files += 1
        self._done_bytes += size
        self._report()

    def _report(self) -> None:
        if self._progress is not None:
            self._progress('bytes', self._done_bytes, self._total_bytes)
            self._progress('objects', self._done_files, self._total_files)


# -- the destination --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _destination_lock(dest: Path) -> Iterator[None]:
    with open(dest / LOCK_NAME, 'ab') as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f'Another process is writing a backup into {dest}; wait for it to finish') from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _complete_backups(dest: Path) -> list[Path]:
    """Return the complete backups in ``dest``, oldest first."""
    return sorted(
        path
        for path in dest.iterdir()
        if not path.name.startswith('.')
        and path.is_dir()
        and not path.is_symlink()
        and (path / MANIFEST_NAME).is_file()
    )


def _check_destination(dest: Path) -> None:
    """Refuse a ``dest`` that holds anything but backups."""
    if not dest.parent.is_dir():
        raise BackupError(f'Cannot back up into {dest}: its parent folder {dest.parent} does not exist')
    if dest.exists() and not dest.is_dir():
        raise BackupError(f'Cannot back up into {dest}: it is not a folder')
    if not dest.exists():
        return
    for path in dest.iterdir():
        if path.name in (LOCK_NAME, PARTIAL_NAME, LAST_NAME) or path.name.startswith(PRUNING_PREFIX):
            continue
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            continue
        raise BackupError(f'{dest} is not a backup folder: it holds {path.name!r}; give an empty or new folder')


def read_manifest(folder: Path) -> dict[str, Any]:
    """Return the manifest of the backup in ``folder``.

    :raises BackupError: if there is none, or it is not a manifest of this format.
    """
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(f'{folder} is not a backup: it has no {MANIFEST_NAME}') from None
    except (OSError, ValueError) as exc:
        raise BackupError(f'{path} is corrupted: {exc}') from None
    if not isinstance(data, dict) or data.get('format') != FORMAT:
        raise BackupError(f'{path} is corrupted: it is not a {FORMAT} manifest')
    if data.get('version') != FORMAT_VERSION:
        raise BackupError(f'{path} has version {data.get("version")!r}; this code reads version {FORMAT_VERSION}')
    files = data.get('files')
    try:
        if not isinstance(files, list):
            raise TypeError('no list of files')
        data['files'] = [BackupFile(**entry) for entry in files]
    except TypeError as exc:
        raise BackupError(f'{path} is corrupted: {exc}') from None
    for entry in data['files']:
        if entry.path.startswith('/') or '..' in entry.path.split('/'):
            raise BackupError(f'{path} is corrupted: file {entry.path!r} is outside the backup')
    return data


def resolve_backup(path: str | os.PathLike[str]) -> Path:
    """Return the backup folder ``path`` names: a backup itself, or a destination (its newest complete backup).

    :raises BackupError: if it is neither.
    """
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise BackupError(f'{folder} is not a folder')
    if (folder / MANIFEST_NAME).is_file():
        return folder
    if (folder / LAST_NAME).is_symlink() or (folder / LAST_NAME).is_dir():
        return (folder / LAST_NAME).resolve()
    found = _complete_backups(folder)
    if not found:
        raise BackupError(f'{folder} is not a backup: it has no {MANIFEST_NAME} and holds no complete backup')
    return found[-1]


def list_backups(dest: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the complete backups in ``dest``, oldest first: name, creation time, profile, files and bytes."""
    found = []
    for folder in _complete_backups(Path(dest).absolute()):
        manifest = read_manifest(folder)
        found.append(
            {
                'name': folder.name,
                'created': manifest['created'],
                'profile': manifest['profile']['name'],
                'storage_backend': manifest['profile']['storage_backend'],
                'files': len(manifest['files']),
                'bytes': sum(entry.size for entry in manifest['files']),
            }
        )
    return found


def verify_backup(path: str | os.PathLike[str], progress: Progress | None = None) -> list[str]:
    """Check every file of a backup against its manifest; return the problems, one line each (none: it is whole).

    :raises BackupError: if ``path`` is not a backup or its manifest is corrupted.
    """
    folder = resolve_backup(path)
    files: list[BackupFile] = read_manifest(folder)['files']
    total = sum(entry.size for entry in files)
    problems, done = [], 0
    for index, entry in enumerate(files, 1):
        target = folder / entry.path
        try:
            size = target.stat().st_size
        except OSError:
            problems.append(f'{entry.path}: missing')
            continue
        if size != entry.size:
            problems.append(f'{entry.path}: {size} bytes, the manifest says {entry.size}')
        elif _sha256_of(target) != entry.sha256:
            problems.append(f'{entry.path}: sha256 differs from the manifest (the file is corrupted)')
        done += entry.size
        if progress is not None:
            progress('bytes', done, total)
            progress('objects', index, len(files))
    return problems


def _public_config(storage: type[StorageBackend], config: dict[str, Any]) -> dict[str, Any]:
    """Return ``config`` without its secret options."""
    secret = {option.name for option in storage.options if option.secret}
    words = ('password', 'secret', 'token')
    return {
        key: value
        for key, value in config.items()
        if key not in secret and not any(word in key.lower() for word in words)
    }


def create_backup(
    storage: StorageBackend,
    dest: str | os.PathLike[str],
    keep: int | None = None,
    progress: Progress | None = None,
) -> BackupReport:
    """Back up the open ``storage`` into a new folder of ``dest``, resuming an interrupted run, then prune.

    :param keep: keep this many complete backups (the new one included) and delete the oldest others.
    :raises BackupError: for a bad destination, or another backup writing into it.
    :raises ProfileLockedError: if full maintenance or a migration holds the profile.
    """
    from provstore.profile_access import ProfileAccess  # noqa: PLC0415

    if keep is not None and keep < 1:
        raise BackupError(f'--keep must be at least 1, not {keep}')
    dest = Path(dest).expanduser().absolute()
    _check_destination(dest)
    dest.mkdir(exist_ok=True)
    profile = storage.profile
    # NOTE: held by any process that opened the profile through the manager; taken here for other callers.
    ProfileAccess.for_folder(profile.folder).acquire_shared()
    with _destination_lock(dest):
        for stale in dest.glob(PRUNING_PREFIX + '*'):
            shutil.rmtree(stale, ignore_errors=True)
        partial = dest / PARTIAL_NAME
        partial.mkdir(exist_ok=True)
        previous = None
        complete = _complete_backups(dest)
        if complete:
            with contextlib.suppress(BackupError):
                manifest = read_manifest(complete[-1])
                previous = (complete[-1], {entry.path: entry for entry in manifest['files']})
        writer = BackupWriter(partial, previous, progress)
        try:
            database = storage.backup(writer)
        finally:
            writer.close()
        now = datetime.datetime.now(datetime.timezone.utc)
        manifest = {
            'format': FORMAT,
            'version': FORMAT_VERSION,
            'created': now.isoformat(),
            'profile': {
                'name': profile.name,
                'uuid': profile.uuid,
                'storage_backend': profile.storage_backend,
                'storage_config': _public_config(type(storage), dict(profile.storage_config)),
                'default_user_email': profile.default_user_email,
            },
            'database': database,
            'files': [asdict(entry) for entry in sorted(writer.entries.values(), key=lambda entry: entry.path)],
        }
        _finish(partial, manifest)
        name = now.strftime('%Y%m%dT%H%M%S%fZ')
        final = dest / name
        os.rename(partial, final)
        link = dest / f'.{LAST_NAME}.tmp'
        link.unlink(missing_ok=True)
        os.symlink(name, link)
        os.replace(link, dest / LAST_NAME)
        _fsync_folder(dest)
        pruned = _prune(dest, keep, final) if keep is not None else []
    files: list[BackupFile] = list(writer.entries.values())
    return BackupReport(
        folder=str(final),
        files=len(files),
        bytes=sum(entry.size for entry in files),
        files_copied=writer.files_copied,
        bytes_copied=writer.bytes_copied,
        files_linked=writer.files_linked,
        files_resumed=writer.files_resumed,
        pruned=tuple(pruned),
    )


def _finish(partial: Path, manifest: dict[str, Any]) -> None:
    """Make every folder of ``partial`` durable, then write the manifest last, atomically."""
    for folder, _, _ in os.walk(partial):
        _fsync_folder(Path(folder))
    temporary = partial / f'{MANIFEST_NAME}.tmp'
    with open(temporary, 'w', encoding='utf-8') as stream:
        json.dump(manifest, stream, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, partial / MANIFEST_NAME)
    (partial / JOURNAL_NAME).unlink(missing_ok=True)
    _fsync_folder(partial)


def _prune(dest: Path, keep: int, newest: Path) -> list[str]:
    """Delete the oldest complete backups beyond ``keep``; never ``newest``. Return their names."""
    pruned = []
    for folder in _complete_backups(dest)[: -keep or None]:
        if folder == newest:
            continue
        # NOTE: renamed first, so that a prune cut short leaves no half-deleted folder that looks complete.
        doomed = dest / f'{PRUNING_PREFIX}{folder.name}'
        os.rename(folder, doomed)
        shutil.rmtree(doomed)
        pruned.append(folder.name)
    _fsync_folder(dest)
    return pruned


# -- restore ----------------------------------------------------------------------------------------------------


def restore_backup(
    source: str | os.PathLike[str],
    name: str,
    *,
    database_name: str | None = None,
    force: bool = False,
    timeout: float = 0.0,
    progress: Progress | None = None,
    backend_of: Callable[[str], type[StorageBackend]],
) -> Profile:
    """Make the profile ``name`` from a backup, check it and add it to the configuration.

    The backup is checked against its manifest first; the restored storage opens and holds what the snapshot
    held (each backend checks its own figures) before the profile is saved.

    :param source: a backup folder, or a destination (its newest complete backup).
    :param database_name: for backends with a database server: the database to restore into.
    :param force: replace an existing profile ``name``, which no other process may hold: its storage is erased and
        it leaves the configuration before the restore begins.
    :param backend_of: the storage backend class of a name (see :func:`provstore.manager.restore_storage`).
    :raises BackupError: for a backup that is not whole, or an existing profile without ``force``.
    :raises ProfileLockedError: naming the processes that hold the profile to replace.
    """
    import dataclasses  # noqa: PLC0415

    from provstore.config import Profile, edit_config  # noqa: PLC0415
    from provstore.profile_access import ProfileAccess  # noqa: PLC0415

    folder = resolve_backup(source)
    problems = verify_backup(folder, progress)
    if problems:
        more = f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''
        raise BackupError(f'The backup {folder} is damaged: {problems[0]}{more}')
    manifest = read_manifest(folder)
    saved = manifest['profile']
    storage_class = backend_of(saved['storage_backend'])
    if force:
        # NOTE: the old profile is erased and removed from the configuration first, in a change of its own, so that
        # a restore failing after this leaves no profile whose storage is gone.
        with edit_config() as config:
            if name in config.profiles:
                old = config.profiles[name]
                with ProfileAccess.for_folder(old.folder).exclusive(timeout):
                    backend_of(old.storage_backend).erase(old)
                config.remove_profile(name)
    with edit_config() as config, contextlib.ExitStack() as stack:
        if name in config.profiles:
            raise BackupError(f'A profile named {name!r} exists already; pass --force to replace it')
        storage_config = storage_class.restored_config(dict(saved['storage_config']), name, database_name)
        storage_config = storage_class.validate_config(storage_config, f'profile {name!r}')
        profile = Profile(
            name=name,
            storage_backend=saved['storage_backend'],
            storage_config=storage_config,
            default_user_email=saved.get('default_user_email'),
        )
        profile = dataclasses.replace(profile, folder=config.profile_folder(name))
        stack.enter_context(ProfileAccess.for_folder(profile.folder).exclusive(timeout))
        if storage_class.version_profile(profile) is not None:
            raise BackupError(
                f'The storage of the new profile {name!r} exists already; give another --database-name, or remove it'
            )
        if progress is not None:
            progress('restore', 0, 1)
        try:
            storage_class.restore_backup(profile, folder, manifest['database'])
        except BaseException:
            with contextlib.suppress(Exception):
                storage_class.erase(profile)
            raise
        config.add_profile(profile)
        if progress is not None:
            progress('restore', 1, 1)
    return profile
