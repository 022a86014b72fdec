"""``check_integrity``: does a profile hold what it says it holds?

Each :class:`Check` counts what it looked at and what was wrong, with a few examples. The graph's rows are read
once, streamed, into a scratch SQLite database (ids, types, the ends of links and memberships: never attributes),
where every rule is one set-based query; the repository is asked about the referenced keys a batch at a time, and
with ``hashes`` every referenced object is read and hashed, streamed. Memory stays flat in the size of the profile.

Checks:

- ``objects``: every object a node refers to exists in the repository;
- ``hashes``: every such object hashes to its key (sha256 keys only; skipped without ``hashes``);
- ``links``: every link obeys the rules of :data:`~provstore.orm.links.LINK_RULES` (type, label, the kinds of its
  ends, not a loop, how many of its type each end may have);
- ``references``: no row refers to a row that does not exist (links, group members, nodes' users and computers,
  groups', comments', logs' and auth infos' rows);
- ``file_references``: the backend's table of file references agrees with the nodes' ``repository_metadata``;
- ``unreferenced``: repository objects no node refers to (information: maintenance removes them; not a fault).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from provstore.orm.links import LABEL_PATTERN, LINK_RULES, Degree, LinkType, node_kind
from provstore.storage import EntityStorage, EntityType

__all__ = ['Check', 'check_integrity']

EXAMPLES = 5
"""Examples kept per check."""
BATCH = 10_000
_CHUNK = 1024 * 1024

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; ``total`` is 0 when unknown."""


@dataclass
class Check:
    """One check: how many things it looked at, how many were wrong, and a few of them described."""

    name: str
    description: str
    checked: int = 0
    problems: int = 0
    examples: list[str] = field(default_factory=list)
    informational: bool = False
    """What it finds is reported, not a fault (``unreferenced``)."""
    skipped: str | None = None
    """Why the check did not run, when it did not."""

    def add(self, example: str) -> None:
        self.problems += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    @property
    def failed(self) -> bool:
        return bool(self.problems) and not self.informational


def check_integrity(
    storage: EntityStorage, *, hashes: bool = True, progress: ProgressCallback | None = None
) -> list[Check]:
    """Run every check on ``storage`` (read only, inside one snapshot where the backend has them); return them."""
    report = progress or (lambda stage, done, total: None)
    with storage.snapshot(), tempfile.TemporaryDirectory(prefix='provstore-integrity-') as folder:
        graph = _Graph(Path(folder) / 'graph.sqlite3')
        try:
            graph.load(storage, report)
            checks = [
                _check_links(graph),
                _check_references(graph),
                *_check_objects(storage, graph, hashes, report),
                _check_file_references(storage),
            ]
        finally:
            graph.close()
    return checks


class _Graph:
    """The ids and ends of the profile's rows, in a scratch SQLite file."""

    TABLES: ClassVar[dict[EntityType, tuple[str, tuple[str, ...]]]] = {
        EntityType.USER: ('users', ('id',)),
        EntityType.COMPUTER: ('computers', ('id',)),
        EntityType.AUTHINFO: ('authinfos', ('id', 'aiidauser_id', 'dbcomputer_id')),
        EntityType.NODE: ('nodes', ('id', 'node_type', 'user_id', 'dbcomputer_id')),
        EntityType.GROUP: ('groups', ('id', 'user_id')),
        EntityType.GROUP_NODE: ('members', ('dbgroup_id', 'dbnode_id')),
        EntityType.LINK: ('links', ('id', 'input_id', 'output_id', 'type', 'label')),
        EntityType.COMMENT: ('comments', ('id', 'dbnode_id', 'user_id')),
        EntityType.LOG: ('logs', ('id', 'dbnode_id')),
    }

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript('PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;')
        for table, columns in self.TABLES.values():
            key = ' PRIMARY KEY' if columns[0] == 'id' else ''
            self.db.execute(f'CREATE TABLE {table} ({columns[0]}{key}, {", ".join(columns[1:]) or "unused"})')
        self.db.execute('CREATE TABLE refs (key TEXT PRIMARY KEY) WITHOUT ROWID')
        self.db.execute('CREATE TABLE objects (key TEXT PRIMARY KEY) WITHOUT ROWID')

    def load(self, storage: EntityStorage, progress: ProgressCallback) -> None:
        for entity, (table, columns) in self.TABLES.items():
            total = storage.count_rows(entity)
            done = 0
            width = len(columns) if len(columns) > 1 else 2
            marks = ', '.join('?' * width)
            for batch in _batches(storage.iter_text_rows(entity, BATCH), BATCH):
                values = [
                    tuple(row.get(column) for column in columns) + (None,) * (width - len(columns)) for row in batch
                ]
                self.db.executemany(f'INSERT INTO {table} VALUES ({marks})', values)
                done += len(batch)
                progress(entity.value, done, total)
        self.db.execute('CREATE INDEX links_out ON links (output_id, type)')
        self.db.execute('CREATE INDEX links_in ON links (input_id, type)')
        self.db.commit()

    def add_keys(self, table: str, keys: Iterable[str]) -> None:
        for batch in _batches(iter(keys), BATCH):
            self.db.executemany(f'INSERT OR IGNORE INTO {table} VALUES (?)', ((key,) for key in batch))
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


def _check_links(graph: _Graph) -> Check:
    check = Check('links', 'links obey the rules of their type (ends, label, how many per node)')
    db = graph.db
    check.checked = db.execute('SELECT count(*) FROM links').fetchone()[0]
    rows = db.execute(
        'SELECT l.id, l.input_id, l.output_id, l.type, l.label, s.node_type, t.node_type FROM links l '
        'JOIN nodes s ON s.id = l.input_id JOIN nodes t ON t.id = l.output_id'
    )
    for link_id, source, target, link_type, label, source_type, target_type in rows:
        problem = _link_shape(source, target, link_type, label, source_type, target_type)
        if problem:
            check.add(f'link {link_id} ({source} -[{link_type}:{label}]-> {target}): {problem}')
    for link_type, rule in LINK_RULES.items():
        for side, degree in (('output_id', rule.indegree), ('input_id', rule.outdegree)):
            group = {
                Degree.UNIQUE: side,
                Degree.UNIQUE_PAIR: f'{side}, label',
                Degree.UNIQUE_TRIPLE: 'input_id, output_id, label',
            }[degree]
            where = 'incoming' if side == 'output_id' else 'outgoing'
            for node, count in db.execute(
                f'SELECT {side}, count(*) FROM links WHERE type = ? GROUP BY {group} HAVING count(*) > 1',
                (link_type.value,),
            ):
                check.add(f'node {node} has {count} {where} {link_type.value} links where one is allowed')
    return check


def _link_shape(  # noqa: PLR0917 - the fields of one link
    source: int, target: int, link_type: str, label: str, source_type: str, target_type: str
) -> str | None:
    try:
        rule = LINK_RULES[LinkType(link_type)]
    except ValueError:
        return f'unknown type {link_type!r}'
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        return f'invalid label {label!r}'
    if source == target:
        return 'a node linked to itself'
    for end, node_type, expected in (('source', source_type, rule.source), ('target', target_type, rule.target)):
        if node_kind(node_type or '') is not expected:
            return f'the {end} must be a {expected.value} node, not {node_type or "a bare node"!r}'
    return None


_REFERENCES = (
    ('links', 'id', 'input_id', 'nodes', 'link {row}: its input node {value} does not exist'),
    ('links', 'id', 'output_id', 'nodes', 'link {row}: its output node {value} does not exist'),
    ('members', 'dbnode_id', 'dbgroup_id', 'groups', 'node {row} is a member of group {value}, which does not exist'),
    ('members', 'dbgroup_id', 'dbnode_id', 'nodes', 'group {row} holds node {value}, which does not exist'),
    ('nodes', 'id', 'user_id', 'users', 'node {row}: its user {value} does not exist'),
    ('nodes', 'id', 'dbcomputer_id', 'computers', 'node {row}: its computer {value} does not exist'),
    ('groups', 'id', 'user_id', 'users', 'group {row}: its user {value} does not exist'),
    ('comments', 'id', 'dbnode_id', 'nodes', 'comment {row}: its node {value} does not exist'),
    ('comments', 'id', 'user_id', 'users', 'comment {row}: its user {value} does not exist'),
    ('logs', 'id', 'dbnode_id', 'nodes', 'log {row}: its node {value} does not exist'),
    ('authinfos', 'id', 'aiidauser_id', 'users', 'auth info {row}: its user {value} does not exist'),
    ('authinfos', 'id', 'dbcomputer_id', 'computers', 'auth info {row}: its computer {value} does not exist'),
)
"""``(table, the column naming the row, a column, the table it refers to, message)``: the column's value must be the
id of a row of the other table."""


def _check_references(graph: _Graph) -> Check:
    check = Check('references', 'every row a row refers to exists (links, group members, users, computers, nodes)')
    db = graph.db
    for table, row_column, column, referred, message in _REFERENCES:
        check.checked += db.execute(f'SELECT count({column}) FROM {table}').fetchone()[0]
        for row, value in db.execute(
            f'SELECT {row_column}, {column} FROM {table} WHERE {column} IS NOT NULL '
            f'AND {column} NOT IN (SELECT id FROM {referred}) ORDER BY {row_column}'
        ):
            check.add(message.format(row=row, value=value))
    return check


def _check_objects(storage: EntityStorage, graph: _Graph, hashes: bool, progress: ProgressCallback) -> list[Check]:
    """The ``objects``, ``hashes`` and ``unreferenced`` checks."""
    repository = storage.get_repository()
    exists = Check('objects', 'every file of a node has its object in the repository')
    digests = Check('hashes', 'every object a node refers to hashes to its key')
    unreferenced = Check('unreferenced', 'objects no node refers to (maintenance removes them)', informational=True)
    graph.add_keys('refs', storage.iter_referenced_keys(BATCH))
    total = graph.db.execute('SELECT count(*) FROM refs').fetchone()[0]
    missing: list[str] = []
    if not hashes:
        digests.skipped = 'asked not to (--no-hash)'
    elif repository.key_format != 'sha256':
        digests.skipped = f'the repository keys are {repository.key_format}, not sha256'
    hashed = 0
    for batch in _batches((key for (key,) in graph.db.execute('SELECT key FROM refs ORDER BY key')), BATCH):
        present = [key for key, found in zip(batch, repository.has_objects(batch), strict=True) if found]
        exists.checked += len(batch)
        missing.extend(sorted(set(batch) - set(present))[: EXAMPLES - len(missing)])
        exists.problems += len(batch) - len(present)
        if digests.skipped is None and present:
            for key, stream in repository.iter_object_streams(present):
                digest = hashlib.sha256()
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                digests.checked += 1
                if digest.hexdigest() != key:
                    digests.add(f'object {key} hashes to {digest.hexdigest()}')
        hashed += len(batch)
        progress('objects', hashed, total)
    exists.examples = _where_referenced(storage, missing)
    graph.add_keys('objects', repository.list_objects())
    unreferenced.checked = graph.db.execute('SELECT count(*) FROM objects').fetchone()[0]
    for (key,) in graph.db.execute('SELECT key FROM objects EXCEPT SELECT key FROM refs ORDER BY 1'):
        unreferenced.add(f'object {key}')
    return [exists, digests, unreferenced]


def _where_referenced(storage: EntityStorage, keys: list[str]) -> list[str]:
    """Describe where the (few) missing ``keys`` are referenced: a node and a path each."""
    if not keys:
        return []
    wanted = set(keys)
    found: dict[str, str] = {}
    for node, path, key in storage.iter_file_references(BATCH):
        if key in wanted and key not in found:
            found[key] = f'object {key} of node {node} (file {path!r}) is missing'
            if len(found) == len(wanted):
                break
    return [found.get(key, f'object {key} is missing') for key in keys]


def _check_file_references(storage: EntityStorage) -> Check:
    check = Check('file_references', "the storage's table of file references agrees with the nodes' metadata")
    if type(storage).iter_file_references is EntityStorage.iter_file_references:
        check.skipped = 'this storage reads file references from the nodes themselves'
        return check
    # NOTE: both come by node id; within a node the database's collation may order paths otherwise than Python
    kept = _by_node(storage.iter_file_references(BATCH))
    derived = _by_node(EntityStorage.iter_file_references(storage, BATCH))
    end: tuple[float, dict[str, str]] = (float('inf'), {})
    left, right = next(kept, end), next(derived, end)
    while left is not end or right is not end:
        if left[0] == right[0]:
            check.checked += len(right[1])
            for path in sorted(left[1].keys() | right[1].keys()):
                table, metadata = left[1].get(path), right[1].get(path)
                if table != metadata:
                    check.add(f'node {left[0]} file {path!r}: the table says {table}, the metadata {metadata}')
            left, right = next(kept, end), next(derived, end)
        elif left[0] < right[0]:
            check.add(f'node {left[0]}: files {sorted(left[1])[:3]} in the table, none in the metadata')
            left = next(kept, end)
        else:
            check.checked += len(right[1])
            check.add(f'node {right[0]}: files {sorted(right[1])[:3]} in the metadata, none in the table')
            right = next(derived, end)
    return check


def _by_node(references: Iterator[tuple[int, str, str]]) -> Iterator[tuple[float, dict[str, str]]]:
    """Group ``(node, path, key)`` coming by node into ``(node, {path: key})``."""
    node: float | None = None
    files: dict[str, str] = {}
    for node_id, path, key in references:
        if node_id != node:
            if node is not None:
                yield node, files
            node, files = node_id, {}
        files[path] = key
    if node is not None:
        yield node, files
