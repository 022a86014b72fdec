"""``create_archive``: write a whole profile, or the export closure of some nodes, with any archive format.

Written once over :class:`~provstore.storage.EntityStorage` rows and the :class:`~provstore.archive.ArchiveWriter`
protocol. Rows are read and written in batches; only the sets of selected ids and file keys are held in memory.
Authorisation infos are never exported (they hold credentials of this machine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ArchiveSummary:
    """What an archive holds (or would hold, after a dry run)."""

    path: Path
    counts: Mapping[str, int]
    """Rows per entity kind, by the kind's name (``'node'``, ``'link'``, ...)."""
    object_count: int
    object_bytes: int
    """The total size of the objects, as read from the source repository."""
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
    keys: set[str] = field(default_factory=set)


def create_archive(
    storage: EntityStorage,
    path: Path,
    archive_format: type[ArchiveFormat],
    *,
    node_ids: Iterable[int] | None = None,
    include_comments: bool = True,
    include_logs: bool = True,
    compression: int = 6,
    dry_run: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> ArchiveSummary:
    """Write an archive of ``storage`` at ``path``: every entity, or the nodes of ``node_ids`` and every node the
    export rules reach from them, with their groups (and memberships of those nodes), users and computers.

    :param compression: 0 (stored) to 9.
    :param dry_run: write nothing; return what the archive would hold.
    :raises ArchiveExportError: if a selected process node is not sealed, or ``path`` exists and ``force`` is false.
    :raises NotExistentError: naming the ``node_ids`` that are not stored nodes.
    """
    from provstore.orm.traversal import get_nodes_export  # noqa: PLC0415 - the ORM only when an archive is made

    path = Path(path)
    if not 0 <= compression <= 9 or isinstance(compression, bool):
        raise ValueError(f'compression must be an integer from 0 to 9, got {compression!r}')
    if path.exists() and not force and not dry_run:
        raise ArchiveExportError(f'{path}: the file exists: use --force (force=True) to overwrite it')
    selection = _Selection(comments=include_comments, logs=include_logs)
    if node_ids is not None:
        selection.nodes = get_nodes_export(node_ids, storage)
        selection.groups, selection.users, selection.computers = set(), set(), set()
    # A whole profile is scanned while its node rows are written (one read of them, not two); a start set before
    # anything is written, as it decides which users and computers come first.
    scan_while_writing = node_ids is None and not dry_run
    if not scan_while_writing:
        _scan(storage, selection)
    counts = {entity.value: 0 for entity in EXPORTED_ENTITIES}
    if dry_run:
        for entity in EXPORTED_ENTITIES:
            counts[entity.value] = sum(1 for _ in _iter_selected(storage, entity, selection))
        count, size = _copy_objects(storage, selection.keys, None, progress)
        return ArchiveSummary(path, counts, count, size, dry_run=True)
    writer = archive_format.open_writer(path, compression=compression, force=force)
    try:
        visit, unsealed = _node_scanner(storage, selection)
        for entity in EXPORTED_ENTITIES:
            scan = visit if scan_while_writing and entity is EntityType.NODE else None
            counts[entity.value] = _write_rows(storage, entity, selection, writer.write_rows, progress, visit=scan)
            _refuse_unsealed(unsealed)
        writer.write_metadata(
            {'entity_counts': dict(counts), 'include_comments': include_comments, 'include_logs': include_logs}
        )
        count, size = _copy_objects(storage, selection.keys, writer.write_object, progress)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return ArchiveSummary(path, counts, count, size)


def _scan(storage: EntityStorage, selection: _Selection) -> None:
    """Refuse unsealed process nodes; collect the file keys and, for a start set, the groups, users, computers."""
    visit, unsealed = _node_scanner(storage, selection)
    for row in _iter_selected(storage, EntityType.NODE, selection):
        visit(row)
    _refuse_unsealed(unsealed)
    if selection.groups is None or selection.users is None:
        return
    selection.groups.update(row['dbgroup_id'] for row in _iter_selected(storage, EntityType.GROUP_NODE, selection))
    selection.users.update(row['user_id'] for row in _iter_selected(storage, EntityType.GROUP, selection))
    selection.users.update(row['user_id'] for row in _iter_selected(storage, EntityType.COMMENT, selection))


def _node_scanner(storage: EntityStorage, selection: _Selection) -> tuple[Callable[[Row], None], list[int]]:
    """Return a function that takes note of a node row (its file keys; for a start set its user and computer; its pk
    if it is an unsealed process), and the list of unsealed pks it fills."""
    from provstore.repository import Repository  # noqa: PLC0415

    backend = storage.get_repository()
    unsealed: list[int] = []

    def visit(row: Row) -> None:
        if str(row['node_type']).startswith('process.') and (row['attributes'] or {}).get('sealed') is not True:
            unsealed.append(row['id'])
        if row['repository_metadata']:
            selection.keys.update(Repository.from_serialized(backend, row['repository_metadata']).get_file_keys())
        if selection.users is not None and selection.computers is not None:
            selection.users.add(row['user_id'])
            if row['dbcomputer_id'] is not None:
                selection.computers.add(row['dbcomputer_id'])

    return visit, unsealed


def _refuse_unsealed(unsealed: list[int]) -> None:
    if unsealed:
        shown = ', '.join(map(str, unsealed[:10])) + (' ...' if len(unsealed) > 10 else '')
        raise ArchiveExportError(f'{len(unsealed)} process node(s) are not sealed and cannot be exported: pk {shown}')


def _iter_selected(storage: EntityStorage, entity: EntityType, selection: _Selection) -> Iterator[Row]:
    """Yield the rows of ``entity`` the archive holds, in batches."""
    nodes = selection.nodes
    if entity is EntityType.NODE and nodes is not None:
        ordered = sorted(nodes)
        for start in range(0, len(ordered), BATCH_SIZE):
            yield from sorted(storage.get_rows(entity, 'id', ordered[start : start + BATCH_SIZE]), key=_by_id)
        return
    if (entity is EntityType.COMMENT and not selection.comments) or (entity is EntityType.LOG and not selection.logs):
        return
    keep = _row_filter(entity, selection)
    for row in storage.iter_rows(entity, BATCH_SIZE):
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
    if nodes is None:
        return None
    if entity is EntityType.LINK:
        return lambda row: row['input_id'] in nodes and row['output_id'] in nodes
    return lambda row: row['dbnode_id'] in nodes


def _by_id(row: Row) -> Any:
    return row['id']


def _write_rows(
    storage: EntityStorage,
    entity: EntityType,
    selection: _Selection,
    write: Callable[[EntityType, list[Row]], None],
    progress: ProgressCallback | None,
    *,
    visit: Callable[[Row], None] | None = None,
) -> int:
    """Write the selected rows of ``entity`` in batches (each shown to ``visit`` first, if given); return how many."""
    batch: list[Row] = []
    done = 0
    for row in _iter_selected(storage, entity, selection):
        if visit is not None:
            visit(row)
        batch.append(row)
        if len(batch) >= BATCH_SIZE:
            write(entity, batch)
            done += len(batch)
            batch = []
            if progress is not None:
                progress(entity.value, done, 0)
    if batch:
        write(entity, batch)
        done += len(batch)
    if progress is not None:
        progress(entity.value, done, done)
    return done


def _copy_objects(
    storage: EntityStorage,
    keys: set[str],
    write: Callable[[str, Any], int] | None,
    progress: ProgressCallback | None,
) -> tuple[int, int]:
    """Stream every object of ``keys`` to ``write`` (or only measure it); return the count and total bytes."""
    total = len(keys)
    count = size = 0
    if progress is not None and total:
        progress('objects', 0, total)
    for key, stream in storage.get_repository().iter_object_streams(sorted(keys)):
        if write is not None:
            size += write(key, stream)
        else:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
        count += 1
        if progress is not None:
            progress('bytes', size, 0)
            progress('objects', count, total)
    return count, size
