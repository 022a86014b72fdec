"""Migration of older ``.aiida`` archives (``main_0000`` and ``1.0``, its earlier name) to ``main_0001``.

The two versions have the same tables; ``main_0001`` forbids the empty values (NULL) that archives converted from
aiida-core's legacy format may hold. As aiida-core's own migration does, rows of authorisation infos and comments
that lack their user, computer or node are dropped, and other missing values get defaults (an empty text, an empty
JSON object, ``enabled``, the group type ``core``, or, for times, the time of the migration).

The new file is written by :class:`~provstore_sqlite_zip.writer.SqliteZipWriter`: rows in batches, then the
metadata, then every ``repo/`` member streamed in chunks, into a temporary file beside the destination that is
synced and renamed into place only when complete. The source is opened read-only and never written.
"""

from __future__ import annotations

import copy
import datetime
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provstore import __version__
from provstore.exceptions import ArchiveError, ArchiveExportError
from provstore.files import move_into_place
from provstore.storage import EntityStorage, EntityType, Row
from provstore.storage.textrows import to_text_row
from provstore_sqlite_zip.members import MemberStream
from provstore_sqlite_zip.writer import AIIDA_VERSION, SqliteZipWriter, check_destination, scratch_file
from provstore_sqlite_zip.zipped import VERSION_HEAD, ArchiveZip, open_archive_zip

__all__ = ['migrate_archive']

_LOGGER = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]

_NOW = object()
"""Stands for the time of the migration among the defaults."""

DEFAULTS: Mapping[EntityType, Mapping[str, Any]] = {
    EntityType.USER: {'first_name': '', 'last_name': '', 'institution': ''},
    EntityType.COMPUTER: {
        'description': '',
        'hostname': '',
        'metadata': {},
        'scheduler_type': '',
        'transport_type': '',
    },
    EntityType.AUTHINFO: {'enabled': True, 'auth_params': {}, 'metadata': {}},
    EntityType.NODE: {'label': '', 'description': '', 'ctime': _NOW, 'mtime': _NOW},
    EntityType.GROUP: {'description': '', 'time': _NOW, 'type_string': 'core'},
    EntityType.COMMENT: {'content': '', 'ctime': _NOW, 'mtime': _NOW},
    EntityType.LOG: {'levelname': '', 'loggername': '', 'message': '', 'metadata': {}, 'time': _NOW},
}
"""The value given to a column that is NULL in an older archive, per entity kind (the facts of aiida-core's
migration main_0000 -> main_0001)."""

DROPPED_WITHOUT: Mapping[EntityType, tuple[str, ...]] = {
    EntityType.AUTHINFO: ('aiidauser_id', 'dbcomputer_id'),
    EntityType.COMMENT: ('dbnode_id', 'user_id'),
}
"""Rows of these kinds are dropped when one of these columns is NULL (their user, computer or node was deleted)."""

BATCH_SIZE = 1000
_CHUNK = 1024 * 1024
_DEFAULT_COMPRESSION = 6


def migrate_archive(
    source: Path, destination: Path, *, force: bool = False, progress: ProgressCallback | None = None
) -> None:
    """Write the archive ``source`` as a new ``main_0001`` archive at ``destination``; see the module's text.

    An archive that is at ``main_0001`` already is copied unchanged (as aiida-core does), so that a script can
    migrate every file of a folder alike and always find the output.

    :raises ArchiveError: if ``source`` is not a readable archive, or a row lacks a value ``main_0001`` requires
        that no default stands for.
    :raises ArchiveExportError: if ``destination`` exists and ``force`` is false, or is ``source`` itself.
    """
    source = Path(source).expanduser().absolute()
    archive = open_archive_zip(source)
    destination = check_destination(Path(destination).expanduser(), force)
    if destination.exists() and os.path.samefile(source, destination):
        raise ArchiveExportError(f'{destination} is the archive being migrated: give another output file')
    if archive.metadata.version == VERSION_HEAD:
        _copy(source, destination, progress)
    else:
        _rewrite(archive, destination, force, progress)


def _copy(source: Path, destination: Path, progress: ProgressCallback | None) -> None:
    """Copy ``source`` to ``destination`` through a temporary file beside it."""
    partial = scratch_file(destination, '.part')
    total = source.stat().st_size
    try:
        with open(source, 'rb') as reader, open(partial, 'wb') as writer:
            done = 0
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress('bytes', done, total)
        move_into_place(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _rewrite(archive: ArchiveZip, destination: Path, force: bool, progress: ProgressCallback | None) -> None:
    """Write the rows (completed), the metadata and the objects of ``archive`` as a new file."""
    from provstore_sqlite_zip.format import SqliteZipFormat  # noqa: PLC0415 - the format imports this module

    details = archive.metadata.details
    level = details.get('compression')
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 9:
        level = _DEFAULT_COMPRESSION
    now = datetime.datetime.now(datetime.timezone.utc)
    storage = SqliteZipFormat.open(archive.path)  # NOTE: checks the database (tables, columns, no triggers)
    try:
        assert isinstance(storage, EntityStorage)  # the sqlite_zip backend stores entities
        writer = SqliteZipWriter(destination, compression=level, force=force)
        try:
            for entity in EntityType:
                _copy_rows(archive.path, storage, writer, entity, now=now, progress=progress)
            writer.write_metadata_as(_migrated_metadata(details, level, now))
            _copy_objects(archive, writer, progress)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    finally:
        storage.close()


def _copy_rows(
    path: Path,
    storage: EntityStorage,
    writer: SqliteZipWriter,
    entity: EntityType,
    *,
    now: datetime.datetime,
    progress: ProgressCallback | None,
) -> None:
    """Copy the rows of ``entity`` in batches, completed with defaults; drop those aiida-core's migration drops."""
    defaults = {column: now if value is _NOW else value for column, value in DEFAULTS.get(entity, {}).items()}
    needed = DROPPED_WITHOUT.get(entity, ())
    required = writer.required_columns(entity)
    batch: list[Row] = []
    done = dropped = 0
    total = storage.count_rows(entity)
    for row in storage.iter_rows(entity, BATCH_SIZE):
        if any(row.get(column) is None for column in needed):
            dropped += 1
            continue
        batch.append(to_text_row(entity, _completed(path, entity, row, defaults, required)))
        if len(batch) >= BATCH_SIZE:
            writer.write_rows(entity, batch)
            done += len(batch)
            batch = []
            if progress is not None:
                progress(entity.value, done, total - dropped)
    writer.write_rows(entity, batch)
    done += len(batch)
    if progress is not None:
        progress(entity.value, done, done)
    if dropped:
        _LOGGER.warning(
            '%s: %d %s row(s) without their %s were dropped, as main_0001 requires',
            path,
            dropped,
            entity.value,
            ' or '.join(needed),
        )


def _completed(path: Path, entity: EntityType, row: Row, defaults: Mapping[str, Any], required: frozenset[str]) -> Row:
    """Return ``row`` with its NULL values replaced by ``defaults``.

    :raises ArchiveError: if a column ``main_0001`` requires is still NULL.
    """
    filled = {
        column: copy.copy(defaults[column]) if value is None and column in defaults else value
        for column, value in row.items()
    }
    missing = sorted(column for column in required if filled.get(column) is None)
    if missing:
        raise ArchiveError(
            f'{path}: the {entity.value} row with id {filled.get("id")} has no {", ".join(missing)}, which an '
            f'archive of version {VERSION_HEAD} requires'
        )
    return filled


def _migrated_metadata(details: Mapping[str, Any], level: int, now: datetime.datetime) -> dict[str, Any]:
    """Return the source's metadata at ``main_0001``, its conversion recorded as aiida-core records its own."""
    metadata = dict(details)
    previous = details.get('conversion_info')
    conversions = [str(item) for item in previous] if isinstance(previous, list) else []
    conversions.append(
        f'Converted from version {details["export_version"]} to {VERSION_HEAD} with provstore v{__version__}'
    )
    metadata.update(
        {
            'export_version': VERSION_HEAD,
            'aiida_version': AIIDA_VERSION,
            'key_format': 'sha256',
            'compression': level,
            'mtime': now.isoformat(),
            'conversion_info': conversions,
        }
    )
    return metadata


def _copy_objects(archive: ArchiveZip, writer: SqliteZipWriter, progress: ProgressCallback | None) -> None:
    """Stream every ``repo/`` member into the new archive, in the order of the source file; each one's size and CRC
    are checked as it is read (:class:`~provstore_sqlite_zip.members.MemberStream`).

    NOTE: the members are decompressed and compressed again: the CRC check on reading is worth keeping.
    """
    total = len(archive.objects)
    total_bytes = archive.objects.totals()[0]
    done = done_bytes = 0
    if progress is not None and total:
        progress('objects', 0, total)
    with open(archive.path, 'rb') as raw:
        for key, info in archive.objects.in_file_order():
            with MemberStream(archive.path, info, raw, label=info.name) as stream:
                done_bytes += writer.write_object(key, stream)  # type: ignore[arg-type]
            done += 1
            if progress is not None:
                progress('bytes', done_bytes, total_bytes)
                progress('objects', done, total)
