"""Reading an ``.aiida`` zip as untrusted input: its members, its ``metadata.json`` and its version.

Every defect is refused with an :class:`~provstore.exceptions.ArchiveError` whose one-line message names the file
and the defect. Only the zip's central directory and ``metadata.json`` are read here: nothing is extracted.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provstore.archive import ArchiveMetadata
from provstore.exceptions import ArchiveError

__all__ = [
    'DATABASE_MEMBER',
    'FORMAT_NAME',
    'METADATA_MAX_BYTES',
    'METADATA_MEMBER',
    'REPOSITORY_PREFIX',
    'SHA256',
    'VERSIONS_READABLE',
    'VERSION_HEAD',
    'ArchiveZip',
    'open_archive_zip',
    'parse_metadata',
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


@dataclass(frozen=True)
class ArchiveZip:
    """The members of an archive that matter, by name, from its central directory (nothing extracted)."""

    path: Path
    metadata: ArchiveMetadata
    database: zipfile.ZipInfo | None
    objects: dict[str, zipfile.ZipInfo]
    """The repository's members by key (the sha256 of their content)."""


def open_archive_zip(path: Path) -> tuple[zipfile.ZipFile, ArchiveZip]:
    """Open the zip at ``path``, check its member names and metadata, and return it with what it holds.

    The caller closes the returned :class:`zipfile.ZipFile`.

    :raises ArchiveError: naming the defect (not a zip, truncated, a member name that escapes, a duplicate member,
        a missing or malformed ``metadata.json``, an unknown, newer or legacy version, a key format other than
        sha256, a repository member not named by a sha256).
    """
    handle = _open_zip(path)
    try:
        return handle, _read_members(path, handle)
    except BaseException:
        handle.close()
        raise


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Return the zip at ``path``, refusing a missing file, a file that is not a zip and a truncated one."""
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


def _read_members(path: Path, handle: zipfile.ZipFile) -> ArchiveZip:
    """Check every member name, then read the metadata; return the database and repository members."""
    seen: set[str] = set()
    database: zipfile.ZipInfo | None = None
    metadata: zipfile.ZipInfo | None = None
    objects: dict[str, zipfile.ZipInfo] = {}
    for info in handle.infolist():
        name = info.filename
        if name in _IGNORED_NAMES or name.startswith(_IGNORED_PREFIXES):
            continue
        # NOTE: zipfile cuts a name at its first NUL; the name as stored is kept in orig_filename.
        _check_member_name(path, info.orig_filename)
        if name in seen:
            raise ArchiveError(f'{path}: the member {name!r} appears twice')
        seen.add(name)
        if name == METADATA_MEMBER:
            metadata = info
        elif name == DATABASE_MEMBER:
            database = info
        elif name.startswith(REPOSITORY_PREFIX) and not info.is_dir():
            key = name[len(REPOSITORY_PREFIX) :]
            if not SHA256.fullmatch(key):
                raise ArchiveError(
                    f'{path}: the repository member {name!r} is not named by a sha256 (64 lower-case hex digits)'
                )
            objects[key] = info
    if metadata is None:
        raise ArchiveError(f'{path}: no {METADATA_MEMBER} in the zip, so not a {FORMAT_NAME} archive')
    if metadata.file_size > METADATA_MAX_BYTES:
        raise ArchiveError(
            f'{path}: {METADATA_MEMBER} is {metadata.file_size} bytes, more than the {METADATA_MAX_BYTES} read'
        )
    try:
        with handle.open(metadata) as stream:
            raw = stream.read(METADATA_MAX_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise ArchiveError(f'{path}: cannot read {METADATA_MEMBER}: {exc}') from None
    if len(raw) > METADATA_MAX_BYTES:
        raise ArchiveError(f'{path}: {METADATA_MEMBER} is larger than the {METADATA_MAX_BYTES} bytes read')
    return ArchiveZip(path=path, metadata=parse_metadata(path, raw), database=database, objects=objects)


def _check_member_name(path: Path, name: str) -> None:
    """Refuse a member name that could escape a folder it is extracted to, or that no writer makes."""
    parts = name.split('/')
    if (
        '\x00' in name
        or '\\' in name
        or name.startswith('/')
        or re.match(r'[A-Za-z]:', name)
        or any(part in ('..', '.') for part in parts)
    ):
        raise ArchiveError(f'{path}: the member name {name!r} escapes the archive (absolute, "..", "\\" or NUL)')


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
