"""``create_archive``: write a whole profile, or the export closure of a start set, with any archive format.

Written once over :class:`~provstore.storage.EntityStorage` rows and the :class:`~provstore.archive.ArchiveWriter`
protocol. Rows are read and written in batches; the selected ids are held in memory, the file keys in a scratch
SQLite table beside the destination (removed afterwards), so memory stays flat in the number of objects.

What a start set brings is what aiida-core's ``create_archive(entities=...)`` brings:

- a node: itself and every node the export rules reach from it;
- a group: itself and all its nodes, as start nodes (so their closure too), with its memberships;
- a computer or a user: itself only;
- every exported node brings its user and computer, its comments (and their users) and logs unless left out;
- with auth infos included, every auth info of an exported computer, and its user.

Groups are exported only when they are in the start set (or in a whole profile), and then with every member.

Objects are copied by a thread of their own (:class:`_ObjectCopy`) while the rows are written: the pass over the
nodes hands it each batch's new file keys as it finds them.

Every row is read inside :meth:`EntityStorage.snapshot() <provstore.storage.EntityStorage.snapshot>`: on a backend
that implements it (``psql_dos``, ``sqlite_dos``) the archive is the profile as it was when the reading began, however
much others write meanwhile. On a backend that keeps the default, rows written or deleted during the run may be
partly in the archive: make archives of such a profile while nobody writes to it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provstore.exceptions import ArchiveExportError
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.archive.format import ArchiveFormat

__all__ = ['EXPORTED_ENTITIES', 'ArchiveSummary', 'ProgressCallback', 'create_archive']

EXPORTED_ENTITIES = (
    EntityType.USER,
    EntityType.COMPUTER,
    EntityType.AUTHINFO,
    EntityType.NODE,
    EntityType.GROUP,
    EntityType.GROUP_NODE,
    EntityType.LINK,
    EntityType.COMMENT,
    EntityType.LOG,
)
"""The entity kinds an archive holds, in the order they are written (rows referred to come first)."""

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``: ``stage`` is an entity kind's name, ``'objects'`` (objects copied) or
``'bytes'`` (their bytes so far); ``total`` is 0 when unknown."""

BATCH_SIZE = 1000

KEY_BATCH_SIZE = 10_000
"""File keys streamed (or measured) per request to the repository: a packed store reads each batch in disk order."""


@dataclass(frozen=True)
class ArchiveSummary:
    """What an archive holds (or would hold, after a dry run)."""

    path: Path
    counts: Mapping[str, int]
    """Rows per entity kind, by the kind's name (``'node'``, ``'link'``, ...)."""
    object_count: int
    object_bytes: int
    """The total size of the objects, as the source repository gives it."""
    dry_run: bool = False


@dataclass
class _Selection:
    """The ids an archive holds per kind; ``None`` for every row of that kind."""

    nodes: set[int] | None = None
    groups: set[int] | None = None
    users: set[int] | None = None
    computers: set[int] | None = None
    comments: bool = True
    logs: bool = True
    authinfos: bool = False


class _KeyTable:
    """The distinct file keys of an archive, in a scratch SQLite file: added in any order, read back sorted."""

    def __init__(self, folder: Path, prefix: str) -> None:
        descriptor, name = tempfile.mkstemp(prefix=prefix, suffix='.keys.sqlite3', dir=folder)
        os.close(descriptor)
        self.path = Path(name)
        try:
            self._connection = sqlite3.connect(name)
            # NOTE: scratch data, removed afterwards: no journal and no sync to disk.
            self._connection.execute('PRAGMA journal_mode = OFF')
            self._connection.execute('PRAGMA synchronous = OFF')
            self._connection.execute('CREATE TABLE keys (key TEXT PRIMARY KEY) WITHOUT ROWID')
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise

    def __enter__(self) -> _KeyTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.close()
        self.path.unlink(missing_ok=True)

    def add(self, keys: Iterable[str]) -> list[str]:
        """Add ``keys``; return those not added before, each once, in their order."""
        insert = self._connection.execute
        return [key for key in dict.fromkeys(keys) if insert('INSERT OR IGNORE INTO keys VALUES (?)', (key,)).rowcount]

    def count(self) -> int:
        self._connection.commit()
        (count,) = self._connection.execute('SELECT count(*) FROM keys').fetchone()
        return int(count)

    def batches(self, size: int) -> Iterator[list[str]]:
        """Yield the keys, distinct and sorted, ``size`` at a time."""
        self._connection.commit()
        after = ''
        while batch := [
            key
            for (key,) in self._connection.execute(
                'SELECT key FROM keys WHERE key > ? ORDER BY key LIMIT ?', (after, size)
            )
        ]:
            yield batch
            after = batch[-1]


def create_archive(
    storage: EntityStorage,
    path: Path,
    archive_format: type[ArchiveFormat],
    *,
    node_ids: Iterable[int] | None = None,
    group_ids: Iterable[int] | None = None,
    computer_ids: Iterable[int] | None = None,
    user_ids: Iterable[int] | None = None,
    include_comments: bool = True,
    include_logs: bool = True,
    include_authinfos: bool = False,
    compression: int = 6,
    dry_run: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    **traversal_rules: bool,
) -> ArchiveSummary:
    """Write an archive of ``storage`` at ``path``: every entity when no ``*_ids`` is given, else the start set they
    make and what it brings (see the module's docstring).

    :param traversal_rules: the toggleable export rules to switch, by aiida-core's names (``input_calc_forward``,
        ``create_backward``, ``return_backward``, ``input_work_forward``, ``call_calc_backward``,
        ``call_work_backward``); see :data:`~provstore.orm.traversal.EXPORT_RULES`.
    :param include_authinfos: also archive the auth infos of the archived computers (they may hold credentials).
    :param compression: 0 (stored) to 9.
    :param dry_run: write nothing; return what the archive would hold.
    :raises ArchiveExportError: if a selected process node is not sealed, or ``path`` exists and ``force`` is false,
        or the folder of ``path`` does not exist.
    :raises NotExistentError: naming the ids of the start set that are not stored.
    :raises ValueError: for an unknown rule, or a change to a rule aiida-core keeps fixed.
    """
    from provstore.orm.traversal import EXPORT_RULES, link_types  # noqa: PLC0415 - the ORM only when archiving

    path = Path(path).absolute()
    if not 0 <= compression <= 9 or isinstance(compression, bool):
        raise ValueError(f'compression must be an integer from 0 to 9, got {compression!r}')
    link_types(EXPORT_RULES, traversal_rules, 'export')
    if path.exists() and not force and not dry_run:
        raise ArchiveExportError(f'{path}: the file exists: use --force (force=True) to overwrite it')
    if not path.parent.is_dir():
        raise ArchiveExportError(f'{path}: the folder {path.parent} does not exist')
    selection = _Selection(comments=include_comments, logs=include_logs, authinfos=include_authinfos)
    details: dict[str, Any] = {
        'entities_starting_set': None,
        'include_authinfos': include_authinfos,
        'include_comments': include_comments,
        'include_logs': include_logs,
        'graph_traversal_rules': {name: traversal_rules.get(name, rule.default) for name, rule in EXPORT_RULES.items()},
    }
    with storage.snapshot(), _KeyTable(path.parent, f'.{path.name}.') as keys:
        if not (node_ids is None and group_ids is None and computer_ids is None and user_ids is None):
            details['entities_starting_set'] = _select_start_set(
                storage, selection, node_ids or (), group_ids or (), computer_ids or (), user_ids or (), traversal_rules
            )
        counts = {entity.value: 0 for entity in EXPORTED_ENTITIES}
        if dry_run:
            for entity in _WRITE_ORDER:
                counts[entity.value] = _write_rows(storage, entity, selection, keys, None, None, progress)
            count, size = _measure_objects(storage, keys, progress)
            return ArchiveSummary(path, counts, count, size, dry_run=True)
        writer = archive_format.open_writer(path, compression=compression, force=force)
        copy = _ObjectCopy(storage, writer.write_object, progress)
        try:
            copy.start()
            for entity in _WRITE_ORDER:
                counts[entity.value] = _write_rows(storage, entity, selection, keys, writer.write_rows, copy, progress)
                if entity is EntityType.NODE:
                    copy.total = keys.count()
            count, size = copy.finish()
            writer.write_metadata({'entity_counts': dict(counts), **details})
            writer.finish()
        except BaseException:
            copy.stop()
            writer.abort()
            raise
    return ArchiveSummary(path, counts, count, size)


def _select_start_set(  # noqa: PLR0917
    storage: EntityStorage,
    selection: _Selection,
    node_ids: Iterable[int],
    group_ids: Iterable[int],
    computer_ids: Iterable[int],
    user_ids: Iterable[int],
    rules: Mapping[str, bool],
) -> dict[str, list[str]]:
    """Fill ``selection`` with the start set and the nodes the rules reach; return the start set's identities, by
    kind, as aiida-core records them (uuids; emails for users)."""
    from provstore.orm.traversal import get_nodes_export  # noqa: PLC0415

    groups = _stored_rows(storage, EntityType.GROUP, group_ids)
    computers = _stored_rows(storage, EntityType.COMPUTER, computer_ids)
    users = _stored_rows(storage, EntityType.USER, user_ids)
    nodes = set(node_ids)
    start = set(nodes)
    if groups:
        start.update(row['dbnode_id'] for row in storage.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', sorted(groups)))
    selection.nodes = get_nodes_export(start, storage, **rules)
    selection.groups, selection.computers, selection.users = set(groups), set(computers), set(users)
    identities = {
        'user': [str(row['email']) for row in users.values()],
        'computer': [str(row['uuid']) for row in computers.values()],
        'group': [str(row['uuid']) for row in groups.values()],
        'node': [str(row['uuid']) for row in _rows_by_id(storage, EntityType.NODE, sorted(nodes))],
    }
    return {kind: sorted(values) for kind, values in identities.items() if values}


def _stored_rows(storage: EntityStorage, entity: EntityType, ids: Iterable[int]) -> dict[int, Row]:
    """Return the rows of ``ids`` by id.

    :raises NotExistentError: naming the ids with no row.
    """
    from provstore.orm.exceptions import NotExistentError  # noqa: PLC0415

    wanted = sorted(set(ids))
    for pk in wanted:
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise TypeError(f'{entity.value} pks must be integers, got {pk!r}')
    rows = {row['id']: row for row in _rows_by_id(storage, entity, wanted)}
    missing = [pk for pk in wanted if pk not in rows]
    if missing:
        raise NotExistentError(f'No {entity.value} with pk {", ".join(map(str, missing))}')
    return rows


def _rows_by_id(storage: EntityStorage, entity: EntityType, ids: list[int]) -> Iterator[Row]:
    """Yield the rows of ``ids`` (sorted) by ascending id, reading a batch at a time."""
    for start in range(0, len(ids), BATCH_SIZE):
        yield from sorted(storage.get_rows(entity, 'id', ids[start : start + BATCH_SIZE]), key=_by_id)


_WRITE_ORDER = (
    EntityType.NODE,
    EntityType.COMPUTER,
    EntityType.AUTHINFO,
    EntityType.GROUP,
    EntityType.GROUP_NODE,
    EntityType.LINK,
    EntityType.COMMENT,
    EntityType.LOG,
    EntityType.USER,
)
"""The order rows are read in: nodes first, which name the computers (of a start set) to archive; users last, as
every other kind names the users to archive."""

_USER_COLUMNS = {
    EntityType.NODE: 'user_id',
    EntityType.GROUP: 'user_id',
    EntityType.COMMENT: 'user_id',
    EntityType.AUTHINFO: 'aiidauser_id',
}
"""The column naming the user of a row, for the kinds whose rows bring their user into a start set's archive."""


def _iter_selected(storage: EntityStorage, entity: EntityType, selection: _Selection) -> Iterator[Row]:
    """Yield the rows of ``entity`` the archive holds, in text form, in batches."""
    nodes = selection.nodes
    if entity is EntityType.NODE and nodes is not None:
        yield from storage.iter_text_rows(entity, BATCH_SIZE, ids=sorted(nodes))
        return
    if (
        (entity is EntityType.COMMENT and not selection.comments)
        or (entity is EntityType.LOG and not selection.logs)
        or (entity is EntityType.AUTHINFO and not selection.authinfos)
        or (entity in (EntityType.GROUP, EntityType.GROUP_NODE) and selection.groups == set())
    ):
        return
    keep = _row_filter(entity, selection)
    for row in storage.iter_text_rows(entity, BATCH_SIZE):
        if keep is None or keep(row):
            yield row


def _row_filter(entity: EntityType, selection: _Selection) -> Callable[[Row], bool] | None:
    """Return the test a row of ``entity`` passes to be archived, or ``None`` to keep every row."""
    nodes = selection.nodes
    ids = {
        EntityType.USER: selection.users,
        EntityType.COMPUTER: selection.computers,
        EntityType.GROUP: selection.groups,
    }.get(entity)
    if entity in (EntityType.USER, EntityType.COMPUTER, EntityType.GROUP):
        return None if ids is None else (lambda row: row['id'] in ids)
    if entity is EntityType.AUTHINFO:
        computers = selection.computers
        return None if computers is None else (lambda row: row['dbcomputer_id'] in computers)
    if nodes is None:
        return None
    if entity is EntityType.LINK:
        return lambda row: row['input_id'] in nodes and row['output_id'] in nodes
    groups = selection.groups
    if entity is EntityType.GROUP_NODE and groups is not None:
        return lambda row: row['dbgroup_id'] in groups and row['dbnode_id'] in nodes
    return lambda row: row['dbnode_id'] in nodes


def _by_id(row: Row) -> Any:
    return row['id']


CHECKPOINT_ATTRIBUTE = 'checkpoints'
"""The attribute of a process node holding its serialised state: left out of archives, as aiida-core does."""


def without_checkpoints(row: Row) -> Row:
    """Return a node row in text form without the checkpoints of a process (the row itself when it has none)."""
    attributes = row.get('attributes')
    if (
        attributes
        and str(row.get('node_type')).startswith('process.')
        and f'"{CHECKPOINT_ATTRIBUTE}"' in attributes
        and isinstance(decoded := json.loads(attributes), dict)
        and CHECKPOINT_ATTRIBUTE in decoded
    ):
        del decoded[CHECKPOINT_ATTRIBUTE]
        return {**row, 'attributes': json.dumps(decoded, ensure_ascii=False)}
    return row


class _NodeCheck:
    """What the pass over the archived nodes gathers: the unsealed processes, the file keys, and (for a start set)
    the users and computers the nodes bring."""

    def __init__(
        self, storage: EntityStorage, selection: _Selection, keys: _KeyTable, copy: _ObjectCopy | None
    ) -> None:
        self._repository = storage.get_repository()
        self._selection = selection
        self._keys = keys
        self._copy = copy
        self.unsealed: list[int] = []

    def __call__(self, batch: list[Row]) -> list[Row]:
        from provstore.repository import Repository  # noqa: PLC0415

        keys: list[str] = []
        computers = self._selection.computers
        for row in batch:
            if str(row['node_type']).startswith('process.') and not _is_sealed(row['attributes']):
                self.unsealed.append(row['id'])
            if row['repository_metadata'] not in (None, '{}'):
                serialized = json.loads(row['repository_metadata'])
                keys.extend(Repository.from_serialized(self._repository, serialized).get_file_keys())
            if computers is not None and row['dbcomputer_id'] is not None:
                computers.add(row['dbcomputer_id'])
        new = self._keys.add(keys)
        if self._copy is not None and new:
            self._copy.put(new)
        return [without_checkpoints(row) for row in batch]

    def check(self) -> None:
        """:raises ArchiveExportError: naming the unsealed process nodes."""
        if self.unsealed:
            shown = ', '.join(map(str, self.unsealed[:10])) + (' ...' if len(self.unsealed) > 10 else '')
            raise ArchiveExportError(
                f'{len(self.unsealed)} process node(s) are not sealed and cannot be exported: pk {shown}'
            )


def _is_sealed(attributes: str | None) -> bool:
    if not attributes or '"sealed"' not in attributes:
        return False
    decoded = json.loads(attributes)
    return isinstance(decoded, dict) and decoded.get('sealed') is True


def _write_rows(  # noqa: PLR0917
    storage: EntityStorage,
    entity: EntityType,
    selection: _Selection,
    keys: _KeyTable,
    write: Callable[[EntityType, list[Row]], None] | None,
    copy: _ObjectCopy | None,
    progress: ProgressCallback | None,
) -> int:
    """Write (or, without ``write``, only count) the selected rows of ``entity`` in batches; return how many.

    Nodes are checked on the way (see :class:`_NodeCheck`), their new file keys handed to ``copy``; the users the
    rows name join a start set's selection.
    """
    node_check = _NodeCheck(storage, selection, keys, copy) if entity is EntityType.NODE else None
    users = selection.users if entity in _USER_COLUMNS else None
    user_column = _USER_COLUMNS.get(entity, '')
    done = 0
    batch: list[Row] = []
    for row in _iter_selected(storage, entity, selection):
        batch.append(row)
        if len(batch) >= BATCH_SIZE:
            done += _flush(entity, batch, node_check, users, user_column, write)
            batch = []
            if progress is not None:
                progress(entity.value, done, 0)
            if copy is not None:
                copy.report()
    done += _flush(entity, batch, node_check, users, user_column, write)
    if node_check is not None:
        node_check.check()
    if progress is not None:
        progress(entity.value, done, done)
    return done


def _flush(  # noqa: PLR0917
    entity: EntityType,
    batch: list[Row],
    node_check: _NodeCheck | None,
    users: set[int] | None,
    user_column: str,
    write: Callable[[EntityType, list[Row]], None] | None,
) -> int:
    if not batch:
        return 0
    if node_check is not None:
        batch = node_check(batch)
    if users is not None:
        users.update(row[user_column] for row in batch)
    if write is not None:
        write(entity, batch)
    return len(batch)


def _measure_objects(storage: EntityStorage, keys: _KeyTable, progress: ProgressCallback | None) -> tuple[int, int]:
    """Return the count and total bytes of the objects of ``keys``, without reading them where the repository knows
    sizes (a dry run)."""
    repository = storage.get_repository()
    total = keys.count()
    count = size = 0
    if progress is not None and total:
        progress('objects', 0, total)
    for batch in keys.batches(KEY_BATCH_SIZE):
        size += sum(repository.get_object_sizes(batch))
        count += len(batch)
        if progress is not None:
            progress('bytes', size, 0)
            progress('objects', count, total)
    return count, size


class _ObjectCopy(threading.Thread):
    """Copies objects to the writer in a thread of its own, a batch of keys at a time, as the node pass finds them.

    The repository reads and the archive's writes release the GIL, so the copy goes on while the main thread writes
    rows. Progress is reported by the main thread only (:meth:`report`), from what the copy records.
    """

    def __init__(
        self, storage: EntityStorage, write: Callable[[str, Any], int], progress: ProgressCallback | None
    ) -> None:
        super().__init__(name='provstore-archive-objects', daemon=True)
        self._repository = storage.get_repository()
        self._write = write
        self._progress = progress
        self._keys: queue.Queue[list[str] | None] = queue.Queue(maxsize=4)
        self._copied: collections.deque[tuple[int, int]] = collections.deque()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self.total = 0
        """How many objects there are, once the node pass has found them all (0 until then)."""
        self.count = self.bytes = 0
        self._reported = 0

    def put(self, keys: list[str] | None) -> None:
        """Queue ``keys`` for copying (``None``: there are no more), waiting while the queue is full; raise what the
        copy raised."""
        while True:
            self._raise()
            try:
                self._keys.put(keys, timeout=0.1)
            except queue.Full:
                continue
            return

    def run(self) -> None:
        try:
            while (keys := self._keys.get()) is not None:
                for key, stream in self._repository.iter_object_streams(keys):
                    if self._stopping.is_set():
                        return
                    self.bytes += self._write(key, stream)
                    self.count += 1
                    self._copied.append((self.count, self.bytes))
        except BaseException as exc:
            self._error = exc

    def report(self) -> None:
        """Report the objects copied since the last report (on the main thread)."""
        while self._copied:
            count, size = self._copied.popleft()
            self._reported = count
            if self._progress is not None:
                self._progress('bytes', size, 0)
                self._progress('objects', count, self.total)

    def finish(self) -> tuple[int, int]:
        """Wait for every queued object to be copied, reporting progress; return the count and total bytes."""
        if self._progress is not None and self.total:
            self._progress('objects', self._reported, self.total)  # NOTE: the total is known from here on
        self.put(None)
        while self.is_alive():
            self.join(0.1)
            self.report()
        self.report()
        self._raise()
        return self.count, self.bytes

    def stop(self) -> None:
        """Stop copying (the archive is abandoned) and wait for the thread to end."""
        self._stopping.set()
        if self.ident is None:
            return
        with contextlib.suppress(queue.Empty):
            while True:
                self._keys.get_nowait()
        self._keys.put(None)
        self.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
