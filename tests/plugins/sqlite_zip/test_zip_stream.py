"""The zip reader and writer of sqlite_zip on real files: round trips with the standard library's zipfile, zip64,
many members, refusals, and memory that does not grow with the number of members."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from provstore.exceptions import ArchiveError
from provstore_sqlite_zip import zipwriter
from provstore_sqlite_zip.members import MemberStream
from provstore_sqlite_zip.zipindex import CorruptZipError, Member, read_directory
from provstore_sqlite_zip.zipped import Problems, forget_scans, scan_members
from provstore_sqlite_zip.zipwriter import ZipStreamWriter

BIG = os.urandom(3 * 1024 * 1024 + 17)
"""More than one chunk of incompressible bytes."""
TEXT = b'provenance ' * 300_000
"""More than one chunk of compressible bytes."""


def _members() -> list[tuple[str, bytes, bool]]:
    """``(name, content, deflate)``: empty, small, several chunks, stored and deflated, a name that is not ASCII."""
    return [
        ('metadata.json', b'{"export_version": "main_0001"}', True),
        ('empty', b'', True),
        ('stored-small', b'abc' * 100, False),
        ('big-random', BIG, True),
        ('big-text', TEXT, True),
        ('big-text-stored', TEXT, False),
        ('dossier/r\u00e9sum\u00e9.txt', 'caf\u00e9'.encode(), True),
    ]


def _write(path: Path, members: list[tuple[str, bytes, bool]], **options: int) -> None:
    writer = ZipStreamWriter(path, **options)
    for name, content, deflate in members:
        if len(content) < 1000:
            writer.write_bytes(name, content, deflate=deflate)
        else:
            writer.write_stream(name, io.BytesIO(content), deflate=deflate)
    writer.close()


def _entries(path: Path) -> list[tuple[str, int, int, int, int, int]]:
    with open(path, 'rb') as raw:
        _, _, entries = read_directory(raw, path.stat().st_size)
        return [(e.name, e.offset, e.compressed, e.size, e.method, e.crc) for e in entries]


def _zipfile_entries(path: Path) -> list[tuple[str, int, int, int, int, int]]:
    with zipfile.ZipFile(path) as handle:
        return [
            (i.filename, i.header_offset, i.compress_size, i.file_size, i.compress_type, i.CRC)
            for i in handle.infolist()
        ]


@pytest.mark.parametrize('limit', [zipwriter.ZIP64_LIMIT, 1000], ids=['plain', 'zip64'])
def test_zipfile_reads_what_is_written(tmp_path: Path, limit: int) -> None:
    """Every member reads back through zipfile with its CRC checked; both readers see the same directory; with a
    low zip64 threshold the sizes and offsets past it are in zip64 fields and the end records are zip64 ones."""
    path = tmp_path / 'written.zip'
    _write(path, _members(), zip64_limit=limit)
    with zipfile.ZipFile(path) as handle:
        assert handle.testzip() is None
        for name, content, deflate in _members():
            assert handle.read(name) == content
            expected = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            assert handle.getinfo(name).compress_type == expected
    assert _entries(path) == _zipfile_entries(path)
    assert (b'PK\x06\x06' in path.read_bytes()) == (limit != zipwriter.ZIP64_LIMIT)


def test_level_zero_stores_everything(tmp_path: Path) -> None:
    path = tmp_path / 'stored.zip'
    _write(path, _members(), level=0)
    with zipfile.ZipFile(path) as handle:
        assert {info.compress_type for info in handle.infolist()} == {zipfile.ZIP_STORED}
        assert handle.read('big-text') == TEXT


def test_member_stream_reads_what_zipfile_wrote(tmp_path: Path) -> None:
    """The index's entries of a zip that zipfile wrote (zip64 extra fields forced) read back through MemberStream."""
    path = tmp_path / 'stdlib.zip'
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as handle:
        for name, content, deflate in _members():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            with handle.open(info, 'w', force_zip64=True) as stream:
                stream.write(content)
    assert _entries(path) == _zipfile_entries(path)
    contents = {name: content for name, content, _ in _members()}
    with open(path, 'rb') as raw:
        _, _, entries = read_directory(raw, path.stat().st_size)
        for entry in list(entries):
            fields = (entry.offset, entry.compressed, entry.size, entry.method, entry.crc, entry.flags)
            member = Member(entry.name, *fields)
            with MemberStream(path, member) as stream:
                assert stream.read() == contents[entry.name]


def test_more_than_65535_members(tmp_path: Path) -> None:
    """70,000 members: zip64 end records; zipfile and the scan both find every one."""
    path = tmp_path / 'many.zip'
    writer = ZipStreamWriter(path)
    keys = [hashlib.sha256(b'%d' % number).hexdigest() for number in range(70_000)]
    for number, key in enumerate(keys):
        writer.write_bytes(f'repo/{key}', b'%d' % number)
    writer.close()
    with zipfile.ZipFile(path) as handle:
        assert len(handle.infolist()) == 70_000
        assert handle.read(f'repo/{keys[-1]}') == b'69999'
    forget_scans()
    problems = Problems(path)
    scan = scan_members(path, problems)
    assert not problems
    assert len(scan.objects) == 70_000
    assert keys[12345] in scan.objects
    assert 'f' * 64 not in scan.objects
    assert sorted(scan.objects) == sorted(keys)
    assert [key for key, _ in scan.objects.in_file_order()] == keys
    with MemberStream(path, scan.objects[keys[500]]) as stream:
        assert stream.read() == b'500'


def test_background_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a sync asked for every 256 KiB the zip written is whole."""
    monkeypatch.setattr(zipwriter, 'SYNC_EVERY', 256 * 1024)
    path = tmp_path / 'synced.zip'
    _write(path, _members())
    with zipfile.ZipFile(path) as handle:
        assert handle.testzip() is None


def test_abort_leaves_an_unfinished_file(tmp_path: Path) -> None:
    """After abort the file is no zip (the caller removes it); nothing else is left in the folder."""
    path = tmp_path / 'aborted.zip'
    writer = ZipStreamWriter(path)
    writer.write_stream('big', io.BytesIO(BIG))
    writer.abort()
    assert not zipfile.is_zipfile(path)
    assert [entry.name for entry in tmp_path.iterdir()] == ['aborted.zip']


def test_scan_memory_does_not_grow_with_members(tmp_path: Path) -> None:
    """The Python heap held after scanning 100,000 members is small, and its peak far below a ZipInfo per member
    (several hundred bytes each: tens of megabytes)."""
    path = tmp_path / 'hundred-thousand.zip'
    writer = ZipStreamWriter(path, level=0)
    for number in range(100_000):
        writer.write_bytes(f'repo/{hashlib.sha256(b"%d" % number).hexdigest()}', b'')
    writer.close()
    forget_scans()
    problems = Problems(path)
    tracemalloc.start()
    try:
        scan = scan_members(path, problems)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not problems
    assert len(scan.objects) == 100_000
    assert held < 1024 * 1024  # NOTE: CPython's free lists of tuples (2000 per size) included
    assert peak < 16 * 1024 * 1024  # NOTE: a megabyte of the directory read at a time, and a batch of rows


def test_zip64_extra_field_missing_is_corrupt(tmp_path: Path) -> None:
    """An entry whose offset says "in the zip64 field" without one cannot be read."""
    path = tmp_path / 'written.zip'
    _write(path, _members()[:3])
    raw = bytearray(path.read_bytes())
    first = raw.index(b'PK\x01\x02')
    struct.pack_into('<L', raw, first + 42, 0xFFFF_FFFF)
    path.write_bytes(bytes(raw))
    with open(path, 'rb') as handle, pytest.raises(CorruptZipError, match='no zip64 extra field'):
        list(read_directory(handle, path.stat().st_size)[2])
    with pytest.raises(ArchiveError, match='truncated or corrupt zip file'):
        scan_members(path, Problems(path))


def test_directory_not_where_the_end_record_says(tmp_path: Path) -> None:
    path = tmp_path / 'written.zip'
    _write(path, _members()[:3])
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b'PK\x05\x06')
    struct.pack_into('<L', raw, end + 16, struct.unpack_from('<L', raw, end + 16)[0] + 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r'truncated or corrupt zip file \(.*not where the end record says'):
        scan_members(path, Problems(path))


def test_name_not_utf8_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / 'written.zip'
    _write(path, [('dossier/r\u00e9sum\u00e9.txt', b'x', True)])
    path.write_bytes(path.read_bytes().replace('\u00e9'.encode(), b'\xff\xfe'))
    with pytest.raises(ArchiveError, match='is not UTF-8'):
        scan_members(path, Problems(path))


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match='is a folder'):
        scan_members(tmp_path, Problems(tmp_path))


def test_a_scan_is_reused_only_for_the_same_central_directory(tmp_path: Path) -> None:
    """A file changed in place (same size, within the same clock tick) is scanned again: its defect is found."""
    path = tmp_path / 'written.zip'
    _write(path, [('repo/' + 'a' * 64, b'x' * 100, True)])
    first = scan_members(path, Problems(path))
    assert scan_members(path, Problems(path)) is first
    raw = bytearray(path.read_bytes())
    struct.pack_into('<H', raw, raw.index(b'PK\x01\x02') + 10, 99)
    path.write_bytes(bytes(raw))
    problems = Problems(path)
    scan_members(path, problems)
    assert 'uses the compression method 99' in problems.lines()[0]


@pytest.mark.parametrize('level', [0, 1, 6, 9])
@pytest.mark.parametrize('size', [0, 1000, zipwriter._PIECE, 3 * zipwriter._PIECE + 4321])
def test_write_file_deflates_in_pieces(tmp_path: Path, level: int, size: int) -> None:
    """A file deflated in pieces by several threads is one deflate stream that zipfile inflates to the same bytes
    (CRC checked), no larger than a single deflater makes it but for some bytes per piece."""
    source = tmp_path / 'database'
    content = (TEXT + BIG + TEXT)[:size]
    source.write_bytes(content)
    path = tmp_path / 'file.zip'
    writer = ZipStreamWriter(path, level=level)
    assert writer.write_file('db.sqlite3', source) == size
    writer.close()
    with zipfile.ZipFile(path) as handle:
        assert handle.testzip() is None
        assert handle.read('db.sqlite3') == content
        info = handle.getinfo('db.sqlite3')
    if level:
        single = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        alone = len(single.compress(content) + single.flush())
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.compress_size <= alone + 64 * (size // zipwriter._PIECE + 1)
    else:
        assert info.compress_type == zipfile.ZIP_STORED
    assert _entries(path) == _zipfile_entries(path)


def test_write_file_zip64(tmp_path: Path) -> None:
    """Sizes past the zip64 threshold go into zip64 fields for a file written in pieces too."""
    source = tmp_path / 'database'
    source.write_bytes(TEXT)
    path = tmp_path / 'file.zip'
    writer = ZipStreamWriter(path, zip64_limit=1000)
    writer.write_bytes('first', b'x' * 2000)
    writer.write_file('db.sqlite3', source)
    writer.close()
    with zipfile.ZipFile(path) as handle:
        assert handle.read('db.sqlite3') == TEXT
    assert _entries(path) == _zipfile_entries(path)


def test_leading_members_are_listed_first(tmp_path: Path) -> None:
    """Members written ``leading`` come first in the central directory, in the order written, wherever their data
    lies; both readers agree and every member reads back."""
    path = tmp_path / 'leading.zip'
    source = tmp_path / 'database'
    source.write_bytes(TEXT)
    writer = ZipStreamWriter(path)
    writer.write_bytes('repo/a', b'a' * 10)
    writer.write_stream('repo/b', io.BytesIO(BIG))
    writer.write_bytes('metadata.json', b'{}', leading=True)
    writer.write_file('db.sqlite3', source, leading=True)
    writer.write_bytes('repo/c', b'c')
    writer.close()
    with zipfile.ZipFile(path) as handle:
        assert handle.namelist() == ['metadata.json', 'db.sqlite3', 'repo/a', 'repo/b', 'repo/c']
        assert handle.testzip() is None
        assert handle.read('repo/b') == BIG
        assert handle.getinfo('metadata.json').header_offset > handle.getinfo('repo/b').header_offset
    assert _entries(path) == _zipfile_entries(path)
