"""``import_archive``: bring the entities and files of an archive, of any format, into a profile's storage.

Written once over :class:`~provstore.storage.EntityStorage` rows and the :class:`~provstore.archive.ArchiveReader`
protocol. Identity is the UUID (users: the email); what the profile already holds is skipped (or merged, for the
extras of nodes and for comments, as the modes say). Unlike aiida-core, a group the profile already holds also gains
the archive's members of it that it lacks.

What the import learns about the archive's nodes (their ids in the profile) and objects lives in a temporary SQLite
file, not in memory, so memory stays flat whatever the size of the archive. On SQLite the profile's write lock is
held from the first row to the commit, object copies included.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import sqlite3
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

from provstore.archive.create import EXPORTED_ENTITIES, without_checkpoints
from provstore.exceptions import ArchiveError, ProvstoreError
from provstore.storage import EntityStorage, EntityType, Row
from provstore.storage.textrows import time_from_text

if TYPE_CHECKING:
    from provstore.archive.create import ProgressCallback
    from provstore.archive.format import ArchiveFormat, ArchiveReader

__all__ = [
    'COMMENT_MODES',
    'DUPLICATE_LABEL_TEMPLATE',
    'EXTRAS_MODES_EXISTING',
    'EXTRAS_MODES_NEW',
    'IMPORT_GROUP_TYPE',
    'ImportSummary',
    'import_archive',
]

ExtrasModeExisting = Literal['keep_existing', 'update_existing', 'mirror', 'none']
ExtrasModeNew = Literal['keep', 'none']
CommentMode = Literal['leave', 'newest', 'overwrite']

EXTRAS_MODES_EXISTING: tuple[ExtrasModeExisting, ...] = ('keep_existing', 'update_existing', 'mirror', 'none')
"""For nodes the profile already holds: keep its extras and add the archive's new keys (``keep_existing``), also
take the archive's value of keys in both (``update_existing``), take the archive's extras as they are (``mirror``),
or leave the extras as they are (``none``)."""
EXTRAS_MODES_NEW: tuple[ExtrasModeNew, ...] = ('keep', 'none')
"""For new nodes: keep the archive's extras (but aiida-core's private ``_aiida_`` keys), or none."""
COMMENT_MODES: tuple[CommentMode, ...] = ('leave', 'newest', 'overwrite')
"""For comments the profile already holds: leave them, take the archive's when newer, or always take it."""

DUPLICATE_LABEL_TEMPLATE = '{0} (Imported #{1})'
"""How a new group or computer is renamed when its label is taken (aiida-core's form, so both name alike)."""
DUPLICATE_LABEL_MAX = 100

IMPORT_GROUP_TYPE = 'core.import'
"""The ``type_string`` of the group an import makes (aiida-core's ``ImportGroup``)."""

BATCH_SIZE = 1000
MEMBERS_PER_CALL = 20_000
"""Nodes added to the import group per call of ``add_group_nodes`` (one statement, whatever the number)."""
OBJECT_BATCH_BYTES = 1024 * 1024 * 1024
OBJECT_BATCH_COUNT = 20_000
"""Objects are written to the repository in batches of at most this many bytes and objects: each batch is one
sync of a packed store, and its streams are held in memory meanwhile."""
_CHUNK = 1 << 20
_PRIVATE_EXTRAS_PREFIX = '_aiida_'


@dataclass(frozen=True)
class ImportSummary:
    """What an import added, skipped and renamed (or would, after a dry run)."""

    path: Path
    added: Mapping[str, int]
    """New rows of the archive per entity kind, by the kind's name (``'node'``, ``'link'``, ...); the import group
    and its members are not counted."""
    existing: Mapping[str, int]
    """Rows of the archive the profile already held, per entity kind."""
    relabelled: Mapping[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per entity kind (``'group'``, ``'computer'``), the ``(label, new label)`` of new rows whose label was taken."""
    updated: Mapping[str, int] = field(default_factory=dict)
    """Existing rows changed by a merge mode: ``'node'`` (extras), ``'comment'`` (content)."""
    object_count: int = 0
    """Repository objects the profile lacked and received."""
    object_bytes: int = 0
    import_group: str | None = None
    """The label of the group the archive's nodes were added to, if any."""
    dry_run: bool = False


def import_archive(
    storage: EntityStorage,
    path: Path,
    archive_format: type[ArchiveFormat],
    *,
    extras_mode_existing: ExtrasModeExisting = 'keep_existing',
    extras_mode_new: ExtrasModeNew = 'keep',
    comment_mode: CommentMode = 'leave',
    import_group: str | bool = True,
    include_authinfos: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import the archive at ``path`` into ``storage``, atomically: every row in one transaction, the objects the
    profile lacks written into the repository just before the commit. A failure at any moment leaves the profile's
    rows as they were (at worst objects nothing refers to, which maintenance removes).

    The archive is checked first (:meth:`ArchiveFormat.verify`), and the content of every object the profile lacks
    is hashed before the first is written: a defective archive is refused and nothing changes.

    :param import_group: ``True`` adds every node of the archive to a new group labelled by the time of import,
        a string to the group of that label (made if missing), ``False`` to no group.
    :param include_authinfos: also import the archive's authorisation infos (left out by default: they hold
        another machine's credentials).
    :param progress: called as ``progress(stage, done, total)``: stages are the entity kinds (``'node'``, ...),
        then ``'hashing'`` and ``'objects'`` (counts of objects), ``'bytes'`` (bytes written), and ``'commit'``
        (0 of 1 just before the commit, 1 of 1 after it).
    :param dry_run: run the import in a transaction that is rolled back and write no object: the summary says
        exactly what would be added, merged and renamed.
    :raises ArchiveError: naming the first defect of an archive that is not sound.
    :raises ValueError: for an unknown mode.
    """
    _check_choice('extras_mode_existing', extras_mode_existing, EXTRAS_MODES_EXISTING)
    _check_choice('extras_mode_new', extras_mode_new, EXTRAS_MODES_NEW)
    _check_choice('comment_mode', comment_mode, COMMENT_MODES)
    if not isinstance(import_group, (str, bool)) or import_group == '':
        raise ValueError(f'import_group must be True, False or a group label, got {import_group!r}')
    path = Path(path)
    problems = archive_format.verify(path, check_hashes=False)
    if problems:
        more = f' (and {len(problems) - 1} more problems: see `provstore archive verify`)' if len(problems) > 1 else ''
        raise ArchiveError(f'{problems[0]}{more}')
    reader = archive_format.open_reader(path)
    try:
        with tempfile.TemporaryDirectory(prefix='provstore-import-') as folder:
            importer = _Importer(
                storage,
                reader,
                _Plan(Path(folder) / 'plan.sqlite3'),
                _Options(extras_mode_existing, extras_mode_new, comment_mode, import_group, include_authinfos),
                progress or _no_progress,
            )
            try:
                return importer.run(path, dry_run)
            finally:
                importer.plan.close()
    finally:
        reader.close()


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(choices)}; got {value!r}')


def _no_progress(stage: str, done: int, total: int) -> None:
    """Report nothing."""


@dataclass(frozen=True)
class _Options:
    extras_mode_existing: ExtrasModeExisting
    extras_mode_new: ExtrasModeNew
    comment_mode: CommentMode
    import_group: str | bool
    include_authinfos: bool


class _DryRun(Exception):  # noqa: N818 - a signal, not an error
    """Raised at the end of a dry run to roll its transaction back."""


class _Plan:
    """What an import learns about the archive's nodes and objects, on disk so that memory stays flat.

    ``node``: archive id -> profile id and node type (``new`` when the import adds it). ``object``: the keys the new
    nodes refer to, and whether the profile lacks them.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE node (archive_id INTEGER PRIMARY KEY, profile_id INTEGER, node_type TEXT, new INTEGER);
            CREATE TABLE object (key TEXT PRIMARY KEY, missing INTEGER, start INTEGER, size INTEGER);
            """
        )
        self.path = path

    def close(self) -> None:
        self._db.close()

    def _write(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``statement`` for every row in one transaction (not one per row)."""
        self._db.execute('BEGIN')
        try:
            self._db.executemany(statement, rows)
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        self._db.execute('COMMIT')

    def add_nodes(self, rows: Iterable[tuple[int, int, str, bool]]) -> None:
        self._write('INSERT INTO node VALUES (?, ?, ?, ?)', rows)

    def nodes(self, archive_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """Return ``archive id -> (profile id, node type)`` of the given ids the plan holds."""
        query = (
            'SELECT archive_id, profile_id, node_type FROM node WHERE archive_id IN (SELECT value FROM json_each(?))'
        )
        ids = _json_list(sorted(set(archive_ids)))
        return {
            archive_id: (profile_id, node_type) for archive_id, profile_id, node_type in self._db.execute(query, ids)
        }

    def iter_profile_ids(self, batch_size: int) -> Iterator[list[int]]:
        cursor = self._db.execute('SELECT profile_id FROM node ORDER BY archive_id')
        while batch := cursor.fetchmany(batch_size):
            yield [profile_id for (profile_id,) in batch]

    def count_nodes(self) -> int:
        return int(self._db.execute('SELECT count(*) FROM node').fetchone()[0])

    def add_keys(self, keys: Iterable[str]) -> None:
        self._write('INSERT OR IGNORE INTO object (key) VALUES (?)', ((key,) for key in keys))

    def iter_keys(self, batch_size: int) -> Iterator[list[str]]:
        cursor = self._db.execute('SELECT key FROM object ORDER BY key')
        while batch := cursor.fetchmany(batch_size):
            yield [key for (key,) in batch]

    def mark_missing(self, keys: Sequence[str]) -> None:
        self._write('UPDATE object SET missing = 1 WHERE key = ?', ((key,) for key in keys))

    def count_missing(self) -> int:
        return int(self._db.execute('SELECT count(*) FROM object WHERE missing = 1').fetchone()[0])


def _json_list(values: Sequence[Any]) -> tuple[str]:
    return (json.dumps(list(values)),)


class _Importer:
    """One import: the archive's rows, entity kind by entity kind, then its objects, all in one transaction."""

    def __init__(
        self,
        storage: EntityStorage,
        reader: ArchiveReader,
        plan: _Plan,
        options: _Options,
        progress: ProgressCallback,
    ) -> None:
        self.storage = storage
        self.reader = reader
        self.plan = plan
        self.options = options
        self.progress = progress
        self.users: dict[int, int] = {}
        self.computers: dict[int, int] = {}
        self.groups: dict[int, int] = {}
        self.existing: dict[str, int] = defaultdict(int)
        self.updated: dict[str, int] = defaultdict(int)
        self.relabelled: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.group_label: str | None = None
        self.object_count = self.object_bytes = 0

    def run(self, path: Path, dry_run: bool) -> ImportSummary:
        kinds = [
            kind for kind in EXPORTED_ENTITIES if kind is not EntityType.AUTHINFO or self.options.include_authinfos
        ]
        added: dict[str, int] = {}
        try:
            with self.storage.transaction():
                before = {kind: self.storage.count_rows(kind) for kind in kinds}
                self._import_users()
                self._import_computers()
                self._import_nodes()
                with self._check_objects(write=not dry_run) as check:
                    self._import_groups()
                    self._import_links()
                    self._import_comments()
                    self._import_logs()
                    if self.options.include_authinfos:
                        self._import_authinfos()
                    added = {kind.value: self.storage.count_rows(kind) - before[kind] for kind in kinds}
                    self._fill_import_group()
                    check.wait()
                    if not dry_run:
                        self._write_objects(check)
                if dry_run:
                    raise _DryRun
                self.progress('commit', 0, 1)
            self.progress('commit', 1, 1)
        except _DryRun:
            pass
        return ImportSummary(
            path=path,
            added=added,
            existing={kind.value: self.existing[kind.value] for kind in kinds},
            relabelled=dict(self.relabelled),
            updated=dict(self.updated),
            object_count=self.object_count,
            object_bytes=self.object_bytes,
            import_group=self.group_label,
            dry_run=dry_run,
        )

    # -- rows -------------------------------------------------------------------------------------------------

    def _batches(self, entity: EntityType) -> Iterator[list[Row]]:
        """Yield the archive's rows of ``entity`` in batches, reporting progress."""
        total = self.reader.count_rows(entity)
        done = 0
        batch: list[Row] = []
        for row in self.reader.iter_rows(entity, BATCH_SIZE):
            batch.append(row)
            if len(batch) >= BATCH_SIZE:
                yield batch
                done += len(batch)
                self.progress(entity.value, done, total)
                batch = []
        if batch:
            yield batch
            done += len(batch)
        self.progress(entity.value, done, total)

    def _existing_by(self, entity: EntityType, column: str, rows: Sequence[Row]) -> dict[Any, Row]:
        """Return the profile's rows of ``entity`` whose ``column`` equals that of one of ``rows``, by that value."""
        values = list({row[column] for row in rows})
        found = {row[column]: row for row in self.storage.get_rows(entity, column, values)} if values else {}
        self.existing[entity.value] += sum(1 for row in rows if row[column] in found)
        return found

    def _import_users(self) -> None:
        for batch in self._batches(EntityType.USER):
            found = self._existing_by(EntityType.USER, 'email', batch)
            new = [row for row in batch if row['email'] not in found]
            for row in batch:
                if row['email'] in found:
                    self.users[row['id']] = found[row['email']]['id']
            self._insert(EntityType.USER, new, self.users)

    def _import_computers(self) -> None:
        for batch in self._batches(EntityType.COMPUTER):
            found = self._existing_by(EntityType.COMPUTER, 'uuid', batch)
            new = [row for row in batch if row['uuid'] not in found]
            for row in batch:
                if row['uuid'] in found:
                    self.computers[row['id']] = found[row['uuid']]['id']
            for row in new:
                row['label'] = self._free_label(EntityType.COMPUTER, row['label'])
            self._insert(EntityType.COMPUTER, new, self.computers)

    def _insert(self, entity: EntityType, rows: Sequence[Row], ids: dict[int, int] | None = None) -> list[int]:
        """Insert archive rows (their ``id`` dropped, empty values left to the profile's defaults); record new ids."""
        if not rows:
            return []
        new_ids = self.storage.insert_text_rows(entity, [_without_id(row) for row in rows])
        if ids is not None:
            ids.update((row['id'], new_id) for row, new_id in zip(rows, new_ids, strict=True))
        return new_ids

    def _free_label(self, entity: EntityType, label: str) -> str:
        """Return ``label`` if no row of ``entity`` has it, else the first free ``'label (Imported #n)'``."""
        if not self.storage.get_rows(entity, 'label', [label]):
            return label
        candidates = [DUPLICATE_LABEL_TEMPLATE.format(label, number) for number in range(DUPLICATE_LABEL_MAX)]
        taken = {row['label'] for row in self.storage.get_rows(entity, 'label', candidates)}
        for candidate in candidates:
            if candidate not in taken:
                self.relabelled[entity.value].append((label, candidate))
                return candidate
        raise ArchiveError(
            f'the {entity.value} label {label!r} and its {DUPLICATE_LABEL_MAX} renamings are all taken in the profile'
        )

    def _import_nodes(self) -> None:
        from provstore.repository import Repository  # noqa: PLC0415 - the repository layer only when importing

        repository = self.storage.get_repository()
        for batch in self._batches(EntityType.NODE):
            found = self._existing_by(EntityType.NODE, 'uuid', batch)
            new = [row for row in batch if row['uuid'] not in found]
            merged = [
                update
                for row in batch
                if row['uuid'] in found
                and (update := self._merged_extras(found[row['uuid']], _decoded(row['extras']))) is not None
            ]
            if merged:
                self.storage.update_rows(EntityType.NODE, merged)
                self.updated[EntityType.NODE.value] += len(merged)
            keys: list[str] = []
            for row in new:
                self._map_owner(row)
                if row['repository_metadata'] not in (None, '{}'):
                    try:
                        tree = Repository.from_serialized(repository, json.loads(row['repository_metadata']))
                    except (ValueError, ProvstoreError) as exc:
                        raise ArchiveError(f'node {row["uuid"]}: bad repository_metadata: {exc}') from None
                    keys.extend(tree.get_file_keys())
            self.plan.add_keys(keys)
            new_ids = self._insert(EntityType.NODE, [self._new_node(row) for row in new])
            self.plan.add_nodes(
                [
                    (row['id'], found[row['uuid']]['id'], row['node_type'], False)
                    for row in batch
                    if row['uuid'] in found
                ]
                + [(row['id'], new_id, row['node_type'], True) for row, new_id in zip(new, new_ids, strict=True)]
            )

    def _map_owner(self, row: Row) -> None:
        """Replace the archive's user and computer ids of a row by the profile's."""
        for column, ids, what in (('user_id', self.users, 'user'), ('dbcomputer_id', self.computers, 'computer')):
            if column in row and row[column] is not None:
                try:
                    row[column] = ids[row[column]]
                except KeyError:
                    raise ArchiveError(f'{_describe(row)} refers to {what} {row[column]}, not in the archive') from None

    def _new_node(self, row: Row) -> Row:
        """Return the row (text form) of a new node as the profile stores it."""
        if self.options.extras_mode_new == 'none':
            row['extras'] = '{}'
        elif row['extras'] and (_PRIVATE_EXTRAS_PREFIX in row['extras'] or '\\u' in row['extras']):
            # NOTE: a key may be written with escapes (\u005f for _): then only decoding tells
            extras = _decoded(row['extras'])
            kept = {key: value for key, value in extras.items() if not key.startswith(_PRIVATE_EXTRAS_PREFIX)}
            row['extras'] = json.dumps(kept, ensure_ascii=False)
        return without_checkpoints(row)

    def _merged_extras(self, existing: Row, incoming: Mapping[str, Any]) -> Row | None:
        """Return the update of an existing node's extras under the mode, or ``None`` if they stay as they are.

        As in aiida-core, the archive's private ``_aiida_`` extras take part in the merge like any other key.
        """
        mode = self.options.extras_mode_existing
        current: dict[str, Any] = existing['extras'] or {}
        if mode == 'none':
            return None
        if mode == 'keep_existing':
            merged = {**incoming, **current}
        elif mode == 'update_existing':
            merged = {**current, **incoming}
        else:  # mirror
            merged = dict(incoming)
        if merged == current:
            return None
        return {'id': existing['id'], 'extras': merged, 'mtime': existing['mtime']}

    def _import_groups(self) -> None:
        for batch in self._batches(EntityType.GROUP):
            found = self._existing_by(EntityType.GROUP, 'uuid', batch)
            new = [row for row in batch if row['uuid'] not in found]
            for row in batch:
                if row['uuid'] in found:
                    self.groups[row['id']] = found[row['uuid']]['id']
            for row in new:
                self._map_owner(row)
                row['label'] = self._free_label(EntityType.GROUP, row['label'])
            self._insert(EntityType.GROUP, new, self.groups)
        for batch in self._batches(EntityType.GROUP_NODE):
            nodes = self.plan.nodes(row['dbnode_id'] for row in batch)
            members: dict[int, list[int]] = defaultdict(list)
            for row in batch:
                group = self.groups.get(row['dbgroup_id'])
                node = nodes.get(row['dbnode_id'])
                if group is None or node is None:
                    raise ArchiveError(
                        f'group membership {row.get("id")} joins group {row["dbgroup_id"]} and node '
                        f'{row["dbnode_id"]}, not both in the archive'
                    )
                members[group].append(node[0])
            for group, node_ids in members.items():
                self.storage.add_group_nodes(group, node_ids)

    def _import_links(self) -> None:
        from provstore.orm.links import Link, LinkType, LinkValidationError, validate_links  # noqa: PLC0415
        from provstore.orm.nodes.links import fetch_stored_links  # noqa: PLC0415

        for batch in self._batches(EntityType.LINK):
            nodes = self.plan.nodes([row['input_id'] for row in batch] + [row['output_id'] for row in batch])
            links: list[Link] = []
            for row in batch:
                source, target = nodes.get(row['input_id']), nodes.get(row['output_id'])
                if source is None or target is None:
                    raise ArchiveError(f'link {row.get("id")} joins nodes not in the archive')
                try:
                    link_type = LinkType(row['type'])
                except ValueError:
                    raise ArchiveError(f'link {row.get("id")} has the unknown type {row["type"]!r}') from None
                links.append(Link(source[0], target[0], link_type, row['label']))
            node_types: dict[object, str] = {profile_id: node_type for profile_id, node_type in nodes.values()}
            stored = fetch_stored_links(
                self.storage,
                sorted({nodes[row['input_id']][0] for row in batch}),
                sorted({nodes[row['output_id']][0] for row in batch}),
                [link.link_type for link in links],
            )
            known = set(stored)
            new = [link for link in dict.fromkeys(links) if link not in known]
            self.existing[EntityType.LINK.value] += len(links) - len(new)
            try:
                validate_links(new, node_types, stored)
            except LinkValidationError as exc:
                raise ArchiveError(f'the archive cannot be imported into this profile: {exc}') from None
            if new:
                self.storage.insert_rows(
                    EntityType.LINK,
                    [
                        {
                            'input_id': link.source,
                            'output_id': link.target,
                            'type': link.link_type.value,
                            'label': link.label,
                        }
                        for link in new
                    ],
                )

    def _node_of(self, rows: Sequence[Row]) -> None:
        """Replace the archive's node, user and computer ids of rows (comments, logs) by the profile's."""
        nodes = self.plan.nodes(row['dbnode_id'] for row in rows)
        for row in rows:
            node = nodes.get(row['dbnode_id'])
            if node is None:
                raise ArchiveError(f'{_describe(row)} is attached to node {row["dbnode_id"]}, not in the archive')
            row['dbnode_id'] = node[0]
            self._map_owner(row)

    def _import_comments(self) -> None:
        mode = self.options.comment_mode
        for batch in self._batches(EntityType.COMMENT):
            found = self._existing_by(EntityType.COMMENT, 'uuid', batch)
            updates = [
                {'id': found[row['uuid']]['id'], 'content': row['content'], 'mtime': _time(row['mtime'])}
                for row in batch
                if row['uuid'] in found
                and found[row['uuid']]['content'] != row['content']
                and (
                    mode == 'overwrite'
                    or (mode == 'newest' and _newer(_time(row['mtime']), found[row['uuid']]['mtime']))
                )
            ]
            if updates:
                self.storage.update_rows(EntityType.COMMENT, updates)
                self.updated[EntityType.COMMENT.value] += len(updates)
            new = [row for row in batch if row['uuid'] not in found]
            self._node_of(new)
            self._insert(EntityType.COMMENT, new)

    def _import_logs(self) -> None:
        for batch in self._batches(EntityType.LOG):
            found = self._existing_by(EntityType.LOG, 'uuid', batch)
            new = [row for row in batch if row['uuid'] not in found]
            self._node_of(new)
            self._insert(EntityType.LOG, new)

    def _import_authinfos(self) -> None:
        for batch in self._batches(EntityType.AUTHINFO):
            for row in batch:
                row['aiidauser_id'] = self.users.get(row['aiidauser_id'], -1)
                row['dbcomputer_id'] = self.computers.get(row['dbcomputer_id'], -1)
                if -1 in (row['aiidauser_id'], row['dbcomputer_id']):
                    raise ArchiveError(f'{_describe(row)} refers to a user or computer not in the archive')
            stored = {
                (row['aiidauser_id'], row['dbcomputer_id'])
                for row in self.storage.get_rows(
                    EntityType.AUTHINFO, 'dbcomputer_id', list({row['dbcomputer_id'] for row in batch})
                )
            }
            new = [row for row in batch if (row['aiidauser_id'], row['dbcomputer_id']) not in stored]
            self.existing[EntityType.AUTHINFO.value] += len(batch) - len(new)
            self._insert(EntityType.AUTHINFO, new)

    def _fill_import_group(self) -> None:
        """Add every node of the archive to the import group, made if needed (none for an archive of no node)."""
        wanted = self.options.import_group
        if wanted is False or not self.plan.count_nodes():
            return
        if isinstance(wanted, str) and (rows := self.storage.get_rows(EntityType.GROUP, 'label', [wanted])):
            group_id, self.group_label = rows[0]['id'], wanted
        else:
            label = (
                wanted if isinstance(wanted, str) else datetime.datetime.now().astimezone().strftime('%Y%m%d-%H%M%S')
            )
            self.group_label = label = self._free_label(EntityType.GROUP, label)
            (group_id,) = self.storage.insert_rows(
                EntityType.GROUP,
                [
                    {
                        'label': label,
                        'type_string': IMPORT_GROUP_TYPE,
                        'description': 'Nodes of an archive import',
                        'user_id': self._default_user_id(),
                    }
                ],
            )
        for node_ids in self.plan.iter_profile_ids(MEMBERS_PER_CALL):
            self.storage.add_group_nodes(group_id, node_ids)

    def _default_user_id(self) -> int:
        from provstore.orm.users import get_default_user  # noqa: PLC0415

        pk = get_default_user(self.storage).pk
        assert isinstance(pk, int)  # NOTE: the default user is stored
        return pk

    # -- objects ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _check_objects(self, write: bool) -> Iterator[_ObjectCheck]:
        """Find the objects the profile lacks, then check them in a thread while the other rows are imported.

        The thread reads each from the archive once, hashing it and (``write``) copying it into a scratch file
        from which :meth:`_write_objects` stores them. It only reads: nothing is written to the profile until
        every object has hashed to its key.
        """
        repository = self.storage.get_repository()
        for keys in self.plan.iter_keys(BATCH_SIZE):
            self.plan.mark_missing(
                [key for key, present in zip(keys, repository.has_objects(keys), strict=True) if not present]
            )
        check = _ObjectCheck(self.reader, self.plan, write, self.progress)
        check.start()
        try:
            yield check
        finally:
            check.stop()
        self.object_count, self.object_bytes = check.done, check.bytes

    def _write_objects(self, check: _ObjectCheck) -> None:
        """Store the checked objects from the scratch file in batches (straight into packs where the backend can)."""
        repository = self.storage.get_repository()
        done = written = 0
        for batch in check.iter_slices(OBJECT_BATCH_COUNT, OBJECT_BATCH_BYTES):
            streams = [cast(BinaryIO, _Slice(check.spool, start, size)) for _, start, size in batch]
            stored = repository.put_objects_from_filelikes(streams)
            for (key, _, _), stored_key in zip(batch, stored, strict=True):
                if stored_key != key:
                    raise ArchiveError(f'the repository object {key} of the archive changed while it was imported')
            done += len(batch)
            written += sum(size for _, _, size in batch)
            self.progress('objects', done, check.done)
            self.progress('bytes', written, check.bytes)


class _ObjectCheck(threading.Thread):
    """Hash every object of the plan the profile lacks, as the archive gives them, and (``write``) copy each into
    the scratch file ``objects`` beside the plan; where each lies in it goes into the SQLite file ``slices`` there.

    It reads the plan through a connection of its own, once the main thread has marked the missing objects, and
    writes only files of its own.
    """

    def __init__(self, reader: ArchiveReader, plan: _Plan, write: bool, progress: ProgressCallback) -> None:
        super().__init__(name='provstore-import-objects', daemon=True)
        self._reader = reader
        self._plan_path = plan.path
        self._slices_path = plan.path.parent / 'slices.sqlite3'
        self._write = write
        self._progress = progress
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self.total = plan.count_missing()
        self.done = self.bytes = 0
        self._spool = open(plan.path.parent / 'objects', 'w+b')
        self.spool = self._spool.fileno()

    def run(self) -> None:
        try:
            self._check()
        except BaseException as exc:
            self._error = exc

    def _check(self) -> None:
        plan = sqlite3.connect(self._plan_path)
        slices = sqlite3.connect(self._slices_path, isolation_level=None)
        try:
            slices.executescript(
                """
                PRAGMA journal_mode = OFF;
                PRAGMA synchronous = OFF;
                CREATE TABLE slice (start INTEGER, key TEXT, size INTEGER);
                """
            )
            cursor = plan.execute('SELECT key FROM object WHERE missing = 1 ORDER BY key')
            while keys := [key for (key,) in cursor.fetchmany(BATCH_SIZE)]:
                found: list[tuple[int, str, int]] = []
                for key, stream in _streams(self._reader, keys):
                    digest = hashlib.sha256()
                    start, size = self._spool.tell(), 0
                    while chunk := stream.read(_CHUNK):
                        if self._stopping.is_set():
                            return
                        digest.update(chunk)
                        size += len(chunk)
                        if self._write:
                            self._spool.write(chunk)
                    if digest.hexdigest() != key:
                        raise ArchiveError(f'the repository object {key} of the archive does not hash to its name')
                    found.append((start, key, size))
                    self.done += 1
                    self.bytes += size
                with slices:
                    slices.executemany('INSERT INTO slice VALUES (?, ?, ?)', found)
        finally:
            plan.close()
            slices.close()
        self._spool.flush()

    def iter_slices(self, count: int, size: int) -> Iterator[list[tuple[str, int, int]]]:
        """Yield the ``(key, start, size)`` of the checked objects, in the order of the scratch file, in batches of
        at most ``count`` objects and (but for a single larger object) ``size`` bytes. Call it after :meth:`wait`."""
        slices = sqlite3.connect(self._slices_path)
        try:
            batch: list[tuple[str, int, int]] = []
            held = 0
            for start, key, length in slices.execute('SELECT start, key, size FROM slice ORDER BY start, rowid'):
                if batch and (len(batch) >= count or held + length > size):
                    yield batch
                    batch, held = [], 0
                batch.append((key, start, length))
                held += length
            if batch:
                yield batch
        finally:
            slices.close()

    def wait(self) -> None:
        """Wait for the check to end, reporting its progress; raise what it raised."""
        while self.is_alive():
            self.join(0.1)
            self._progress('hashing', self.done, self.total)
        self._progress('hashing', self.done, self.total)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the check (if it still runs) and close the scratch file."""
        self._stopping.set()
        self.join()
        self._spool.close()


def _streams(reader: ArchiveReader, keys: Sequence[str]) -> Iterator[tuple[str, BinaryIO]]:
    try:
        yield from reader.iter_object_streams(keys)
    except FileNotFoundError as exc:
        raise ArchiveError(f'the archive lacks repository objects its nodes refer to: {exc}') from None


class _Slice(io.RawIOBase):
    """A part of a file read without seeking its descriptor (``pread``), as a stream.

    It does not seek: a repository writes such a stream as it comes, without first hashing it to look for the
    object in the store (the import has just checked the store lacks it, and hashed it).
    """

    def __init__(self, descriptor: int, start: int, size: int) -> None:
        super().__init__()
        self._descriptor = descriptor
        self._position = start
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._left)
        if not wanted:
            return 0
        data = os.pread(self._descriptor, wanted, self._position)
        if not data:
            raise ArchiveError("the scratch copy of the archive's objects is shorter than what was written to it")
        count = len(data)
        buffer[:count] = data
        self._position += count
        self._left -= count
        return count


def _without_id(row: Row) -> Row:
    """The row to insert: no ``id``; empty values left out so that the profile's defaults fill them (archives of
    ``main_0000`` hold NULL where later ones hold ``{}`` or ``''``)."""
    return {key: value for key, value in row.items() if key != 'id' and value is not None}


def _describe(row: Row) -> str:
    return f'the row {row.get("uuid") or row.get("id")}'


def _newer(incoming: Any, current: Any) -> bool:
    return isinstance(incoming, datetime.datetime) and isinstance(current, datetime.datetime) and incoming > current


def _decoded(text: str | None) -> dict[str, Any]:
    """Return the JSON object of a text column (``{}`` for NULL).

    :raises ArchiveError: if it holds something else than an object.
    """
    value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise ArchiveError(f'a JSON column holds {type(value).__name__}, where an object belongs')
    return value


def _time(text: str | None) -> datetime.datetime | None:
    return None if text is None else time_from_text(text)
