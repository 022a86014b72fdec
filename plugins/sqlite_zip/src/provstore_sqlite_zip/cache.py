"""The database of an archive, extracted once into a cache and reused by every later process.

A cached database is named by the archive's identity: the archive's size and modification time and the CRC and
size of its ``db.sqlite3`` member. It is written to a temporary file in the cache folder, checked (an SQLite file
holding the expected tables and indexes and nothing else) and only then renamed into place, so a reader never sees
a half-written or unchecked file, and two processes opening the same archive at once each write their own temporary
file and the later rename replaces an identical file. The archive itself is never written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote

from provstore.exceptions import ArchiveError
from provstore_sqlite_zip.zipped import DATABASE_MEMBER, ArchiveZip, Member, Problems

__all__ = [
    'CACHE_SUBFOLDER',
    'REQUIRED_COLUMNS',
    'cache_file',
    'cached_database',
    'check_database',
    'database_problems',
    'default_cache_folder',
    'extract_database',
    'forget_database',
]

CACHE_SUBFOLDER = 'sqlite_zip'
"""The folder of cached databases inside provstore's cache folder."""

SQLITE_HEADER = b'SQLite format 3\x00'

REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    'db_dbuser': frozenset({'id', 'email', 'first_name', 'last_name', 'institution'}),
    'db_dbcomputer': frozenset(
        {'id', 'uuid', 'label', 'hostname', 'description', 'scheduler_type', 'transport_type', 'metadata'}
    ),
    'db_dbauthinfo': frozenset({'id', 'aiidauser_id', 'dbcomputer_id', 'metadata', 'auth_params', 'enabled'}),
    'db_dbnode': frozenset(
        {
            'id',
            'uuid',
            'node_type',
            'process_type',
            'label',
            'description',
            'ctime',
            'mtime',
            'attributes',
            'extras',
            'repository_metadata',
            'dbcomputer_id',
            'user_id',
        }
    ),
    'db_dblink': frozenset({'id', 'input_id', 'output_id', 'label', 'type'}),
    'db_dbgroup': frozenset({'id', 'uuid', 'label', 'type_string', 'time', 'description', 'extras', 'user_id'}),
    'db_dbgroup_dbnodes': frozenset({'id', 'dbnode_id', 'dbgroup_id'}),
    'db_dbcomment': frozenset({'id', 'uuid', 'dbnode_id', 'ctime', 'mtime', 'user_id', 'content'}),
    'db_dblog': frozenset({'id', 'uuid', 'time', 'loggername', 'levelname', 'dbnode_id', 'message', 'metadata'}),
}
"""The tables of an archive's database and the columns each must have (those of aiida-core's archives)."""

_TOLERATED_TABLES = frozenset({'alembic_version', 'db_dbsetting', 'sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4'})
"""Tables an archive's database may also hold, which are never read."""

_CHUNK = 1024 * 1024


def default_cache_folder() -> Path:
    """Return where archives' databases are cached: ``$PROVSTORE_PATH/cache/sqlite_zip`` when it is set, else
    ``$XDG_CACHE_HOME/provstore/sqlite_zip`` (default ``~/.cache``)."""
    configured = os.environ.get('PROVSTORE_PATH')
    if configured:
        return Path(configured).expanduser() / 'cache' / CACHE_SUBFOLDER
    cache_home = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(cache_home) / 'provstore' / CACHE_SUBFOLDER


def cache_file(archive: Path, member: Member, folder: Path) -> Path:
    """Return where the database ``member`` of the archive at ``archive`` is cached in ``folder``: its identity."""
    stat = archive.stat()
    return folder / f'{member.crc:08x}-{member.size}-{stat.st_size}-{stat.st_mtime_ns}.sqlite3'


def cached_database(archive: ArchiveZip, folder: Path) -> Path:
    """Return the path of the archive's database in the cache ``folder``, extracting and checking it first if needed.

    :raises ArchiveError: if the archive has no database member, or it is corrupt (bad CRC, truncated), not an
        SQLite database, lacks a table or column, or holds anything beyond the expected tables and indexes.
    """
    member = archive.database
    if member is None:
        raise ArchiveError(f'{archive.path}: no {DATABASE_MEMBER} in the zip')
    target = cache_file(archive.path, member, folder)
    if target.is_file():
        return target
    temporary = extract_database(archive.path, member, folder)
    try:
        check_database(archive.path, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def extract_database(archive: Path, member: Member, folder: Path) -> Path:
    """Copy the database member, in chunks, into a new temporary file in ``folder`` and return its path.

    The caller renames the file into place (:func:`cache_file`) once it is checked, or deletes it.

    :raises ArchiveError: if the folder cannot be made or the member is corrupt (its size and CRC are checked).
    """
    from provstore_sqlite_zip.members import MemberStream  # noqa: PLC0415 - members imports zipped, as this does

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f'{archive}: cannot make the cache folder {folder}: {exc.strerror or exc}') from None
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{member.crc:08x}.', suffix='.part', dir=folder)
    try:
        with os.fdopen(descriptor, 'wb') as output, MemberStream(archive, member, label=DATABASE_MEMBER) as stream:
            shutil.copyfileobj(stream, output, _CHUNK)
    except BaseException:
        os.unlink(temporary)
        raise
    return Path(temporary)


def check_database(archive: Path, path: Path) -> None:
    """Refuse a database that is not SQLite, lacks a table or column, or holds other SQL objects (triggers, views).

    :raises ArchiveError: naming the archive and the first defect.
    """
    problems = Problems(archive)
    database_problems(path, problems)
    if problems:
        raise ArchiveError(problems.lines()[0])


def database_problems(path: Path, problems: Problems) -> None:
    """Add to ``problems`` every structural defect of the database at ``path``: not SQLite, a table or column
    missing, an SQL object beyond the expected tables and indexes (a trigger, a view, another table)."""
    with open(path, 'rb') as raw:
        if raw.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            problems.add('databases', f'the member {DATABASE_MEMBER} is not an SQLite database')
            return
    try:
        connection = sqlite3.connect(f'file:{quote(str(path))}?mode=ro', uri=True)
        try:
            objects = connection.execute('SELECT type, name, sql FROM sqlite_master').fetchall()
            tables = {name for kind, name, _ in objects if kind == 'table'}
            for kind, name, sql in objects:
                if kind not in ('table', 'index') or (kind == 'table' and name not in REQUIRED_COLUMNS):
                    if kind == 'table' and name in _TOLERATED_TABLES:
                        continue
                    problems.add(
                        'unexpected SQL objects',
                        f'the member {DATABASE_MEMBER} holds the {kind} {name!r}, which an archive database does not '
                        'have',
                    )
                elif kind == 'table' and str(sql).upper().startswith('CREATE VIRTUAL'):
                    problems.add(
                        'unexpected SQL objects',
                        f'the table {name} of {DATABASE_MEMBER} is a virtual table, which an archive database does '
                        'not have',
                    )
            for table, columns in REQUIRED_COLUMNS.items():
                if table not in tables:
                    problems.add('missing tables', f'the member {DATABASE_MEMBER} has no table {table}')
                    continue
                present = {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
                missing = sorted(columns - present)
                if missing:
                    problems.add(
                        'tables missing columns',
                        f'the table {table} of {DATABASE_MEMBER} lacks the column(s) {", ".join(missing)}',
                    )
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        problems.add('databases', f'the member {DATABASE_MEMBER} is not a readable SQLite database: {exc}')


def forget_database(archive: ArchiveZip, folder: Path) -> None:
    """Delete the cached database of ``archive`` in ``folder``, if there is one; the archive is untouched."""
    if archive.database is not None:
        cache_file(archive.path, archive.database, folder).unlink(missing_ok=True)
