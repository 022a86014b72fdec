"""A zip written as a stream, whose memory does not grow with its members.

Each member is a local header and its data, stored or deflated, its CRC computed by zlib as the bytes go by. A
member that fits in one chunk is written in one piece, its header complete; a longer one gets a header with a zip64
extra field whose sizes and CRC are filled in once its data is written. The central directory entries are kept as
bytes in an anonymous temporary file, copied to the end of the zip by :meth:`ZipStreamWriter.close` after the
entries of the members written ``leading`` (listed first wherever they lie in the file), followed by the zip64 end
records when the zip needs them (more than 65,535 members, or an offset or size past 4 GiB) and the end record.
While the zip is written a thread syncs it every :data:`SYNC_EVERY` bytes, so that the caller's final sync has
little left to wait for.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import stat
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from provstore_sqlite_zip.zipindex import (
    END64_RECORD,
    END64_SIGNATURE,
    END_RECORD,
    END_SIGNATURE,
    LOCATOR,
    LOCATOR_SIGNATURE,
    ZIP64_TAG,
)

__all__ = ['SYNC_EVERY', 'ZIP64_LIMIT', 'ZipStreamWriter']

ZIP64_LIMIT = 0xFFFF_FFFF
"""Sizes and offsets from this value on are written in zip64 extra fields (the 32-bit fields hold all ones)."""
SYNC_EVERY = 64 * 1024 * 1024
"""Bytes written between two background syncs."""

_CHUNK = 256 * 1024
_PIECE = 1024 * 1024
"""Bytes of a file deflated as one piece by :meth:`ZipStreamWriter.write_file`."""
_WINDOW = 32 * 1024
"""Deflate's window: the bytes before a piece that prime its deflater."""
_DEFLATERS = max(2, min(4, os.cpu_count() or 1))
"""Threads deflating pieces at once (zlib works without the GIL)."""
_BUFFER = 256 * 1024
_MAX_MEMBERS = 0xFFFF
_LOCAL = struct.Struct('<4s5H3L2H')
"""signature, version needed, flags, method, time, date, CRC, compressed size, size, name and extra lengths."""
_LOCAL_SIGNATURE = b'PK\x03\x04'
_CENTRAL = struct.Struct('<4s6H3L5H2L')
"""signature, versions (made by, needed), flags, method, time, date, CRC, compressed size, size, name, extra and
comment lengths, disk, internal attributes, external attributes, offset of the local header."""
_CENTRAL_SIGNATURE = b'PK\x01\x02'
_LOCAL_ZIP64 = struct.Struct('<HHQQ')
"""The zip64 extra field of a local header: tag, length, size, compressed size."""
_CRC_OFFSET = 14
"""Where a local header's CRC starts (then its two sizes)."""
_VERSION = 20
_VERSION_ZIP64 = 45
_MADE_BY = (3 << 8) | _VERSION_ZIP64
"""Unix, zip 4.5."""
_UTF8 = 0x800
_STORED = 0
_DEFLATED = 8
_MODE = (stat.S_IFREG | 0o644) << 16


class ZipStreamWriter:
    """Write members one after the other into a new zip file; :meth:`close` ends it (nothing is synced by it)."""

    def __init__(self, path: Path, *, level: int = 6, zip64_limit: int = ZIP64_LIMIT) -> None:
        """:param path: the file, created or truncated.
        :param level: the deflate level of members written deflated (0: every member stored).
        :param zip64_limit: sizes and offsets from this value on go into zip64 fields (lower it to test them).
        """
        self._level = level
        self._limit = zip64_limit
        self._file = open(path, 'wb', buffering=_BUFFER)
        self._descriptor = self._file.fileno()
        self._directory = tempfile.TemporaryFile(dir=path.parent)
        self._leading: list[bytes] = []
        self._offset = 0
        self._count = 0
        self._closed = False
        local = time.localtime()
        self._time = local.tm_hour << 11 | local.tm_min << 5 | local.tm_sec // 2
        self._date = max(local.tm_year - 1980, 0) << 9 | local.tm_mon << 5 | local.tm_mday
        self._syncer = _Syncer(self._descriptor)
        self._unsynced = 0

    @property
    def count(self) -> int:
        """How many members were written."""
        return self._count

    def write_stream(
        self,
        name: str,
        stream: BinaryIO,
        *,
        deflate: bool = True,
        worth: Callable[[bytes], bool] | None = None,
        leading: bool = False,
    ) -> int:
        """Copy ``stream`` to its end into the member ``name``; return its size.

        :param deflate: deflate it (at the writer's level, unless that is 0); otherwise it is stored.
        :param worth: given the first chunk (256 KiB, or the whole), whether deflating is worth it.
        :param leading: list it in the central directory before the members written without ``leading``.
        """
        first = stream.read(_CHUNK)
        following = stream.read(_CHUNK) if first else b''
        deflate = deflate and self._level > 0 and (worth is None or worth(first))
        method = _DEFLATED if deflate else _STORED
        if not following:
            return self._write_whole(name, first, method, leading)
        return self._write_streamed(name, method, first, following, stream, leading)

    def write_file(self, name: str, path: Path, *, leading: bool = False) -> int:
        """Copy the file at ``path`` into the member ``name``, deflated (unless the level is 0) in pieces by
        several threads; return its size (``leading`` as for :meth:`write_stream`).

        Each piece is deflated on its own, primed with the 32 KiB before it and ended on a byte boundary, so that
        the pieces joined are one deflate stream (as pigz makes them), hardly larger than one deflater's.
        """
        if not self._level:
            with open(path, 'rb') as stream:
                return self.write_stream(name, stream, deflate=False, leading=leading)
        encoded, flags = _encoded(name)
        offset = self._offset
        self._write(self._local_header(encoded, flags, _DEFLATED, 0, 0, 0, zip64=True))
        crc = size = written = 0
        with open(path, 'rb') as stream, ThreadPoolExecutor(_DEFLATERS, thread_name_prefix='zip-deflate') as pool:
            pending: collections.deque[Future[bytes]] = collections.deque()
            window = b''
            while True:
                piece = stream.read(_PIECE)
                last = len(piece) < _PIECE
                crc = zlib.crc32(piece, crc)
                size += len(piece)
                pending.append(pool.submit(_deflate_piece, piece, window, self._level, last))
                window = piece[-_WINDOW:]
                while pending and (len(pending) > 2 * _DEFLATERS or last):
                    data = pending.popleft().result()
                    self._write(data)
                    written += len(data)
                if last:
                    break
        self._patch_header(offset, encoded, crc, size, written)
        self._add_entry(encoded, flags, _DEFLATED, crc, written, size, offset, leading)
        return size

    def write_bytes(self, name: str, content: bytes, *, deflate: bool = True, leading: bool = False) -> int:
        """Write ``content`` as the member ``name``; return its size (``leading`` as for :meth:`write_stream`)."""
        return self._write_whole(name, content, _DEFLATED if deflate and self._level else _STORED, leading)

    def _write_whole(self, name: str, content: bytes, method: int, leading: bool) -> int:
        """Write a member whose content is all at hand: its header complete, then its data."""
        data = content
        if method == _DEFLATED:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, -zlib.MAX_WBITS)
            data = compressor.compress(content) + compressor.flush()
        crc = zlib.crc32(content)
        encoded, flags = _encoded(name)
        offset = self._offset
        zip64 = max(len(content), len(data)) >= self._limit
        self._write(self._local_header(encoded, flags, method, crc, len(data), len(content), zip64=zip64))
        self._write(data)
        self._add_entry(encoded, flags, method, crc, len(data), len(content), offset, leading)
        return len(content)

    def _local_header(  # noqa: PLR0917 - the fields of one header
        self, encoded: bytes, flags: int, method: int, crc: int, compressed: int, size: int, *, zip64: bool
    ) -> bytes:
        """Return a local header with the name; with ``zip64``, the sizes are in a zip64 extra field."""
        extra = _LOCAL_ZIP64.pack(ZIP64_TAG, 16, size, compressed) if zip64 else b''
        if zip64:
            compressed = size = 0xFFFF_FFFF
        version = _VERSION_ZIP64 if zip64 else _VERSION
        fields = (version, flags, method, self._time, self._date, crc, compressed, size, len(encoded), len(extra))
        return _LOCAL.pack(_LOCAL_SIGNATURE, *fields) + encoded + extra

    def _write_streamed(  # noqa: PLR0917 - the parts of one member
        self, name: str, method: int, first: bytes, following: bytes, stream: BinaryIO, leading: bool
    ) -> int:
        """Write a member of several chunks: a header with room for zip64 sizes, the data, then the header's CRC and
        sizes written in place."""
        encoded, flags = _encoded(name)
        offset = self._offset
        self._write(self._local_header(encoded, flags, method, 0, 0, 0, zip64=True))
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, -zlib.MAX_WBITS) if method == _DEFLATED else None
        crc = size = written = 0
        chunk = first
        while chunk:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            data = chunk if compressor is None else compressor.compress(chunk)
            self._write(data)
            written += len(data)
            chunk, following = following, (stream.read(_CHUNK) if following else b'')
        if compressor is not None:
            tail = compressor.flush()
            self._write(tail)
            written += len(tail)
        self._patch_header(offset, encoded, crc, size, written)
        self._add_entry(encoded, flags, method, crc, written, size, offset, leading)
        return size

    def _patch_header(self, offset: int, encoded: bytes, crc: int, size: int, written: int) -> None:
        """Fill in the CRC and the zip64 sizes of the local header written at ``offset``."""
        self._file.flush()
        os.pwrite(self._descriptor, struct.pack('<L', crc), offset + _CRC_OFFSET)
        where = offset + _LOCAL.size + len(encoded) + 4
        os.pwrite(self._descriptor, struct.pack('<QQ', size, written), where)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY:
            self._unsynced = 0
            self._file.flush()
            self._syncer.request()

    def _add_entry(  # noqa: PLR0917 - the fields of one entry
        self, encoded: bytes, flags: int, method: int, crc: int, compressed: int, size: int, offset: int, leading: bool
    ) -> None:
        """Append the member's central directory entry to the leading ones, or to the temporary file of entries."""
        large = [value for value in (size, compressed, offset) if value >= self._limit]
        extra = b''
        if large:
            extra = struct.pack(f'<HH{len(large)}Q', ZIP64_TAG, 8 * len(large), *large)
        limit = self._limit

        def field(value: int) -> int:
            return 0xFFFF_FFFF if value >= limit else value

        entry = (
            _CENTRAL.pack(
                _CENTRAL_SIGNATURE,
                _MADE_BY,
                _VERSION_ZIP64 if large else _VERSION,
                flags,
                method,
                self._time,
                self._date,
                crc,
                field(compressed),
                field(size),
                len(encoded),
                len(extra),
                0,
                0,
                0,
                _MODE,
                field(offset),
            )
            + encoded
            + extra
        )
        if leading:
            self._leading.append(entry)
        else:
            self._directory.write(entry)
        self._count += 1

    def close(self) -> None:
        """Write the central directory and the end records, and close the file (the caller syncs it)."""
        if self._closed:
            return
        try:
            start = self._offset
            for entry in self._leading:
                self._file.write(entry)
            self._directory.flush()
            size = self._directory.tell() + sum(map(len, self._leading))
            self._directory.seek(0)
            shutil.copyfileobj(self._directory, self._file, _CHUNK)
            self._offset += size
            self._write_end(start, size)
            self._file.flush()
        finally:
            self.abort()

    def _write_end(self, start: int, size: int) -> None:
        """Write the zip64 end record and locator when needed, then the end record."""
        count = self._count
        if count > _MAX_MEMBERS or start >= self._limit or size >= self._limit:
            record = self._offset
            self._file.write(
                END64_RECORD.pack(
                    END64_SIGNATURE, END64_RECORD.size - 12, _MADE_BY, _VERSION_ZIP64, 0, 0, count, count, size, start
                )
            )
            self._file.write(LOCATOR.pack(LOCATOR_SIGNATURE, 0, record, 1))
            self._offset += END64_RECORD.size + LOCATOR.size
            count = min(count, _MAX_MEMBERS)
            start = start if start < self._limit else 0xFFFF_FFFF
            size = size if size < self._limit else 0xFFFF_FFFF
        self._file.write(END_RECORD.pack(END_SIGNATURE, 0, 0, count, count, size, start, 0))
        self._offset += END_RECORD.size

    def abort(self) -> None:
        """Close every file without finishing the zip (the caller removes it)."""
        self._closed = True
        self._syncer.stop()
        for handle in (self._file, self._directory):
            with contextlib.suppress(Exception):
                handle.close()


class _Syncer:
    """A thread that syncs a file's data when asked, so that the writes before it reach the disk early."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Ask for a sync of what was written so far (at most one runs at a time; requests meanwhile merge)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='zip-sync', daemon=True)
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            with contextlib.suppress(OSError):
                os.fdatasync(self._descriptor)

    def stop(self) -> None:
        """Stop the thread, waiting for a sync under way (before the file is closed)."""
        if self._thread is not None:
            self._stopping = True
            self._wanted.set()
            self._thread.join()
            self._thread = None


def _deflate_piece(piece: bytes, window: bytes, level: int, last: bool) -> bytes:
    """Deflate one piece of a member, primed with the bytes before it; end the stream after the last piece, else on a
    byte boundary (a sync flush) so that the next piece's output may follow."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=window) if window else None
    compressor = compressor or zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(piece) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _encoded(name: str) -> tuple[bytes, int]:
    """Return the name as stored and the flags it needs (UTF-8 when it is not ASCII)."""
    if name.isascii():
        return name.encode('ascii'), 0
    return name.encode('utf-8'), _UTF8
