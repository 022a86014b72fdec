"""The ``disk_objectstore`` repository backend: content-addressed objects in a disk-objectstore container.

``disk_objectstore`` imports SQLAlchemy, so it is imported only inside methods, when a container is first used:
importing this module (to list plugins, say) stays cheap.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, cast

from provstore.exceptions import RepositoryError
from provstore.repository import AbstractRepositoryBackend, BackupTarget, MaintenanceReport, sha256_of_stream

if TYPE_CHECKING:
    from disk_objectstore import Container

__all__ = ['DEFAULT_PACK_SIZE_TARGET', 'PACK_LOCK_NAME', 'DiskObjectStoreRepositoryBackend']

DEFAULT_PACK_SIZE_TARGET = 4 * 1024**3
"""Size in bytes above which a new pack file is started (the default of disk-objectstore and aiida-core)."""

PACK_LOCK_NAME = 'provstore-pack.lock'
"""Name of the lock file, inside the container folder, held by whoever writes pack files."""

HASH_TYPE = 'sha256'
"""The only hash type this backend creates or accepts: keys are sha256 hex digests."""

_KEY_PATTERN = re.compile(r'[0-9a-f]{64}')
"""A key is a sha256 hex digest; anything else (``..``, ``ab/../../x``, ...) never names a path."""


def _is_key(key: object) -> bool:
    return isinstance(key, str) and _KEY_PATTERN.fullmatch(key) is not None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


if sys.platform == 'win32':
    import msvcrt

    def _lock_nowait(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_nowait(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exception:
            if exception.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _pack_new_objects(container: Container, handles: list[BinaryIO]) -> list[str]:
    """Write into packs only the streams whose content the container lacks; return every key, in order.

    NOTE: disk-objectstore's own ``no_holes`` option avoids duplicate writes by loading every packed key into
    memory, which does not scale to millions of objects. Hashing each seekable stream first and asking the index
    about just those keys costs one extra read of the batch and keeps memory proportional to the batch.
    Streams that cannot seek are written as they come.
    """
    hashes: list[str | None] = []
    for handle in handles:
        if handle.seekable():
            start = handle.tell()
            hashes.append(sha256_of_stream(handle))
            handle.seek(start)
        else:
            hashes.append(None)
    stored = _stored_keys(container, list(dict.fromkeys(key for key in hashes if key is not None)))
    to_write: list[int] = []
    for index, key in enumerate(hashes):
        if key is None or key not in stored:
            to_write.append(index)
            if key is not None:
                stored.add(key)
    pending: list[Any] = [handles[index] for index in to_write]
    _end_read_snapshot(container)  # NOTE: the query above began one; the index is written from a fresh one
    written = container.add_streamed_objects_to_pack(pending) if pending else []
    keys = [key or '' for key in hashes]
    for index, key in zip(to_write, written, strict=True):
        if hashes[index] not in (None, key):
            raise RepositoryError(f'stream {index} of the batch changed while it was written: expected {hashes[index]}')
        keys[index] = key
    return keys


_KEYS_PER_QUERY = 900
"""Keys looked up in the pack index per query (SQLite's old limit of bind parameters is 999)."""


def _stored_keys(container: Container, keys: list[str]) -> set[str]:
    """Return those of ``keys`` the container holds, loose or packed, reading the pack index afresh.

    NOTE: ``Container.has_objects`` closes and reopens its connection to the pack index whenever a key is missing
    (to see objects packed meanwhile), and makes a ``Path`` per key: milliseconds on every bulk write of new content,
    a third of a second for 10,000 new keys. Here the read snapshot of the index is ended first, and the loose files
    are looked for before the index is queried: an object that another process packs meanwhile is in its loose file
    until its pack is committed, so it cannot be missed. A disk-objectstore without those parts is asked through
    ``has_objects``.
    """
    get_session = getattr(container, '_get_operation_session', None)
    if get_session is None:  # pragma: no cover - another version of disk-objectstore
        return {key for key, exists in zip(keys, container.has_objects(keys), strict=True) if exists}
    from disk_objectstore.database import Obj  # noqa: PLC0415 - see DiskObjectStoreRepositoryBackend
    from sqlalchemy import select  # noqa: PLC0415

    loose = os.path.join(os.fspath(container.get_folder()), 'loose')
    prefix = container.loose_prefix_len
    stored = {key for key in keys if os.path.isfile(os.path.join(loose, key[:prefix], key[prefix:]))}
    wanted = [key for key in keys if key not in stored]
    _end_read_snapshot(container)
    session = get_session()
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        chunk = wanted[start : start + _KEYS_PER_QUERY]
        stored.update(session.execute(select(Obj.hashkey).where(Obj.hashkey.in_(chunk))).scalars())
    return stored


def _end_read_snapshot(container: Container) -> None:
    """End the read transaction the container's session to its pack index holds, if any.

    A rollback of the session costs microseconds; closing the container (its public way to do the same) disposes
    of its engine and makes the next query open and set up a new SQLite connection: about 5 ms for every bulk write,
    most of what storing one node with a few files costs. The session only reads between disk-objectstore's own
    committed writes, so the rollback discards nothing. A disk-objectstore without that session is closed instead.
    """
    if not hasattr(container, '_operation_session'):
        container.close()  # pragma: no cover - another version of disk-objectstore
        return
    session = container._operation_session
    if session is not None:
        session.rollback()


@contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Try to take the exclusive inter-process lock on the file ``path`` without waiting; yield whether it was taken.

    The lock belongs to the open file, so it is released when the block ends or the process dies. It also
    excludes another ``_try_lock`` of the same file in the same process.
    """
    with open(path, 'ab') as handle:
        if not _lock_nowait(handle.fileno()):
            yield False
            return
        try:
            yield True
        finally:
            _unlock(handle.fileno())


class DiskObjectStoreRepositoryBackend(AbstractRepositoryBackend):
    """Content-addressed objects in a disk-objectstore container: loose files packed during maintenance.

    Keys are sha256 hex digests of the content, so the same content is stored once. A single object is written
    as a loose file (any number of processes may do so at once); a batch goes straight into pack files when no
    other process is writing packs. :meth:`maintain` packs loose objects and reclaims the space of deleted ones.

    :param filepath: the container folder, created by :meth:`initialise` and removed by :meth:`erase`.
    :param pack_size_target: size in bytes above which a new pack file is started.
    :param loose_prefix_len: length of the key prefix naming the subfolders of loose objects.
    :param compression_algorithm: how packed objects are compressed when maintenance is asked to compress.

    The last three options are used only when :meth:`initialise` creates the container; an existing container
    keeps those it was created with (in its ``config.json``).
    """

    name: ClassVar[str] = 'disk_objectstore'

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        pack_size_target: int = DEFAULT_PACK_SIZE_TARGET,
        loose_prefix_len: int = 2,
        compression_algorithm: str = 'zlib+1',
    ) -> None:
        if not _is_int(pack_size_target) or pack_size_target <= 0:
            raise ValueError(f'pack_size_target must be a positive number of bytes, got {pack_size_target!r}')
        if not _is_int(loose_prefix_len) or not 0 <= loose_prefix_len < 64:
            raise ValueError(f'loose_prefix_len must be an integer from 0 to 63, got {loose_prefix_len!r}')
        if not isinstance(compression_algorithm, str):
            raise TypeError(f'compression_algorithm must be a string such as "zlib+1", got {compression_algorithm!r}')
        self._filepath = os.path.realpath(os.fspath(filepath))
        self._pack_size_target = pack_size_target
        self._loose_prefix_len = loose_prefix_len
        self._compression_algorithm = compression_algorithm
        self._container: Container | None = None
        self._checked = False

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self._filepath!r})'

    @property
    def filepath(self) -> str:
        """The absolute path of the container folder."""
        return self._filepath

    def close(self) -> None:
        """Release the connections to the container's SQLite pack index; the next use opens them again."""
        if self._container is not None:
            self._container.close()

    # -- the container ----------------------------------------------------------------------------------------

    def _container_object(self) -> Container:
        """Return the ``Container`` of the folder, created on first use (this is where disk_objectstore loads)."""
        if self._container is None:
            from disk_objectstore import Container  # noqa: PLC0415 - imports SQLAlchemy: only on first use

            self._container = Container(self._filepath)
            # NOTE: a backend dropped without close() still releases the container's SQLite connections, when it
            # is collected, instead of leaving them to the interpreter (a ResourceWarning since Python 3.13).
            weakref.finalize(self, self._container.close)
        return self._container

    def _get_container(self, fresh: bool = False) -> Container:
        """Return the container, checked to be initialised and to use sha256 keys.

        :param fresh: end any read snapshot of the pack index this process holds, so the next query sees what
            other processes committed and the next write to the index is not refused as stale.
        :raises RepositoryError: if the container is not initialised or does not use sha256 keys.
        """
        container = self._container_object()
        if not self._checked:
            if not container.is_initialised:
                raise RepositoryError(
                    f'No disk-objectstore container at {self._filepath}: call initialise() to create it'
                )
            if container.hash_type != HASH_TYPE:
                raise RepositoryError(
                    f'The disk-objectstore container at {self._filepath} uses {container.hash_type!r} keys; '
                    f'this backend needs {HASH_TYPE!r}'
                )
            self._checked = True
        if fresh:
            # NOTE: the pack index is SQLite in WAL mode and disk-objectstore keeps a read transaction open after
            # every query. Writing to the index from a snapshot older than another process's commit fails with
            # "database is locked" (measured: a bulk write after another process packed), and reads from it miss
            # newer objects. Ending that transaction ends the snapshot.
            _end_read_snapshot(container)
        return container

    @contextmanager
    def _pack_lock(self) -> Iterator[bool]:
        """Try to take the pack lock without waiting; yield whether it was taken.

        disk-objectstore allows one process at a time to write pack files (bulk writes, packing, repacking,
        cleaning); this lock is how provstore processes take turns. Whoever takes it first removes pack locks left
        by dead writers (see :meth:`_remove_stale_pack_locks`).
        """
        with _try_lock(Path(self._filepath) / PACK_LOCK_NAME) as locked:
            yield locked

    def _remove_stale_pack_locks(self) -> list[str]:
        """Remove the ``packs/N.lock`` files left by writers that died holding them; return their names.

        disk-objectstore marks the pack file it appends to by creating ``packs/N.lock`` and removes it when done;
        a writer killed meanwhile leaves it, and the next write to that pack fails. Call this only while holding
        the pack lock: every provstore process writes packs only under it, so no live writer owns such a file.

        NOTE: a process that writes packs without provstore (disk-objectstore used directly on the same folder)
        does not take the pack lock; such sharing of a profile's container is not supported.
        """
        removed: list[str] = []
        for lock_file in sorted((Path(self._filepath) / 'packs').glob('*.lock')):
            with contextlib.suppress(FileNotFoundError):
                lock_file.unlink()
                removed.append(f'packs/{lock_file.name}')
        return removed

    # -- identity and lifecycle -------------------------------------------------------------------------------

    @property
    def uuid(self) -> str | None:
        """The container's ``container_id`` (a uuid4 hex), or ``None`` while the container is not initialised."""
        if not self.is_initialised:
            return None
        return self._get_container().container_id

    @property
    def key_format(self) -> str:
        """Keys are content hashes: ``'sha256'``."""
        return HASH_TYPE

    def initialise(self, **kwargs: Any) -> None:
        """Create the container with the options given to the constructor; do nothing if it already exists.

        Keyword arguments are accepted for compatibility with other backends and ignored: options belong to the
        constructor.

        :raises RepositoryError: if the folder exists, is not empty and is not a container.
        """
        container = self._container_object()
        if container.is_initialised:
            return
        try:
            container.init_container(
                pack_size_target=self._pack_size_target,
                loose_prefix_len=self._loose_prefix_len,
                hash_type=HASH_TYPE,
                compression_algorithm=self._compression_algorithm,
            )
        except FileExistsError:
            # NOTE: another process may have created the container between the check above and this call.
            if self.is_initialised:
                return
            raise RepositoryError(
                f'Cannot create a disk-objectstore container in {self._filepath}: the folder is not empty'
            ) from None

    @property
    def is_initialised(self) -> bool:
        """Whether the container folder holds an initialised container."""
        return bool(self._container_object().is_initialised)

    def erase(self) -> None:
        """Delete the container folder and every object in it."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self._checked = False
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._filepath)

    # -- backups ----------------------------------------------------------------------------------------------

    def backup(self, writer: BackupTarget, prefix: str) -> None:
        """Copy the container: ``config.json``, the loose objects, a snapshot of the pack index, then the packs.

        Why this order is safe while others write: packing writes an object into a pack and commits the index before
        it deletes the loose copy, so an object gone from ``loose/`` when it is reached is in the index snapshot
        taken after; packs are only appended to (repacking is full maintenance, excluded by the profile's shared
        lock the backup holds), so each pack copied after that snapshot holds every object the snapshot lists.
        Unchanged packs are hard-linked from the previous backup by the writer.
        """
        root = Path(self._get_container().get_folder())
        loose = sorted(path for path in (root / 'loose').rglob('*') if path.is_file())
        packs = _pack_files(root)  # NOTE: for the progress's totals; listed again after the index snapshot
        # NOTE: the files to copy, and the pack index, whose snapshot adds its bytes when it is made
        writer.expect(
            len(loose) + len(packs) + 2, sum(_size_or_zero(path) for path in (root / 'config.json', *loose, *packs))
        )
        writer.copy_file(root / 'config.json', f'{prefix}/config.json')
        for path in loose:
            writer.copy_file(path, f'{prefix}/{path.relative_to(root).as_posix()}', missing_ok=True)
        writer.copy_sqlite_database(root / 'packs.idx', f'{prefix}/packs.idx')
        # NOTE: listed after the index snapshot, so that every pack it names is copied.
        after = _pack_files(root)
        writer.expect(len(after) - len(packs), sum(_size_or_zero(path) for path in after[len(packs) :]))
        for path in after:
            writer.copy_file(path, f'{prefix}/packs/{path.name}')

    def restore_backup(self, folder: Path) -> None:
        """Copy a backup's container files into this repository's (missing or empty) folder.

        :raises RepositoryError: if the folder holds anything.
        """
        target = Path(self._filepath)
        if target.exists() and any(target.iterdir()):
            raise RepositoryError(f'Cannot restore a repository into {target}: the folder is not empty')
        self.close()
        self._container = None
        self._checked = False
        temporary = target.with_name(target.name + '.restoring')
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(folder, temporary)
        for name in ('loose', 'packs', 'duplicates', 'sandbox'):
            (temporary / name).mkdir(exist_ok=True)
        for where, _, names in os.walk(temporary, topdown=False):
            for name in [*names, '.']:  # NOTE: the files, then their folder
                fd = os.open(os.path.join(where, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            target.rmdir()
        os.replace(temporary, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- writing ----------------------------------------------------------------------------------------------

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        return self._get_container().add_streamed_object(handle)

    def _put_objects_from_filelikes(self, handles: list[BinaryIO]) -> list[str]:
        """Store many streams straight into pack files and return their keys in the same order.

        Each stream is read in chunks, never whole. Seekable streams are hashed first, so content already
        stored, or repeated within the batch, is not written again. When another process holds the pack lock,
        the streams are written as loose objects instead.
        """
        container = self._get_container()
        with self._pack_lock() as locked:
            if locked:
                self._remove_stale_pack_locks()
                return _pack_new_objects(self._get_container(fresh=True), handles)
        # NOTE: the pack lock is busy: rather than wait for another writer's batch (maybe minutes), write loose
        # objects, which any number of processes may do at once; the next maintenance packs them.
        return [container.add_streamed_object(handle) for handle in handles]

    # -- reading ----------------------------------------------------------------------------------------------

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        """Return, for each key in order, whether the object exists; a string that is not a key is missing."""
        container = self._get_container()
        valid = list(dict.fromkeys(key for key in keys if _is_key(key)))
        present = _stored_keys(container, valid) if valid else set()
        return [_is_key(key) and key in present for key in keys]

    def list_objects(self) -> Iterator[str]:
        """Iterate over the keys of every object, loose or packed, each once.

        The listing reads through a container of its own, closed when the iteration ends, so that writes made
        while it runs (which refresh the backend's container) never pull the connection from under it.
        """
        from disk_objectstore import Container  # noqa: PLC0415 - see _container_object

        self._container_object()  # NOTE: checks the folder is a container before a second one opens it
        with Container(self._filepath) as container:
            yield from container.list_all_objects()

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return the container's settings and object counts; with ``detailed``, also its sizes in bytes.

        ``objects.loose`` counts loose files, including loose copies of packed objects not yet cleaned up.
        """
        container = self._get_container(fresh=True)
        counts = container.count_objects()
        info: dict[str, Any] = {
            'filepath': self._filepath,
            'container_id': container.container_id,
            'hash_type': container.hash_type,
            'compression_algorithm': container.compression_algorithm,
            'pack_size_target': container.pack_size_target,
            'loose_prefix_len': container.loose_prefix_len,
            'objects': {'loose': counts.loose, 'packed': counts.packed},
            'pack_files': counts.pack_files,
        }
        if detailed:
            sizes = container.get_total_size()
            info['sizes_bytes'] = {
                'loose': sizes.total_size_loose,
                'packed': sizes.total_size_packed,
                'packed_on_disk': sizes.total_size_packed_on_disk,
                'pack_files': sizes.total_size_packfiles_on_disk,
                'pack_index': sizes.total_size_packindexes_on_disk,
            }
        return info

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """Open the object with ``key`` for reading.

        The stream supports ``read``. It is never seeked here: seeking a compressed packed object makes
        disk-objectstore write an uncompressed loose copy of it.

        :raises FileNotFoundError: if there is no object with ``key``.
        """
        if not _is_key(key):
            raise self.missing_keys_error([key])
        from disk_objectstore.exceptions import NotExistent  # noqa: PLC0415 - see _container_object

        container = self._get_container()
        with contextlib.ExitStack() as stack:
            try:
                stream = stack.enter_context(container.get_object_stream(key))
            except NotExistent:
                raise self.missing_keys_error([key]) from None
            yield cast(BinaryIO, stream)

    def get_object_sizes(self, keys: Sequence[str]) -> list[int]:
        """Return the size of each object, in order, from the container's records: no object is read.

        :raises FileNotFoundError: naming every missing key.
        """
        unique = list(dict.fromkeys(keys))
        valid = [key for key in unique if _is_key(key)]
        sizes = {key: meta.size for key, meta in self._get_container().get_objects_meta(valid, skip_if_missing=True)}
        missing = [key for key in unique if sizes.get(key) is None]
        if missing:
            raise self.missing_keys_error(missing)
        return [cast(int, sizes[key]) for key in keys]

    def _iter_object_streams(self, keys: list[str]) -> Iterator[tuple[str, BinaryIO]]:
        """Stream the objects in one pass over the container, packed ones in the order they lie on disk."""
        if not keys:
            return
        with self._get_container().get_objects_stream_and_meta(keys, skip_if_missing=False) as triplets:
            for key, stream, _ in triplets:
                if stream is None:
                    # Deleted by another process after the check.
                    raise self.missing_keys_error([key])
                yield key, cast(BinaryIO, stream)

    # -- deleting and maintenance -----------------------------------------------------------------------------

    def _delete_objects(self, keys: list[str]) -> None:
        # NOTE: a packed object is only dropped from the index; full maintenance reclaims its bytes.
        self._get_container(fresh=True).delete_objects(keys)

    def maintain(
        self,
        dry_run: bool = False,
        live: bool = True,
        compress: bool = False,
        vacuum: bool | None = None,
        **kwargs: Any,
    ) -> MaintenanceReport:
        """Pack loose objects and clean up; with ``live=False``, also repack to reclaim the space of deletions.

        Live maintenance packs loose objects (deleting each loose copy once its pack is written) and removes
        loose copies of packed objects; it needs the pack lock and skips both steps, saying so, when another
        process holds it. Full maintenance also rewrites every pack file without the bytes of deleted or
        duplicate objects and VACUUMs the pack index. No object is ever deleted: the repository does not know
        which objects are referenced.

        :param dry_run: report what would be done and change nothing.
        :param live: do only what is safe while other processes read and write; ``False`` requires that nobody
            else uses the repository.
        :param compress: compress objects while packing (only where it saves space); full maintenance also
            compresses objects already packed.
        :param vacuum: VACUUM the pack index while cleaning; ``None`` means yes for full maintenance and no for live
            maintenance. Repacking, in full maintenance, VACUUMs the index in any case.
        :raises TypeError: for an unknown keyword argument.
        :raises ValueError: for ``vacuum=True`` with ``live=True``: VACUUM needs exclusive use of the index.
        :raises RepositoryError: if full maintenance finds the pack lock held by another process.
        """
        if kwargs:
            raise TypeError(f'unknown maintenance option(s) for {self.name!r}: {", ".join(sorted(kwargs))}')
        if vacuum is None:
            vacuum = not live
        if vacuum and live:
            raise ValueError('vacuum=True needs live=False: VACUUM rewrites the pack index and needs exclusive use')
        container = self._get_container(fresh=True)
        if dry_run:
            return self._dry_run_report(live, vacuum, _figures(container))
        with self._pack_lock() as locked:
            before = _figures(self._get_container(fresh=True))
            if not locked and live:
                step = f'skipped packing and cleaning: another process holds the pack lock {PACK_LOCK_NAME}'
                return MaintenanceReport(dry_run, live, (step,), {'before': before, 'after': before})
            if not locked:
                raise RepositoryError(
                    f'Full maintenance of {self._filepath} needs exclusive use, but another process holds the pack '
                    f'lock {PACK_LOCK_NAME}'
                )
            stale = self._remove_stale_pack_locks()
            report = self._maintain_locked(live, compress, vacuum, before)
            if not stale:
                return report
            step = f'removed pack locks left by dead writers: {", ".join(stale)}'
            details = {**report.details, 'stale_pack_locks': stale}
            return MaintenanceReport(report.dry_run, report.live, (step, *report.steps), details)

    def _dry_run_report(self, live: bool, vacuum: bool, before: dict[str, int]) -> MaintenanceReport:
        steps = [f'would pack {before["loose_not_packed"]} loose objects into pack files']
        details: dict[str, Any] = {'before': before, 'objects_to_pack': before['loose_not_packed']}
        if not live:
            reclaimable = before['pack_files_bytes'] - before['packed_bytes_on_disk']
            steps.append(f'would repack {before["pack_files"]} pack files, reclaiming about {reclaimable} bytes')
            details['reclaimable_bytes'] = reclaimable
        steps.append('would remove loose copies of packed objects' + (' and VACUUM the pack index' if vacuum else ''))
        return MaintenanceReport(True, live, tuple(steps), details)

    def _maintain_locked(self, live: bool, compress: bool, vacuum: bool, before: dict[str, int]) -> MaintenanceReport:
        from disk_objectstore import CompressMode  # noqa: PLC0415 - see _container_object

        if not live and (Path(self._filepath) / 'packs' / '-1').exists():
            raise RepositoryError(
                f'Cannot repack {self._filepath}: the temporary pack file packs/-1 of an interrupted repack exists'
            )
        steps: list[str] = []
        details: dict[str, Any] = {'before': before}
        container = self._get_container(fresh=True)
        container.pack_all_loose(compress=CompressMode.AUTO if compress else CompressMode.NO, clean_loose_per_pack=True)
        packed = container.count_objects().packed - before['packed']
        steps.append(f'packed {packed} loose objects into pack files')
        details['packed_objects'] = packed
        if not live:
            pack_bytes = container.get_total_size().total_size_packfiles_on_disk
            container.repack(compress_mode=CompressMode.AUTO if compress else CompressMode.KEEP)
            reclaimed = pack_bytes - container.get_total_size().total_size_packfiles_on_disk
            steps.append(f'repacked the pack files and VACUUMed the pack index, reclaiming {reclaimed} bytes')
            details['reclaimed_bytes'] = reclaimed
        container.clean_storage(vacuum=vacuum)
        steps.append('removed loose copies of packed objects' + (' and VACUUMed the pack index' if vacuum else ''))
        details['after'] = _figures(self._get_container(fresh=True))
        return MaintenanceReport(False, live, tuple(steps), details)


def _pack_files(root: Path) -> list[Path]:
    """Return the pack files of the container in ``root``, in the order of their numbers."""
    return sorted((path for path in (root / 'packs').iterdir() if path.name.isdigit()), key=lambda path: int(path.name))


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _figures(container: Container) -> dict[str, int]:
    """Return object counts and sizes in bytes of ``container``, read without changing anything."""
    counts = container.count_objects()
    sizes = container.get_total_size()
    distinct = sum(1 for _ in container.list_all_objects())
    return {
        'loose': counts.loose,
        'packed': counts.packed,
        'pack_files': counts.pack_files,
        'loose_not_packed': max(distinct - counts.packed, 0),
        'loose_bytes': sizes.total_size_loose,
        'packed_bytes': sizes.total_size_packed,
        'packed_bytes_on_disk': sizes.total_size_packed_on_disk,
        'pack_files_bytes': sizes.total_size_packfiles_on_disk,
        'pack_index_bytes': sizes.total_size_packindexes_on_disk,
    }
