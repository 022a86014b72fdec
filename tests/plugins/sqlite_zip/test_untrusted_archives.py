"""Archives are untrusted input: each defect is refused with one line naming it, before anything is cached."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from fixture_archives import AIIDA_CORE_STATIC
from sqlite_zip_helpers import SIMPLE, altered_database, metadata

from provstore.exceptions import ArchiveError
from provstore.storage import EntityType
from provstore_sqlite_zip.format import SqliteZipFormat
from provstore_sqlite_zip.zipped import METADATA_MAX_BYTES

WriteZip = Callable[..., Path]


def _refused(path: Path, match: str, cache: Path | None = None) -> str:
    """Assert that opening ``path`` raises one ArchiveError line matching ``match``, naming the file; return it."""
    with pytest.raises(ArchiveError, match=match) as info:
        SqliteZipFormat.open(path)
    message = str(info.value)
    assert '\n' not in message
    assert str(path) in message
    if cache is not None:
        assert not cache.exists() or not any(cache.iterdir()), 'something was cached from a refused archive'
    return message


def _members(simple: dict[str, bytes], **replaced: bytes | None) -> Iterable[tuple[str, bytes]]:
    """The members of the simple archive, with some replaced (or removed, with ``None``)."""
    for name, content in simple.items():
        if name in replaced:
            if replaced[name] is not None:
                yield name, replaced[name]  # type: ignore[misc]
        else:
            yield name, content


@pytest.fixture
def cache(config_folder: Path) -> Path:
    """The cache folder the format uses in these tests (under ``$PROVSTORE_PATH``)."""
    return config_folder / 'cache' / 'sqlite_zip'


def test_a_file_that_is_not_a_zip(cache: Path) -> None:
    """aiida-core's ``export__migrate__empty.aiida`` is refused as not a zip file, by read_version too."""
    path = AIIDA_CORE_STATIC / 'export__migrate__empty.aiida'
    _refused(path, 'not a zip file', cache)
    with pytest.raises(ArchiveError, match='not a zip file'):
        SqliteZipFormat.read_version(path)


def test_a_missing_file(tmp_path: Path) -> None:
    """A path where there is no file is refused as such."""
    _refused(tmp_path / 'nowhere.aiida', 'no such archive file')


def test_a_truncated_zip(tmp_path: Path, cache: Path) -> None:
    """A zip cut short (its central directory lost) is refused as truncated or corrupt."""
    path = tmp_path / 'cut.aiida'
    path.write_bytes(SIMPLE.read_bytes()[:-200])
    _refused(path, 'truncated or corrupt zip', cache)


def test_a_database_member_with_a_bad_crc(
    tmp_path: Path, write_zip: WriteZip, simple_members: dict[str, bytes]
) -> None:
    """A database member whose bytes were altered inside the zip (its CRC no longer matches) is refused."""
    path = write_zip(_members(simple_members), 'flipped.aiida')
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as handle:
        info = handle.getinfo('db.sqlite3')
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    _refused(path, 'db.sqlite3 is corrupt')


def test_legacy_archive_is_refused_as_not_yet_supported(cache: Path) -> None:
    """A 0.x archive (aiida-core before 2.0) is refused as legacy, not as garbage."""
    path = AIIDA_CORE_STATIC / 'export__migrate__export_0.10_simple.aiida'
    _refused(path, r'a legacy archive \(export_version 0\.10.*not supported yet', cache)


@pytest.mark.parametrize(
    ('content', 'match'),
    [
        (b'{"export_version": "main_0001"', 'metadata.json is not valid JSON'),
        (b'[1, 2]', 'metadata.json is not a JSON object but list'),
        (metadata(export_version=None), 'metadata.json has no export_version'),
        (metadata(export_version='main_0002'), "export_version 'main_0002' is unknown or newer"),
        (metadata(export_version='banana'), "export_version 'banana' is unknown or newer"),
        (metadata(key_format='md5'), "key_format 'md5' is not supported"),
        (b'[' * 100_000, 'metadata.json is not (valid JSON|a JSON object)'),
    ],
    ids=['truncated-json', 'not-an-object', 'no-version', 'newer', 'unknown', 'key-format', 'deeply-nested'],
)
def test_bad_metadata(
    content: bytes, match: str, write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path
) -> None:
    """A malformed metadata.json, or one of a version or key format this code does not read, is refused."""
    path = write_zip(_members(simple_members, **{'metadata.json': content}))
    _refused(path, match, cache)
    with pytest.raises(ArchiveError, match=match):
        SqliteZipFormat.read_version(path)


def test_missing_metadata(write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path) -> None:
    """A zip without metadata.json is not an archive."""
    _refused(write_zip(_members(simple_members, **{'metadata.json': None})), 'no metadata.json in the zip', cache)


def test_oversize_metadata(write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path) -> None:
    """A metadata.json larger than the limit is refused without being parsed."""
    padded = metadata(padding=' ' * (METADATA_MAX_BYTES + 1))
    _refused(write_zip(_members(simple_members, **{'metadata.json': padded})), r'metadata.json is \d+ bytes', cache)


@pytest.mark.parametrize(
    'name',
    ['/etc/passwd', '../outside', 'repo/../../outside', 'repo\\evil', 'nul\x00name', 'C:/windows'],
    ids=['absolute', 'parent', 'nested-parent', 'backslash', 'nul', 'drive'],
)
def test_member_names_that_escape(
    name: str, write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path
) -> None:
    """A member whose name could escape a folder (absolute, ``..``, backslash, NUL, drive) is refused."""
    # NOTE: zipfile cuts a name at NUL when writing: write a stand-in of the same length, then patch its bytes.
    stand_in = name.replace('\x00', '#')
    path = write_zip([*_members(simple_members), (stand_in, b'x')])
    path.write_bytes(path.read_bytes().replace(stand_in.encode(), name.encode()))
    _refused(path, 'escapes the archive', cache)


def test_duplicate_members(write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path) -> None:
    """A member name that appears twice (which one is read would be up to the reader) is refused."""
    with pytest.warns(UserWarning, match='Duplicate name'):
        path = write_zip([*_members(simple_members), ('metadata.json', metadata())])
    _refused(path, "the member 'metadata.json' appears twice", cache)


def test_repository_member_not_named_by_a_sha256(
    write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path
) -> None:
    """A repository member whose name is not 64 lower-case hex digits is refused (the key format is sha256)."""
    _refused(write_zip([*_members(simple_members), ('repo/ABC', b'x')]), "'repo/ABC' is not named by a sha256", cache)


def test_missing_database(write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path) -> None:
    """An archive without db.sqlite3 is refused."""
    _refused(write_zip(_members(simple_members, **{'db.sqlite3': None})), 'no db.sqlite3 in the zip', cache)


def test_database_that_is_not_sqlite(write_zip: WriteZip, simple_members: dict[str, bytes], cache: Path) -> None:
    """A db.sqlite3 member that is not an SQLite file is refused, and nothing stays in the cache."""
    path = write_zip(_members(simple_members, **{'db.sqlite3': b'CREATE TABLE nothing;' * 10}))
    _refused(path, 'db.sqlite3 is not an SQLite database', cache)


@pytest.mark.parametrize(
    ('statements', 'match'),
    [
        (
            [
                'CREATE TRIGGER evil AFTER INSERT ON db_dbuser BEGIN DELETE FROM db_dbnode; END',
            ],
            "holds the trigger 'evil'",
        ),
        (['CREATE VIEW peek AS SELECT * FROM db_dbnode'], "holds the view 'peek'"),
        (['CREATE TABLE smuggled (x)'], "holds the table 'smuggled'"),
        (['DROP TABLE db_dblog'], 'has no table db_dblog'),
        (['ALTER TABLE db_dbnode DROP COLUMN extras'], 'db_dbnode of db.sqlite3 lacks the column.s. extras'),
    ],
    ids=['trigger', 'view', 'unknown-table', 'missing-table', 'missing-column'],
)
def test_database_with_unexpected_sql_objects(  # noqa: PLR0917 - pytest passes parameters and fixtures by name
    statements: list[str],
    match: str,
    write_zip: WriteZip,
    simple_members: dict[str, bytes],
    tmp_path: Path,
    cache: Path,
) -> None:
    """A database holding SQL objects an archive has not (triggers, views, other tables), or lacking a table or
    column, is refused, and nothing stays in the cache."""
    database = altered_database(simple_members['db.sqlite3'], tmp_path, *statements)
    _refused(write_zip(_members(simple_members, **{'db.sqlite3': database})), match, cache)


def test_macos_and_dot_entries_are_ignored(write_zip: WriteZip, simple_members: dict[str, bytes]) -> None:
    """``__MACOSX/`` and ``./`` entries, and directory entries, are ignored: the archive opens and reads."""
    extra = [('./', b''), ('__MACOSX/._db.sqlite3', b'\x00junk'), ('__MACOSX/../odd', b''), ('repo/', b'')]
    path = write_zip([*extra, *_members(simple_members)])
    storage = SqliteZipFormat.open(path)
    try:
        assert storage.count_rows(EntityType.NODE) == 10  # type: ignore[attr-defined]
    finally:
        storage.close()
    assert re.fullmatch(r'main_0001', SqliteZipFormat.read_version(path))
