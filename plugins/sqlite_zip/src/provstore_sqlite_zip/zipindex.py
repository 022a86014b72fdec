"""A zip's central directory read as a stream into an index on disk: no Python object per member is kept.

:func:`read_directory` finds the end records (zip64 included) and yields each entry of the central directory as a
plain tuple, decoding zip64 extra fields and names (UTF-8 when flagged, else cp437); anything it cannot read is a
:class:`CorruptZipError`. :class:`ObjectIndex` is what later reads need of the repository's members (offset, sizes,
method, CRC, flags), in a private temporary SQLite database (on disk, deleted when closed; SQLite's page cache
bounds its memory), looked up by key or walked in the order of the file.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    'END64_RECORD',
    'END64_SIGNATURE',
    'END_RECORD',
    'END_SIGNATURE',
    'LOCATOR',
    'LOCATOR_SIGNATURE',
    'ZIP64_TAG',
    'CentralEntry',
    'CorruptZipError',
    'Member',
    'ObjectIndex',
    'directory_digest',
    'read_directory',
]

END_RECORD = struct.Struct('<4s4H2LH')
"""End of central directory: signature, disk, disk of the directory, entries here, entries, size, offset, comment."""
END_SIGNATURE = b'PK\x05\x06'
LOCATOR = struct.Struct('<4sLQL')
"""Zip64 end of central directory locator: signature, disk, offset of the zip64 end record, disks."""
LOCATOR_SIGNATURE = b'PK\x06\x07'
END64_RECORD = struct.Struct('<4sQ2H2L4Q')
"""Zip64 end of central directory: signature, record size, versions, disks, entries here, entries, size, offset."""
END64_SIGNATURE = b'PK\x06\x06'
_CENTRAL = struct.Struct('<4s4xHH4xLLLHHH4xLL')
"""A central directory entry: signature, flags, method, CRC, compressed size, size, lengths of the name, extra field
and comment, external attributes, offset of the local header (versions, times, disk, internal attributes skipped)."""
_CENTRAL_SIGNATURE = b'PK\x01\x02'
_EXTRA = struct.Struct('<HH')
ZIP64_TAG = 0x0001
_ALL_ONES_32 = 0xFFFF_FFFF
_UTF8 = 0x800
_END_SEARCH = END_RECORD.size + 0xFFFF
"""The end record is within the last 22 bytes plus the longest comment."""
_READ = 1024 * 1024


class CorruptZipError(Exception):
    """The central directory cannot be read; the message says why."""


class CentralEntry(NamedTuple):
    """One entry of the central directory, as read."""

    name: str
    name_length: int
    """The length of the name as stored (bytes), which the local header repeats."""
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    external: int
    offset: int


class Member(NamedTuple):
    """What reading one member needs: where its local header is, its sizes, compression method, CRC and flags."""

    name: str
    offset: int
    compressed: int
    size: int
    method: int
    crc: int
    flags: int


def read_directory(raw: BinaryIO, file_size: int) -> tuple[int, int, Iterator[CentralEntry]]:
    """Return where the central directory of the zip open as ``raw`` starts, its size, and an iterator over its
    entries (which reads it from ``raw`` as it goes).

    :raises CorruptZipError: if there is no end record, or it (or a zip64 record) is inconsistent; the iterator raises
        it for an entry that cannot be read.
    """
    tail_start = max(0, file_size - _END_SEARCH)
    raw.seek(tail_start)
    tail = raw.read(file_size - tail_start)
    where = tail.rfind(END_SIGNATURE)
    if where < 0 or where + END_RECORD.size > len(tail):
        raise CorruptZipError('no end of central directory record')
    _, disk, directory_disk, _, _, size, start, _ = END_RECORD.unpack_from(tail, where)
    end_offset = tail_start + where
    if disk or directory_disk:
        raise CorruptZipError('a zip spanning several disks')
    locator = where - LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == LOCATOR_SIGNATURE:
        size, start, end_offset = _zip64_end(raw, tail, locator, tail_start)
    if start + size != end_offset:
        raise CorruptZipError('the central directory is not where the end record says')
    return start, size, _entries(raw, start, size)


def directory_digest(raw: BinaryIO, start: int, size: int) -> bytes:
    """Return the sha256 of the ``size`` bytes of the central directory at ``start``: what a scan depends on."""
    digest = hashlib.sha256()
    raw.seek(start)
    left = size
    while left and (chunk := raw.read(min(_READ, left))):
        digest.update(chunk)
        left -= len(chunk)
    return digest.digest()


def _zip64_end(raw: BinaryIO, tail: bytes, locator: int, tail_start: int) -> tuple[int, int, int]:
    """Return the size and start of the central directory and the offset of the zip64 end record."""
    _, disk, record, disks = LOCATOR.unpack_from(tail, locator)
    if disk or disks > 1:
        raise CorruptZipError('a zip spanning several disks')
    raw.seek(record)
    block = raw.read(END64_RECORD.size)
    if len(block) < END64_RECORD.size or block[:4] != END64_SIGNATURE:
        raise CorruptZipError('no zip64 end of central directory record where its locator says')
    _, _, _, _, disk, directory_disk, _, _, size, start = END64_RECORD.unpack(block)
    if disk or directory_disk:
        raise CorruptZipError('a zip spanning several disks')
    if record + END64_RECORD.size > tail_start + locator:
        raise CorruptZipError('the zip64 end of central directory record overlaps its locator')
    return size, start, record


def _entries(raw: BinaryIO, start: int, size: int) -> Iterator[CentralEntry]:
    """Yield the entries of the central directory of ``size`` bytes at ``start``, reading it a megabyte at a time."""
    raw.seek(start)
    buffer = b''
    position = 0
    left = size  # NOTE: bytes of the directory not read yet
    done = 0  # NOTE: bytes of the directory parsed
    central = _CENTRAL
    while done < size:
        if len(buffer) - position < central.size:
            buffer, position, left = _more(raw, buffer, position, left, central.size)
        fields = central.unpack_from(buffer, position)
        signature, flags, method, crc, compressed, length, name_length, extra_length, comment_length = fields[:9]
        external, offset = fields[9:]
        if signature != _CENTRAL_SIGNATURE:
            raise CorruptZipError('bad magic number for a central directory entry')
        whole = central.size + name_length + extra_length + comment_length
        if len(buffer) - position < whole:
            buffer, position, left = _more(raw, buffer, position, left, whole)
        name_start = position + central.size
        stored = buffer[name_start : name_start + name_length]
        try:
            name = stored.decode('utf-8') if flags & _UTF8 else stored.decode('cp437')
        except UnicodeDecodeError:
            raise CorruptZipError(f'the member name {stored!r} is not UTF-8, as its flags say') from None
        if _ALL_ONES_32 in (compressed, length, offset):
            extra = buffer[name_start + name_length : name_start + name_length + extra_length]
            length, compressed, offset = _zip64_fields(name, extra, length, compressed, offset)
        position += whole
        done += whole
        yield CentralEntry(name, name_length, flags, method, crc, compressed, length, external, offset)


def _more(raw: BinaryIO, buffer: bytes, position: int, left: int, needed: int) -> tuple[bytes, int, int]:
    """Return the unparsed rest of ``buffer`` followed by more of the directory: at least ``needed`` bytes."""
    rest = buffer[position:]
    wanted = max(_READ, needed - len(rest))
    chunk = raw.read(min(wanted, left)) if left else b''
    left -= len(chunk)
    rest += chunk
    if len(rest) < needed:
        raise CorruptZipError('the central directory ends inside an entry (truncated)')
    return rest, 0, left


def _zip64_fields(name: str, extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """Return the size, compressed size and offset, those saturated at 2**32 - 1 read from the zip64 extra field."""
    position = 0
    while position + _EXTRA.size <= len(extra):
        tag, length = _EXTRA.unpack_from(extra, position)
        body = position + _EXTRA.size
        if body + length > len(extra):
            raise CorruptZipError(f'the extra field of {name!r} is corrupt')
        if tag == ZIP64_TAG:
            values = []
            for start in range(body, body + length - 7, 8):
                values.append(int.from_bytes(extra[start : start + 8], 'little'))
            fields = [size, compressed, offset]
            for index, value in enumerate(fields):
                if value == _ALL_ONES_32:
                    if not values:
                        raise CorruptZipError(f'the zip64 extra field of {name!r} lacks a size or offset')
                    fields[index] = values.pop(0)
            return fields[0], fields[1], fields[2]
        position = body + length
    raise CorruptZipError(f'the entry of {name!r} has no zip64 extra field for its size or offset')


class ObjectIndex(Mapping[str, Member]):
    """The repository's members by key, in a temporary SQLite database: looked up, counted and walked on disk.

    It may be shared between threads (every statement runs under a lock) and is never written once built.
    """

    def __init__(self) -> None:
        # NOTE: an empty name is SQLite's private temporary database: a file unlinked at once, gone when closed.
        import sqlite3  # noqa: PLC0415 - not when the plugin's hooks are only listed

        self._connection = sqlite3.connect('', check_same_thread=False, isolation_level=None)
        self._connection.execute('PRAGMA journal_mode = OFF')
        self._connection.execute('PRAGMA synchronous = OFF')
        self._connection.execute(
            'CREATE TABLE object (key TEXT PRIMARY KEY, name TEXT, offset INTEGER, compressed INTEGER, size INTEGER, '
            'method INTEGER, crc INTEGER, flags INTEGER) WITHOUT ROWID'
        )
        self._lock = threading.Lock()
        self._count = 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The index's database, for the scan that fills it (its other tables are the scan's own)."""
        return self._connection

    def add(self, rows: list[tuple[str, str, int, int, int, int, int, int]]) -> int:
        """Insert ``(key, name, offset, compressed, size, method, crc, flags)`` rows, the first of a key winning;
        return how many were new."""
        with self._lock:
            before = self._connection.total_changes
            self._connection.executemany('INSERT OR IGNORE INTO object VALUES (?, ?, ?, ?, ?, ?, ?, ?)', rows)
            added = self._connection.total_changes - before
            self._count += added
            return added

    def index_offsets(self) -> None:
        """Index the members by offset, for :meth:`in_file_order` (once every member is added: faster than as they
        come)."""
        with self._lock:
            self._connection.execute('CREATE INDEX object_offset ON object (offset, key)')

    def __getitem__(self, key: str) -> Member:
        with self._lock:
            row = self._connection.execute(
                'SELECT name, offset, compressed, size, method, crc, flags FROM object WHERE key = ?', (key,)
            ).fetchone()
        if row is None:
            raise KeyError(key)
        return Member(*row)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._lock:
            return self._connection.execute('SELECT 1 FROM object WHERE key = ?', (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        """Iterate over the keys in order, a thousand per query (no statement stays open between them)."""
        after = ''
        while True:
            with self._lock:
                keys = [
                    row[0]
                    for row in self._connection.execute(
                        'SELECT key FROM object WHERE key > ? ORDER BY key LIMIT 1000', (after,)
                    )
                ]
            yield from keys
            if len(keys) < 1000:
                return
            after = keys[-1]

    def in_file_order(self) -> Iterator[tuple[str, Member]]:
        """Iterate over ``(key, member)`` in the order of the members in the file (reads then go forward)."""
        after = (-1, '')
        while True:
            with self._lock:
                rows = self._connection.execute(
                    'SELECT key, name, offset, compressed, size, method, crc, flags FROM object '
                    'WHERE (offset, key) > (?, ?) ORDER BY offset, key LIMIT 1000',
                    after,
                ).fetchall()
            for row in rows:
                yield row[0], Member(*row[1:])
            if len(rows) < 1000:
                return
            after = (rows[-1][2], rows[-1][0])

    def totals(self) -> tuple[int, int]:
        """Return the sum of the members' sizes and of their compressed sizes."""
        with self._lock:
            size, compressed = self._connection.execute(
                'SELECT coalesce(sum(size), 0), coalesce(sum(compressed), 0) FROM object'
            ).fetchone()
        return int(size), int(compressed)

    def close(self) -> None:
        """Close the database (its file goes with it)."""
        with self._lock:
            self._connection.close()
