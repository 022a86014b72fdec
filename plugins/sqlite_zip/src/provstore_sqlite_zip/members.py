"""The content of a zip member read as a stream that checks it: what the repository of an archive gives and what
``archive verify`` hashes.

A reader that stops at a member's declared size lets a deflate stream holding more than it declares (a
decompression bomb that lies about its size) go unnoticed. :class:`MemberStream` decompresses the
member's stored bytes itself, a bounded chunk at a time, and refuses it the moment it yields more than declared; at
its end it checks the size, the CRC and that the deflate stream ended. Every defect is an
:class:`~provstore.exceptions.ArchiveError` naming the file and the member.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from provstore.exceptions import ArchiveError
from provstore_sqlite_zip.zipped import Member, is_readable

__all__ = ['MemberStream']

_CHUNK = 1024 * 1024
_LOCAL_HEADER = struct.Struct('<4s22xHH')
"""A zip's local file header: its signature, then (after 22 bytes) the lengths of the name and of the extra field."""
_LOCAL_SIGNATURE = b'PK\x03\x04'
_DEFLATED = 8


class MemberStream(io.RawIOBase):
    """The content of one stored or deflated member, checked while it is read; never more than a chunk in memory."""

    def __init__(self, path: Path, info: Member, raw: BinaryIO | None = None, *, label: str | None = None) -> None:
        """:param raw: the archive already open (it is used from the member's offset on, and not closed); by default
            the stream opens the file itself.
        :param label: how messages name the member (default: its name quoted).

        :raises ArchiveError: if the member is encrypted, of another compression, or has no local header.
        """
        super().__init__()
        self._where = f'{path}: the member {info.name!r}' if label is None else f'{path}: the member {label}'
        if not is_readable(info):
            raise ArchiveError(f'{self._where} is encrypted or of a compression this code does not read')
        self._info = info
        self._own = raw is None
        self._raw: BinaryIO = open(path, 'rb') if raw is None else raw
        self._left = info.compressed
        self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS) if info.method == _DEFLATED else None
        self._pending = memoryview(b'')
        self._size = self._crc = 0
        self._ended = False
        try:
            self._raw.seek(info.offset)
            header = self._raw.read(_LOCAL_HEADER.size)
            if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
                raise ArchiveError(f'{self._where} has no local header where the central directory says')
            _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
            self._raw.seek(info.offset + _LOCAL_HEADER.size + name_length + extra_length)
        except BaseException:
            self.close()
            raise

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes of the content; 0 at its end, once it is checked whole.

        :raises ArchiveError: naming the defect (more bytes than declared, fewer, a bad CRC, a corrupt stream).
        """
        while not self._pending and not self._ended:
            self._pending = memoryview(self._produce())
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if not self.closed and self._own:
            self._raw.close()
        super().close()

    def _produce(self) -> bytes:
        """Return the next piece of content (possibly empty), or check the whole and mark the end."""
        data = self._stored() if self._decompressor is None else self._inflated(self._decompressor)
        if self._ended:
            self._check_end()
            return b''
        if self._size + len(data) > self._info.size:
            # NOTE: a corrupt stream also yields too much; only one whose declared bytes are sound is a bomb
            if zlib.crc32(data[: self._info.size - self._size], self._crc) != self._info.crc:
                raise ArchiveError(self._bad_crc())
            raise ArchiveError(
                f'{self._where} decompresses to more than the {self._info.size} bytes it declares (a '
                'decompression bomb)'
            )
        self._size += len(data)
        self._crc = zlib.crc32(data, self._crc)
        return data

    def _read(self) -> bytes:
        chunk = self._raw.read(min(_CHUNK, self._left))
        if not chunk:
            raise ArchiveError(f'{self._where} is cut short: the zip ends inside it')
        self._left -= len(chunk)
        return chunk

    def _stored(self) -> bytes:
        if not self._left:
            self._ended = True
            return b''
        return self._read()

    def _inflated(self, decompressor: Any) -> bytes:
        try:
            if decompressor.unconsumed_tail:
                return bytes(decompressor.decompress(decompressor.unconsumed_tail, _CHUNK))
            if decompressor.eof:
                self._ended = True
                return b''
            if self._left:
                return bytes(decompressor.decompress(self._read(), _CHUNK))
            data = bytes(decompressor.decompress(b'', _CHUNK))
        except zlib.error as exc:
            raise ArchiveError(f'{self._where} is corrupt: {exc}') from None
        if not data:
            raise ArchiveError(f'{self._where} is corrupt: its compressed data ends early')
        return data

    def _check_end(self) -> None:
        if self._size != self._info.size:
            raise ArchiveError(
                f'{self._where} is corrupt: it holds {self._size} bytes, not the {self._info.size} it declares'
            )
        if self._crc != self._info.crc:
            raise ArchiveError(self._bad_crc())

    def _bad_crc(self) -> str:
        return f'{self._where} is corrupt: Bad CRC-32 (its content does not match its CRC)'
