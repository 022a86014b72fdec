"""Reading an ``.aiida`` zip as untrusted input: its members, its ``metadata.json`` and its version.

Opening refuses the first defect with an :class:`~provstore.exceptions.ArchiveError` whose one-line message names
the file and the defect; :class:`Problems` collects every one, for ``archive verify``. Only the zip's central
directory and ``metadata.json`` are read here: nothing is extracted.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from provstore.archive import ArchiveMetadata
from provstore.exceptions import ArchiveError
from provstore_sqlite_zip.zipindex import (
    CentralEntry,
    CorruptZipError,
    Member,
    ObjectIndex,
    directory_digest,
    read_directory,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    'DATABASE_MEMBER',
    'DEFLATE_MAX_RATIO',
    'FORMAT_NAME',
    'METADATA_MAX_BYTES',
    'METADATA_MEMBER',
    'REPOSITORY_PREFIX',
    'SHA256',
    'VERSIONS_READABLE',
    'VERSION_HEAD',
    'ArchiveZip',
    'Member',
    'MemberScan',
    'Problems',
    'forget_scans',
    'is_readable',
    'open_archive_zip',
    'parse_metadata',
    'read_metadata_member',
    'scan_members',
]

FORMAT_NAME = 'sqlite_zip'
"""The name of the format (and of the read-only storage backend over it)."""

VERSION_HEAD = 'main_0001'
"""The ``export_version`` this format writes: aiida-core's newest."""

VERSIONS_READABLE = ('main_0000', 'main_0001', '1.0')
"""The versions read in place. ``main_0000`` and ``1.0`` (its older name) have the tables of ``main_0001``; where
aiida-core's migration to ``main_0001`` replaced empty values (NULL) with defaults, they are read as NULL."""

METADATA_MEMBER = 'metadata.json'
DATABASE_MEMBER = 'db.sqlite3'
REPOSITORY_PREFIX = 'repo/'

METADATA_MAX_BYTES = 8 * 1024 * 1024
"""The largest ``metadata.json`` read; aiida-core's are a few kilobytes."""

_LEGACY_VERSION = re.compile(r'0\.\d+')
SHA256 = re.compile(r'[0-9a-f]{64}')
"""The name of a repository object: its sha256 as lowercase hex digits."""
_IGNORED_PREFIXES = ('__MACOSX/',)
_IGNORED_NAMES = ('./',)
_ZIP_MAGIC = b'PK'
_ESCAPING = re.compile(r'\x00|\\|^/|^[A-Za-z]:|(?:^|/)\.\.?(?:/|$)')
"""A member name that escapes: NUL, a backslash, absolute, a drive, a ``.`` or ``..`` part."""
_ENCRYPTED = 0x1
_STORED = 0
_COMPRESSIONS = (_STORED, 8)
_LOCAL_HEADER_SIZE = 30
_BATCH = 5000
_LINE_MAX = 400
"""The longest line of a report of problems."""
DEFLATE_MAX_RATIO = 1032
"""The most bytes one compressed byte of a deflate stream can expand to (258 bytes per 2-bit code)."""
_DEFLATE_SLACK = 1024
"""Bytes allowed beyond the ratio: a stream's first literals and block headers."""


@dataclass(frozen=True)
class ArchiveZip:
    """The members of an archive that matter, from its central directory (nothing extracted)."""

    path: Path
    metadata: ArchiveMetadata
    database: Member | None
    objects: ObjectIndex
    """The repository's members by key (the sha256 of their content), in an index on disk."""


class Problems:
    """Defects found in an archive, one line each, in the order found.

    After :attr:`per_kind` lines of one kind the others of that kind are only counted, and :meth:`lines` ends with
    one line saying how many more there were: a hostile file cannot make the report as large as itself.
    """

    per_kind = 10

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: list[str] = []
        self._counts: dict[str, int] = {}

    def add(self, kind: str, defect: str) -> None:
        """Record ``defect`` (without the file's name) of the kind ``kind`` (a plural noun phrase)."""
        self._add(kind, f'{self.path}: {defect}')

    def add_error(self, kind: str, error: ArchiveError) -> None:
        """Record the defect an :class:`ArchiveError` names (its message names the file already)."""
        self._add(kind, str(error))

    @property
    def count(self) -> int:
        """How many defects were recorded, those only counted included."""
        return sum(self._counts.values())

    def _add(self, kind: str, line: str) -> None:
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        if count <= self.per_kind:
            line = ' '.join(line.split())  # NOTE: one line, whatever a hostile name holds (repr escapes most)
            self._lines.append(line if len(line) <= _LINE_MAX else f'{line[: _LINE_MAX - 3]}...')

    def lines(self) -> list[str]:
        """Return every line recorded, then one line per kind with more than :attr:`per_kind` defects."""
        more = [
            f'{self.path}: ... and {count - self.per_kind} more {kind}'
            for kind, count in self._counts.items()
            if count > self.per_kind
        ]
        return [*self._lines, *more]

    def __bool__(self) -> bool:
        return bool(self._lines)


@dataclass(frozen=True)
class MemberScan:
    """The members of a zip found in its central directory (nothing read yet)."""

    metadata: Member | None
    database: Member | None
    objects: ObjectIndex
    """The repository's members by key."""


_last_scan: tuple[tuple[Path, int, int, bytes], MemberScan] | None = None
"""The last sound scan, by the file's path and its central directory: an import opens the same file several times."""
_last_scan_lock = threading.Lock()


def open_archive_zip(path: Path) -> ArchiveZip:
    """Check the members and metadata of the zip at ``path`` and return what it holds.

    :raises ArchiveError: naming the first defect (not a zip, truncated, a member name that escapes, a duplicate,
        encrypted, symlink or overlapping member, an unsupported compression, a size no deflate stream can have, a
        missing or malformed ``metadata.json``, an unknown, newer or legacy version, a key format other than sha256,
        a repository member not named by a sha256).
    """
    problems = Problems(path)
    members = scan_members(path, problems)
    if problems:
        raise ArchiveError(problems.lines()[0])
    metadata = read_metadata_member(path, members.metadata)
    return ArchiveZip(path=path, metadata=metadata, database=members.database, objects=members.objects)


def forget_scans() -> None:
    """Drop the scan kept of the last archive opened (its index is closed when no reader holds it any more)."""
    global _last_scan  # noqa: PLW0603 - one module-level slot
    with _last_scan_lock:
        _last_scan = None


def scan_members(path: Path, problems: Problems) -> MemberScan:
    """Check every member in the central directory, adding each defect to ``problems``; return the members.

    Nothing is read but the central directory, a megabyte at a time: names, flags, compression methods, file
    modes, sizes and offsets. What later reads need is kept in an index on disk. The last scan found sound is
    reused for the same file while its central directory is the same, byte for byte (its sha256): a scan depends on
    nothing else.

    :raises ArchiveError: for a missing file, a file that is not a zip and one whose central directory cannot be
        read (truncated or corrupt).
    """
    global _last_scan  # noqa: PLW0603 - one module-level slot
    raw = _open_file(path)
    with raw:
        head = raw.read(4)
        found = problems.count
        try:
            start, size, entries = read_directory(raw, os.fstat(raw.fileno()).st_size)
            identity = (Path(os.path.abspath(path)), start, size, directory_digest(raw, start, size))
            with _last_scan_lock:
                if _last_scan is not None and _last_scan[0] == identity:
                    return _last_scan[1]
            scan = _scan(entries, start, problems)
        except CorruptZipError as exc:
            if head.startswith(_ZIP_MAGIC):
                raise ArchiveError(
                    f'{path}: truncated or corrupt zip file (its central directory cannot be read: {exc})'
                ) from None
            raise ArchiveError(f'{path}: not a zip file, so not a {FORMAT_NAME} archive') from None
    if problems.count == found:
        with _last_scan_lock:
            _last_scan = (identity, scan)
    return scan


def _open_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading, refusing a missing file and a folder.

    :raises ArchiveError: naming the defect.
    """
    try:
        raw = open(path, 'rb')
    except FileNotFoundError:
        raise ArchiveError(f'{path}: no such archive file') from None
    except IsADirectoryError:
        raise ArchiveError(f'{path}: is a folder, not an archive file') from None
    except OSError as exc:
        raise ArchiveError(f'{path}: cannot read the archive: {exc.strerror or exc}') from None
    if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
        raw.close()
        raise ArchiveError(f'{path}: not a zip file, so not a {FORMAT_NAME} archive')
    return raw


def _scan(entries: Iterator[CentralEntry], directory_start: int, problems: Problems) -> MemberScan:
    """Check each entry as it is read; index the repository's members, and every entry's name and extent (for the
    checks of duplicates and overlaps, which then run in SQL)."""
    objects = ObjectIndex()
    database = objects.connection
    database.execute(
        'CREATE TABLE entry (seq INTEGER PRIMARY KEY, name TEXT, counted TEXT, start INTEGER, end INTEGER)'
    )
    database.execute('BEGIN')  # NOTE: one transaction for the whole scan, not one per row
    metadata_member: Member | None = None
    database_member: Member | None = None
    extents: list[tuple[int, str, str | None, int, int]] = []
    rows: list[tuple[str, str, int, int, int, int, int, int]] = []
    for seq, entry in enumerate(entries):
        stored = entry.name
        name = stored.split('\x00', 1)[0]  # NOTE: the name as zipfile shows it, cut at a NUL
        end = entry.offset + _LOCAL_HEADER_SIZE + entry.name_length + entry.compressed
        counted: str | None = None
        if not (name in _IGNORED_NAMES or name.startswith(_IGNORED_PREFIXES)):
            if _escapes(stored):
                problems.add(
                    'member names that escape',
                    f'the member name {stored!r} escapes the archive (absolute, "..", "\\" or NUL)',
                )
            else:
                counted = name
                _check_member(entry, problems)
                member = Member(name, entry.offset, entry.compressed, entry.size, entry.method, entry.crc, entry.flags)
                if name == METADATA_MEMBER:
                    metadata_member = metadata_member or member
                elif name == DATABASE_MEMBER:
                    database_member = database_member or member
                elif name.startswith(REPOSITORY_PREFIX) and not name.endswith('/'):
                    key = name[len(REPOSITORY_PREFIX) :]
                    if SHA256.fullmatch(key):
                        rows.append((key, *member))
                    else:
                        problems.add(
                            'repository members not named by a sha256',
                            f'the repository member {name!r} is not named by a sha256 (64 lower-case hex digits)',
                        )
        extents.append((seq, name, counted, entry.offset, end))
        if len(extents) >= _BATCH:
            _flush(objects, extents, rows)
    _flush(objects, extents, rows)
    for (name,) in database.execute(
        'SELECT counted FROM entry WHERE counted IS NOT NULL GROUP BY counted HAVING count(*) > 1 ORDER BY min(seq)'
    ):
        problems.add('duplicate members', f'the member {name!r} appears twice')
    _check_layout(database, directory_start, problems)
    database.execute('DROP TABLE entry')
    objects.index_offsets()
    database.execute('COMMIT')
    return MemberScan(metadata=metadata_member, database=database_member, objects=objects)


def _flush(
    objects: ObjectIndex,
    extents: list[tuple[int, str, str | None, int, int]],
    rows: list[tuple[str, str, int, int, int, int, int, int]],
) -> None:
    """Write the batches of extents and objects into the index, and empty them."""
    objects.connection.executemany('INSERT INTO entry VALUES (?, ?, ?, ?, ?)', extents)
    objects.add(rows)
    extents.clear()
    rows.clear()


def read_metadata_member(path: Path, member: Member | None) -> ArchiveMetadata:
    """Return the checked metadata of the member ``metadata.json`` (``None``: the zip has none).

    :raises ArchiveError: naming the defect.
    """
    from provstore_sqlite_zip.members import MemberStream  # noqa: PLC0415 - members imports this module

    if member is None:
        raise ArchiveError(f'{path}: no {METADATA_MEMBER} in the zip, so not a {FORMAT_NAME} archive')
    if member.size > METADATA_MAX_BYTES:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is {member.size} bytes, more than the {METADATA_MAX_BYTES} read')
    try:
        with MemberStream(path, member) as stream:
            raw = stream.read(METADATA_MAX_BYTES + 1)
    except OSError as exc:
        raise ArchiveError(f'{path}: cannot read {METADATA_MEMBER}: {exc}') from None
    if len(raw) > METADATA_MAX_BYTES:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is larger than the {METADATA_MAX_BYTES} bytes read')
    return parse_metadata(path, raw)


def is_readable(member: Member) -> bool:
    """Whether this code can read the member: not encrypted, stored or deflated (:func:`scan_members` reports the
    others)."""
    return not member.flags & _ENCRYPTED and member.method in _COMPRESSIONS


def _escapes(name: str) -> bool:
    """Whether a member name could escape a folder it is extracted to, or is one no writer makes."""
    if not name.startswith('/') and name.replace('/', '').isalnum():
        return False  # NOTE: the common case (repo/<sha256>), without the regular expression
    return _ESCAPING.search(name) is not None


def _check_member(entry: CentralEntry, problems: Problems) -> None:
    """Add the defects of one member that its central directory entry shows."""
    name = entry.name
    if entry.flags & _ENCRYPTED:
        problems.add('encrypted members', f'the member {name!r} is encrypted, which no archive is')
        return
    if entry.method not in _COMPRESSIONS:
        problems.add(
            'members of an unsupported compression',
            f'the member {name!r} uses the compression method {entry.method}; only stored (0) and deflate (8) are read',
        )
        return
    mode = stat.S_IFMT(entry.external >> 16)
    if mode == stat.S_IFLNK:
        problems.add('symbolic links', f'the member {name!r} is a symbolic link, which no archive holds')
    elif mode not in (0, stat.S_IFREG, stat.S_IFDIR):
        problems.add('special files', f'the member {name!r} is a special file (mode {mode:o}), which no archive holds')
    if entry.method == _STORED and entry.size != entry.compressed:
        problems.add(
            'members of impossible sizes',
            f'the member {name!r} is stored uncompressed as {entry.compressed} bytes but declares {entry.size} bytes',
        )
    elif entry.size > DEFLATE_MAX_RATIO * entry.compressed + _DEFLATE_SLACK:
        problems.add(
            'members of impossible sizes',
            f'the member {name!r} declares {entry.size} bytes from {entry.compressed} compressed bytes, more '
            f'than deflate can produce ({DEFLATE_MAX_RATIO}:1): a decompression bomb',
        )


def _check_layout(database: sqlite3.Connection, directory_start: int, problems: Problems) -> None:
    """Add a defect for members whose data overlap (a zip bomb's trick) or run into the central directory: the
    entries walked in the order of their offsets, each against the next."""
    previous: tuple[str, int] | None = None
    for name, start, end in database.execute('SELECT name, start, end FROM entry ORDER BY start, seq'):
        if previous is not None and previous[1] > start:
            problems.add(
                'overlapping members',
                f'the members {previous[0]!r} and {name!r} overlap in the zip (a zip bomb, or a corrupt zip)',
            )
        previous = (name, end)
    if previous is not None and previous[1] > directory_start:
        problems.add(
            'members cut short',
            f'the member {previous[0]!r} runs into the central directory (a truncated or corrupt zip)',
        )


def parse_metadata(path: Path, raw: bytes) -> ArchiveMetadata:
    """Return the metadata in the bytes of ``metadata.json``, checked.

    :raises ArchiveError: for text that is not a JSON object, a missing, legacy, unknown or newer
        ``export_version``, or a ``key_format`` other than sha256.
    """
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is not valid JSON ({exc})') from None
    if not isinstance(value, dict):
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is not a JSON object but {type(value).__name__}')
    version = value.get('export_version')
    if not isinstance(version, str) or not version:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} has no export_version')
    if _LEGACY_VERSION.fullmatch(version):
        raise ArchiveError(
            f'{path}: a legacy archive (export_version {version}, from aiida-core before 2.0); reading legacy '
            'archives is not supported yet'
        )
    if version not in VERSIONS_READABLE:
        raise ArchiveError(
            f'{path}: export_version {version!r} is unknown or newer than this code reads '
            f'({", ".join(VERSIONS_READABLE)}): upgrade provstore'
        )
    # NOTE: aiida-core's archives before 2.1 have no key_format; their repository was always sha256.
    key_format = value.get('key_format', 'sha256')
    if key_format != 'sha256':
        raise ArchiveError(f'{path}: key_format {key_format!r} is not supported (only sha256)')
    return ArchiveMetadata(format=FORMAT_NAME, version=version, key_format=key_format, details=value)
