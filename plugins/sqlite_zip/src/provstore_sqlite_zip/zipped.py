"""Reading an ``.aiida`` zip as untrusted input: its members, its ``metadata.json`` and its version.

Opening refuses the first defect with an :class:`~provstore.exceptions.ArchiveError` whose one-line message names
the file and the defect; :class:`Problems` collects every one, for ``archive verify``. Only the zip's central
directory and ``metadata.json`` are read here: nothing is extracted.
"""

from __future__ import annotations

import json
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provstore.archive import ArchiveMetadata
from provstore.exceptions import ArchiveError

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
    'MemberScan',
    'Problems',
    'is_readable',
    'open_archive_zip',
    'open_zip',
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
_UTF8 = 0x800
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_LOCAL_HEADER_SIZE = 30
_LINE_MAX = 400
"""The longest line of a report of problems."""
DEFLATE_MAX_RATIO = 1032
"""The most bytes one compressed byte of a deflate stream can expand to (258 bytes per 2-bit code)."""
_DEFLATE_SLACK = 1024
"""Bytes allowed beyond the ratio: a stream's first literals and block headers."""


@dataclass(frozen=True)
class ArchiveZip:
    """The members of an archive that matter, by name, from its central directory (nothing extracted)."""

    path: Path
    metadata: ArchiveMetadata
    database: zipfile.ZipInfo | None
    objects: dict[str, zipfile.ZipInfo]
    """The repository's members by key (the sha256 of their content)."""


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
    """The members of a zip found in its central directory, and the defects seen there (nothing read yet)."""

    metadata: zipfile.ZipInfo | None
    database: zipfile.ZipInfo | None
    objects: dict[str, zipfile.ZipInfo]
    """The repository's members by key."""


def open_archive_zip(path: Path) -> tuple[zipfile.ZipFile, ArchiveZip]:
    """Open the zip at ``path``, check its members and metadata, and return it with what it holds.

    The caller closes the returned :class:`zipfile.ZipFile`.

    :raises ArchiveError: naming the first defect (not a zip, truncated, a member name that escapes, a duplicate,
        encrypted, symlink or overlapping member, an unsupported compression, a size no deflate stream can have, a
        missing or malformed ``metadata.json``, an unknown, newer or legacy version, a key format other than sha256,
        a repository member not named by a sha256).
    """
    handle = open_zip(path)
    try:
        problems = Problems(path)
        members = scan_members(path, handle, problems)
        if problems:
            raise ArchiveError(problems.lines()[0])
        metadata = read_metadata_member(path, handle, members.metadata)
        return handle, ArchiveZip(path=path, metadata=metadata, database=members.database, objects=members.objects)
    except BaseException:
        handle.close()
        raise


def open_zip(path: Path) -> zipfile.ZipFile:
    """Return the zip at ``path``, refusing a missing file, a file that is not a zip and a truncated one.

    :raises ArchiveError: naming the defect.
    """
    try:
        with open(path, 'rb') as raw:
            head = raw.read(4)
    except FileNotFoundError:
        raise ArchiveError(f'{path}: no such archive file') from None
    except IsADirectoryError:
        raise ArchiveError(f'{path}: is a folder, not an archive file') from None
    except OSError as exc:
        raise ArchiveError(f'{path}: cannot read the archive: {exc.strerror or exc}') from None
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        if head.startswith(_ZIP_MAGIC):
            raise ArchiveError(
                f'{path}: truncated or corrupt zip file (its central directory cannot be read: {exc})'
            ) from None
        raise ArchiveError(f'{path}: not a zip file, so not a {FORMAT_NAME} archive') from None


def scan_members(path: Path, handle: zipfile.ZipFile, problems: Problems) -> MemberScan:
    """Check every member in the central directory, adding each defect to ``problems``; return the members.

    Nothing is read but the central directory: names, flags, compression methods, file modes, sizes and offsets.
    """
    seen: set[str] = set()
    database: zipfile.ZipInfo | None = None
    metadata: zipfile.ZipInfo | None = None
    objects: dict[str, zipfile.ZipInfo] = {}
    infos = handle.infolist()
    for info in infos:
        name = info.filename
        if name in _IGNORED_NAMES or name.startswith(_IGNORED_PREFIXES):
            continue
        # NOTE: zipfile cuts a name at its first NUL; the name as stored is kept in orig_filename.
        if _escapes(info.orig_filename):
            problems.add(
                'member names that escape',
                f'the member name {info.orig_filename!r} escapes the archive (absolute, "..", "\\" or NUL)',
            )
            continue
        if name in seen:
            problems.add('duplicate members', f'the member {name!r} appears twice')
            continue
        seen.add(name)
        _check_member(info, problems)
        if name == METADATA_MEMBER:
            metadata = info
        elif name == DATABASE_MEMBER:
            database = info
        elif name.startswith(REPOSITORY_PREFIX) and not info.is_dir():
            key = name[len(REPOSITORY_PREFIX) :]
            if not SHA256.fullmatch(key):
                problems.add(
                    'repository members not named by a sha256',
                    f'the repository member {name!r} is not named by a sha256 (64 lower-case hex digits)',
                )
                continue
            objects[key] = info
    _check_layout(infos, getattr(handle, 'start_dir', None), problems)
    return MemberScan(metadata=metadata, database=database, objects=objects)


def read_metadata_member(path: Path, handle: zipfile.ZipFile, member: zipfile.ZipInfo | None) -> ArchiveMetadata:
    """Return the checked metadata of the member ``metadata.json`` (``None``: the zip has none).

    :raises ArchiveError: naming the defect.
    """
    if member is None:
        raise ArchiveError(f'{path}: no {METADATA_MEMBER} in the zip, so not a {FORMAT_NAME} archive')
    if member.file_size > METADATA_MAX_BYTES:
        raise ArchiveError(
            f'{path}: {METADATA_MEMBER} is {member.file_size} bytes, more than the {METADATA_MAX_BYTES} read'
        )
    try:
        with handle.open(member) as stream:
            raw = stream.read(METADATA_MAX_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise ArchiveError(f'{path}: cannot read {METADATA_MEMBER}: {exc}') from None
    if len(raw) > METADATA_MAX_BYTES:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is larger than the {METADATA_MAX_BYTES} bytes read')
    return parse_metadata(path, raw)


def is_readable(info: zipfile.ZipInfo) -> bool:
    """Whether this code can read the member: not encrypted, stored or deflated (:func:`scan_members` reports the
    others)."""
    return not info.flag_bits & _ENCRYPTED and info.compress_type in _COMPRESSIONS


def _escapes(name: str) -> bool:
    """Whether a member name could escape a folder it is extracted to, or is one no writer makes."""
    if not name.startswith('/') and name.replace('/', '').isalnum():
        return False  # NOTE: the common case (repo/<sha256>), without the regular expression
    return _ESCAPING.search(name) is not None


def _check_member(info: zipfile.ZipInfo, problems: Problems) -> None:
    """Add the defects of one member that its central directory entry shows."""
    name = info.filename
    if info.flag_bits & _ENCRYPTED:
        problems.add('encrypted members', f'the member {name!r} is encrypted, which no archive is')
        return
    if info.compress_type not in _COMPRESSIONS:
        problems.add(
            'members of an unsupported compression',
            f'the member {name!r} uses the compression method {info.compress_type}; only stored (0) and deflate (8) '
            'are read',
        )
        return
    mode = stat.S_IFMT(info.external_attr >> 16)
    if mode == stat.S_IFLNK:
        problems.add('symbolic links', f'the member {name!r} is a symbolic link, which no archive holds')
    elif mode not in (0, stat.S_IFREG, stat.S_IFDIR):
        problems.add('special files', f'the member {name!r} is a special file (mode {mode:o}), which no archive holds')
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        problems.add(
            'members of impossible sizes',
            f'the member {name!r} is stored uncompressed as {info.compress_size} bytes but declares '
            f'{info.file_size} bytes',
        )
    elif info.file_size > DEFLATE_MAX_RATIO * info.compress_size + _DEFLATE_SLACK:
        problems.add(
            'members of impossible sizes',
            f'the member {name!r} declares {info.file_size} bytes from {info.compress_size} compressed bytes, more '
            f'than deflate can produce ({DEFLATE_MAX_RATIO}:1): a decompression bomb',
        )


def _check_layout(infos: list[zipfile.ZipInfo], directory_start: int | None, problems: Problems) -> None:
    """Add a defect for members whose data overlap (a zip bomb's trick) or run into the central directory."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for info, following in zip(ordered, [*ordered[1:], None], strict=True):
        end = info.header_offset + _LOCAL_HEADER_SIZE + len(_stored_name(info)) + info.compress_size
        if following is not None and end > following.header_offset:
            problems.add(
                'overlapping members',
                f'the members {info.filename!r} and {following.filename!r} overlap in the zip (a zip bomb, or a '
                'corrupt zip)',
            )
        elif following is None and directory_start is not None and end > directory_start:
            problems.add(
                'members cut short',
                f'the member {info.filename!r} runs into the central directory (a truncated or corrupt zip)',
            )


def _stored_name(info: zipfile.ZipInfo) -> bytes:
    """Return the member's name as the zip stores it (UTF-8 when flagged, else cp437)."""
    name = info.orig_filename
    if name.isascii():
        return name.encode('ascii')
    return name.encode('utf-8' if info.flag_bits & _UTF8 else 'cp437', errors='replace')


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
