"""``archive verify`` for ``.aiida`` files: every defect of an archive, found without importing it.

The checks run in order, each on what the earlier ones found sound: the zip's central directory and
``metadata.json`` (:mod:`provstore_sqlite_zip.zipped`); the database's structure (:mod:`provstore_sqlite_zip.cache`),
then its rows, with set-based SQL over the database read-only (UUIDs, JSON, dates, references, the link rules of
:mod:`provstore.orm.links`); the repository keys of every node, read with the core's
:class:`~provstore.repository.Repository`; and, when asked, the content of every member, decompressed in bounded
chunks (sizes, CRC, sha256 names, decompression bombs). Each defect is one line; a kind of defect found in many
rows is one line with a count and examples. Memory stays bounded whatever the file holds.

The database is extracted into the cache folder of :mod:`provstore_sqlite_zip.cache`, and kept there (where opening
the archive finds it) only when the archive is sound.
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from provstore.exceptions import ArchiveError
from provstore.repository import sha256_of_stream
from provstore.storage.textrows import JSON_MAX_DEPTH, json_depth
from provstore_sqlite_zip.cache import cache_file, database_problems, default_cache_folder, extract_database
from provstore_sqlite_zip.members import MemberStream
from provstore_sqlite_zip.zipped import (
    DATABASE_MEMBER,
    REPOSITORY_PREFIX,
    Member,
    MemberScan,
    Problems,
    is_readable,
    read_metadata_member,
    scan_members,
)

__all__ = ['verify_archive']

_CHUNK = 1024 * 1024
_EXAMPLES = 3
_HEX = '[0-9a-f]'
_UUID_GLOB = '-'.join(_HEX * count for count in (8, 4, 4, 4, 12))
"""A uuid as aiida-core stores it: dashed, lower case (an SQL GLOB pattern)."""

_UUID_TABLES = (
    ('db_dbnode', 'nodes'),
    ('db_dbcomputer', 'computers'),
    ('db_dbgroup', 'groups'),
    ('db_dbcomment', 'comments'),
    ('db_dblog', 'logs'),
)
_ID_TABLES = (
    ('db_dbuser', 'users'),
    *_UUID_TABLES,
    ('db_dbauthinfo', 'auth infos'),
    ('db_dblink', 'links'),
    ('db_dbgroup_dbnodes', 'group memberships'),
)
_JSON_COLUMNS = (
    ('db_dbnode', 'nodes', 'attributes'),
    ('db_dbnode', 'nodes', 'extras'),
    ('db_dbnode', 'nodes', 'repository_metadata'),
    ('db_dbcomputer', 'computers', 'metadata'),
    ('db_dbauthinfo', 'auth infos', 'metadata'),
    ('db_dbauthinfo', 'auth infos', 'auth_params'),
    ('db_dbgroup', 'groups', 'extras'),
    ('db_dblog', 'logs', 'metadata'),
)
"""The JSON columns of aiida-core's archive schema: each holds an object, or nothing (NULL or ``null``)."""
_DATE_COLUMNS = (
    ('db_dbnode', 'nodes', 'ctime'),
    ('db_dbnode', 'nodes', 'mtime'),
    ('db_dbgroup', 'groups', 'time'),
    ('db_dbcomment', 'comments', 'ctime'),
    ('db_dbcomment', 'comments', 'mtime'),
    ('db_dblog', 'logs', 'time'),
)
_REFERENCES = (
    ('db_dbnode', 'nodes', 'user_id', 'db_dbuser', 'an unknown user'),
    ('db_dbnode', 'nodes', 'dbcomputer_id', 'db_dbcomputer', 'a missing computer'),
    ('db_dbgroup', 'groups', 'user_id', 'db_dbuser', 'an unknown user'),
    ('db_dbgroup_dbnodes', 'group memberships', 'dbnode_id', 'db_dbnode', 'a missing node'),
    ('db_dbgroup_dbnodes', 'group memberships', 'dbgroup_id', 'db_dbgroup', 'a missing group'),
    ('db_dbcomment', 'comments', 'dbnode_id', 'db_dbnode', 'a missing node'),
    ('db_dbcomment', 'comments', 'user_id', 'db_dbuser', 'an unknown user'),
    ('db_dblog', 'logs', 'dbnode_id', 'db_dbnode', 'a missing node'),
    ('db_dbauthinfo', 'auth infos', 'aiidauser_id', 'db_dbuser', 'an unknown user'),
    ('db_dbauthinfo', 'auth infos', 'dbcomputer_id', 'db_dbcomputer', 'a missing computer'),
)
"""``(table, rows, column, referenced table, what a dangling value is)``; only ``dbcomputer_id`` of nodes may be
NULL."""
_UNIQUE = (
    ('db_dbuser', 'users share an email', 'email'),
    ('db_dbcomputer', 'computers share a label', 'label'),
    ('db_dbgroup', 'groups share a label and type', 'label, type_string'),
    ('db_dbgroup_dbnodes', 'group memberships are repeated', 'dbgroup_id, dbnode_id'),
    ('db_dbauthinfo', 'auth infos are for the same user and computer', 'aiidauser_id, dbcomputer_id'),
)


@dataclass(frozen=True)
class _RowCheck:
    """A query selecting ``(id, detail)`` of every row with one defect, and the defect's words."""

    defect: str
    """A plural phrase: ``'nodes with a malformed uuid'``."""
    sql: str


def verify_archive(path: Path, *, check_hashes: bool = True, cache_folder: Path | None = None) -> list[str]:
    """Return every defect of the ``.aiida`` file at ``path``, one line each naming it; empty when it is sound.

    :param check_hashes: also decompress every member (sizes, CRC, decompression bombs) and hash every object.
    :param cache_folder: where the database is extracted (default: the cache of :mod:`provstore_sqlite_zip.cache`).
    """
    path = Path(path).expanduser()
    problems = Problems(path)
    try:
        members = scan_members(path, problems)
    except ArchiveError as exc:
        return [str(exc)]
    try:
        read_metadata_member(path, members.metadata)
    except ArchiveError as exc:
        problems.add_error('metadata', exc)
    _check_database(path, members, problems, cache_folder or default_cache_folder(), check_hashes)
    return problems.lines()


def _check_database(
    path: Path,
    members: MemberScan,
    problems: Problems,
    folder: Path,
    check_hashes: bool,
) -> None:
    """Check the database (structure, rows, repository keys) and, with ``check_hashes``, every member's content.

    The database is extracted to a temporary file in ``folder``, renamed into the cache if the archive is sound.
    """
    temporary: Path | None = None
    database: Path | None = None
    try:
        if members.database is None:
            problems.add('databases', f'no {DATABASE_MEMBER} in the zip')
        elif is_readable(members.database):
            database = cache_file(path, members.database, folder)
            if not database.is_file():
                try:
                    database = temporary = extract_database(path, members.database, folder)
                except ArchiveError as exc:
                    database = None
                    problems.add_error('databases', exc)
        if database is not None:
            found = problems.count
            database_problems(database, problems)
            if problems.count == found:
                with _connect(database) as connection:
                    if _check_integrity(connection, problems):
                        _check_rows(connection, problems)
                        _check_repository_keys(path, connection, members, problems)
        if check_hashes:
            _check_contents(path, members, problems)
        if temporary is not None and not problems and members.database is not None:
            os.replace(temporary, cache_file(path, members.database, folder))
            temporary = None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _connect(database: Path) -> Iterator[sqlite3.Connection]:
    """Open ``database`` read-only and immutable, with the functions the row checks call."""
    connection = sqlite3.connect(f'file:{quote(str(database))}?mode=ro&immutable=1', uri=True)
    try:
        connection.execute('PRAGMA trusted_schema = OFF')
        connection.execute('PRAGMA cell_size_check = ON')
        _register_functions(connection)
        yield connection
    finally:
        connection.close()


def _register_functions(connection: sqlite3.Connection) -> None:
    """Give SQL the core's rules: a node's kind for the link rules, a valid link label, a readable date."""
    from provstore.orm.links import LinkValidationError, check_label, node_kind  # noqa: PLC0415 - the ORM, lazily

    def kind(node_type: object) -> str | None:
        found = node_kind(node_type) if isinstance(node_type, str) else None
        return None if found is None else found.value

    def label_ok(label: object) -> bool:
        try:
            check_label(label)
        except LinkValidationError:
            return False
        return True

    def date_ok(value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True

    connection.create_function('provstore_node_kind', 1, kind, deterministic=True)
    connection.create_function('provstore_link_label_ok', 1, label_ok, deterministic=True)
    connection.create_function('provstore_date_ok', 1, date_ok, deterministic=True)
    connection.create_function('provstore_json_depth', 1, json_depth, deterministic=True)


def _check_integrity(connection: sqlite3.Connection, problems: Problems) -> bool:
    """Add a defect if SQLite finds the database file corrupt; return whether it is sound."""
    try:
        found = [row[0] for row in connection.execute('PRAGMA quick_check(3)')]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found == ['ok']:
        return True
    problems.add('databases', f'the member {DATABASE_MEMBER} is a corrupt SQLite database: {"; ".join(found)}')
    return False


def _check_rows(connection: sqlite3.Connection, problems: Problems) -> None:
    """Run every row check; add one line per kind of defect found, with a count and examples."""
    for check in _row_checks():
        try:
            rows = connection.execute(
                f'SELECT id, detail, count(*) OVER () FROM ({check.sql}) LIMIT {_EXAMPLES}'
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            problems.add(
                'rows that cannot be checked', f'{DATABASE_MEMBER}: the {check.defect} cannot be checked: {exc}'
            )
            continue
        if rows:
            examples = ', '.join(f'id {row_id!r}: {_short(detail)}' for row_id, detail, _ in rows)
            problems.add(check.defect, f'{DATABASE_MEMBER}: {rows[0][2]} {check.defect} ({examples})')


def _row_checks() -> Iterator[_RowCheck]:
    """The checks of the rows: schema (ids, UUIDs, JSON, dates, uniqueness), references, and the link rules."""
    for table, rows in _ID_TABLES:
        yield _RowCheck(
            f'{rows} with an id that is not an integer',
            f"SELECT id, id AS detail FROM {table} WHERE typeof(id) != 'integer'",
        )
        yield _RowCheck(
            f'{rows} share an id', f'SELECT id, count(*) AS detail FROM {table} GROUP BY id HAVING count(*) > 1'
        )
    for table, rows in _UUID_TABLES:
        yield _RowCheck(
            f'{rows} with a malformed uuid',
            f"SELECT id, uuid AS detail FROM {table} WHERE typeof(uuid) != 'text' OR uuid NOT GLOB '{_UUID_GLOB}'",
        )
        yield _RowCheck(
            f'{rows} share a uuid',
            f'SELECT min(id) AS id, uuid AS detail FROM {table} GROUP BY uuid HAVING count(*) > 1',
        )
    yield _RowCheck(
        'users with no email', "SELECT id, email AS detail FROM db_dbuser WHERE typeof(email) != 'text' OR email = ''"
    )
    for table, defect, columns in _UNIQUE:
        detail = columns.replace(', ', " || ' ' || ")
        yield _RowCheck(
            defect, f'SELECT min(id) AS id, {detail} AS detail FROM {table} GROUP BY {columns} HAVING count(*) > 1'
        )
    for table, rows, column in _JSON_COLUMNS:
        yield _RowCheck(
            f'{rows} whose {column} is not a JSON object',
            f'SELECT id, substr({column}, 1, 40) AS detail FROM {table} WHERE {column} IS NOT NULL AND CASE '
            f"WHEN typeof({column}) != 'text' OR NOT json_valid({column}) THEN 1 "
            f"ELSE json_type({column}) NOT IN ('object', 'null') END",
        )
        if column == 'repository_metadata':
            continue  # NOTE: its own rule (folders nested at most 256 deep) is checked with its keys
        # NOTE: a text nested that deep has two brackets per level; its size in bytes (no scan), then its brackets,
        # counted in SQL, leave the exact (slower) measure to the few texts that might be that deep.
        brackets = f"length({column}) - length(replace(replace({column}, '[', ''), '{{', ''))"
        yield _RowCheck(
            f'{rows} whose {column} is nested deeper than {JSON_MAX_DEPTH} levels',
            f'SELECT id, substr({column}, 1, 40) AS detail FROM {table} WHERE length(CAST({column} AS BLOB)) > '
            f'{2 * JSON_MAX_DEPTH} AND {brackets} > {JSON_MAX_DEPTH} AND json_valid({column}) '
            f'AND provstore_json_depth({column}) > {JSON_MAX_DEPTH}',
        )
    for table, rows, column in _DATE_COLUMNS:
        yield _RowCheck(
            f'{rows} with a bad {column}',
            f'SELECT id, {column} AS detail FROM {table} WHERE NOT coalesce(provstore_date_ok({column}), 0)',
        )
    yield _RowCheck(
        'nodes without a node_type', "SELECT id, node_type AS detail FROM db_dbnode WHERE typeof(node_type) != 'text'"
    )
    for table, rows, column, referenced, what in _REFERENCES:
        nullable = f'{column} IS NOT NULL AND ' if column == 'dbcomputer_id' else ''
        yield _RowCheck(
            f'{rows} of {what}',
            f'SELECT id, {column} AS detail FROM {table} AS row WHERE {nullable}'
            f'NOT EXISTS (SELECT 1 FROM {referenced} AS other WHERE other.id = row.{column})',
        )
    yield from _link_checks()


def _link_checks() -> Iterator[_RowCheck]:
    """The link rules of :mod:`provstore.orm.links`, as queries: ends, types, kinds of node joined, degrees."""
    from provstore.orm.links import LINK_RULES, Degree, LinkType  # noqa: PLC0415 - the ORM, lazily

    ends = "printf('%s -> %s', input_id, output_id)"
    types = ', '.join(f"'{link_type.value}'" for link_type in LinkType)
    yield _RowCheck(
        'links to or from a missing node',
        f'SELECT id, {ends} AS detail FROM db_dblink AS link WHERE '
        'NOT EXISTS (SELECT 1 FROM db_dbnode WHERE db_dbnode.id = link.input_id) OR '
        'NOT EXISTS (SELECT 1 FROM db_dbnode WHERE db_dbnode.id = link.output_id)',
    )
    yield _RowCheck(
        'links from a node to itself', f'SELECT id, {ends} AS detail FROM db_dblink WHERE input_id = output_id'
    )
    yield _RowCheck(
        'links of an unknown type',
        f'SELECT id, type AS detail FROM db_dblink WHERE type IS NULL OR type NOT IN ({types})',
    )
    yield _RowCheck(
        'links with an invalid label',
        'SELECT id, label AS detail FROM db_dblink WHERE NOT coalesce(provstore_link_label_ok(label), 0)',
    )
    rules = ', '.join(
        f"('{link_type.value}', '{rule.source.value}', '{rule.target.value}')" for link_type, rule in LINK_RULES.items()
    )
    yield _RowCheck(
        'links of a type not allowed between their nodes',
        f'WITH rule(type, source, target) AS (VALUES {rules}) '
        "SELECT link.id AS id, printf('%s from %s to %s', link.type, source.node_type, target.node_type) AS detail "
        'FROM db_dblink AS link JOIN db_dbnode AS source ON source.id = link.input_id '
        'JOIN db_dbnode AS target ON target.id = link.output_id '
        f'WHERE link.type IN ({types}) AND NOT EXISTS (SELECT 1 FROM rule WHERE rule.type = link.type '
        'AND rule.source IS provstore_node_kind(source.node_type) '
        'AND rule.target IS provstore_node_kind(target.node_type))',
    )
    for link_type, rule in LINK_RULES.items():
        for side, node, other, degree in (
            ('outgoing', 'input_id', 'output_id', rule.outdegree),
            ('incoming', 'output_id', 'input_id', rule.indegree),
        ):
            if degree is Degree.UNIQUE_TRIPLE and side == 'incoming':
                continue  # NOTE: the same triple as the outgoing side: one check finds repeated links
            grouped, words = {
                Degree.UNIQUE: (node, f'nodes with more than one {side} {link_type.value} link'),
                Degree.UNIQUE_PAIR: (f'{node}, label', f'nodes with two {side} {link_type.value} links of one label'),
                Degree.UNIQUE_TRIPLE: (
                    f'{node}, label, {other}',
                    f'repeated {link_type.value} links (same nodes, same label)',
                ),
            }[degree]
            yield _RowCheck(
                words,
                f'SELECT {node} AS id, count(*) AS detail FROM db_dblink WHERE type = '
                f"'{link_type.value}' GROUP BY {grouped} HAVING count(*) > 1",
            )


def _check_repository_keys(path: Path, connection: sqlite3.Connection, members: MemberScan, problems: Problems) -> None:
    """Read every node's ``repository_metadata`` with the core's Repository, streamed; add its defects (absurdly
    deep, malformed) and the keys it refers to that the zip lacks."""
    from provstore.repository import Repository  # noqa: PLC0415
    from provstore_sqlite_zip.repository import ZipRepositoryBackend  # noqa: PLC0415

    backend = ZipRepositoryBackend(str(path))  # NOTE: never opened: only what Repository needs to be built
    missing = 0
    examples: list[str] = []
    cursor = connection.execute(
        'SELECT id, repository_metadata FROM db_dbnode WHERE CASE '
        "WHEN typeof(repository_metadata) != 'text' OR NOT json_valid(repository_metadata) THEN 0 "
        "ELSE json_type(repository_metadata) = 'object' END AND repository_metadata != '{}'"
    )
    while batch := cursor.fetchmany(100):
        for node_id, text in batch:
            try:
                keys = Repository.from_serialized(backend, json.loads(text)).get_file_keys()
            except RecursionError:
                problems.add(
                    'nodes with malformed repository_metadata',
                    f'node {node_id}: its repository_metadata is nested absurdly deep',
                )
                continue
            except ValueError as exc:
                problems.add(
                    'nodes with malformed repository_metadata',
                    f'node {node_id}: its repository_metadata is malformed: {exc}',
                )
                continue
            for key in keys:
                if key not in members.objects:
                    missing += 1
                    if len(examples) < _EXAMPLES:
                        examples.append(f'node {node_id}: {REPOSITORY_PREFIX}{_short(key)}')
    if missing:
        problems.add(
            'missing objects',
            f'{missing} files of nodes refer to objects missing from the zip ({", ".join(examples)})',
        )


def _check_contents(path: Path, members: MemberScan, problems: Problems) -> None:
    """Read every member the scan found readable through a checking stream (sizes, CRC, decompression bombs), in
    the order of the file, and hash each repository object."""
    named: Iterator[tuple[str | None, Member]] = heapq.merge(
        members.objects.in_file_order(),
        sorted(
            ((None, info) for info in (members.metadata, members.database) if info is not None),
            key=lambda item: item[1].offset,
        ),
        key=lambda item: item[1].offset,
    )
    with open(path, 'rb') as raw:
        for key, info in named:
            if not is_readable(info):
                continue  # NOTE: the scan reported it
            try:
                with MemberStream(path, info, raw) as stream:
                    digest = sha256_of_stream(stream)  # type: ignore[arg-type]
            except ArchiveError as exc:
                problems.add_error('corrupt members', exc)
                continue
            if key is not None and digest != key:
                defect = f'the content of {info.name!r} hashes to {digest}, not to its name'
                problems.add('objects not named by their hash', defect)


def _short(value: object) -> str:
    """Return ``value`` for a message: its repr, cut at 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else f'{text[:77]}...'
