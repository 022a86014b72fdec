"""A corpus of hostile and of odd-but-legal ``.aiida`` files, built from a sound archive that provstore wrote.

:func:`write_sound_archive` stores a small graph (data, calculations, a workflow, every link type, files with
unicode names, groups, comments, logs, a computer) in a ``sqlite_dos`` profile and writes its archive with
``create_archive``. :func:`build_corpus` then makes each case of :data:`HOSTILE` (one defect each, with the fragment
``archive verify`` must report) and of :data:`ODD` (legal oddities that must be accepted) from it, byte by byte,
member by member or statement by statement.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_zip_helpers import AIIDA_CORE_STATIC, altered_database, metadata

from provstore.archive.create import create_archive
from provstore.orm import CalcFunctionNode, Int, LinkType, store_nodes
from provstore.registry import get_archive_format, get_storage_backend
from provstore.storage import EntityStorage
from provstore.testing import new_profile, opened_storage
from provstore.testing.archive_graph import store_graph

SQL_LABEL = "x'); DROP TABLE db_dbnode; -- \" OR 1=1 /* ; DELETE FROM db_dblink WHERE '1'='1"
"""A label full of SQL, stored verbatim by the sound archive's odd twin."""

MANY_FILES = 100_000
"""The number of files of the one node of the ``hundred-thousand-files`` archive."""

Statement = str | tuple[str, Sequence[Any]]


@dataclass
class Sound:
    """A sound archive and its parts, to make altered copies of."""

    path: Path
    scratch: Path
    members: list[tuple[str, bytes]] = field(default_factory=list)
    """Its members in order, as ``(name, content)``."""

    def __post_init__(self) -> None:
        with zipfile.ZipFile(self.path) as handle:
            self.members = [(info.filename, handle.read(info)) for info in handle.infolist()]

    @property
    def database(self) -> bytes:
        """The bytes of ``db.sqlite3``."""
        return dict(self.members)['db.sqlite3']

    @property
    def keys(self) -> list[str]:
        """The keys of the repository's objects."""
        return [name[len('repo/') :] for name, _ in self.members if name.startswith('repo/')]

    def replaced(self, name: str, content: bytes | None) -> list[tuple[str, bytes]]:
        """Return the members with the member ``name`` replaced by ``content`` (left out, with ``None``)."""
        return [
            (member, content if member == name else original)
            for member, original in self.members
            if member != name or content is not None
        ]

    def altered(self, *statements: Statement) -> list[tuple[str, bytes]]:
        """Return the members with the database after ``statements`` (SQL, or ``(SQL, parameters)``)."""
        return self.replaced('db.sqlite3', altered_database(self.database, self.scratch, *statements))


def loosened(table: str) -> list[str]:
    """Statements that rebuild ``table`` without its constraints, so that rows may break them."""
    return [
        f'CREATE TABLE loose AS SELECT * FROM {table}',
        f'DROP TABLE {table}',
        f'ALTER TABLE loose RENAME TO {table}',
    ]


def write_zip(
    target: Path,
    members: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    comment: bytes = b'',
    force_zip64: bool = False,
) -> None:
    """Write a zip of ``members`` in order (duplicates allowed) at ``target``."""
    with (
        warnings.catch_warnings(),
        zipfile.ZipFile(target, 'w', compression=compression, allowZip64=True) as handle,
    ):
        warnings.filterwarnings('ignore', 'Duplicate name', UserWarning)
        handle.comment = comment
        for member, content in members:
            info = member if isinstance(member, zipfile.ZipInfo) else zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0))
            if not isinstance(member, zipfile.ZipInfo):
                info.compress_type = compression
            with handle.open(info, 'w', force_zip64=force_zip64) as stream:
                stream.write(content)


_CENTRAL = struct.Struct('<4s4B4HL2L5H2L')
_LOCAL = struct.Struct('<4s2B4HL2L2H')
_END = struct.Struct('<4s4H2LH')
_CENTRAL_FIELDS = {
    'create_system': 2,
    'flag_bits': 5,
    'compress_type': 6,
    'crc': 9,
    'file_size': 11,
    'external_attr': 17,
    'header_offset': 18,
}
_LOCAL_FIELDS = {'flag_bits': 3, 'compress_type': 4, 'crc': 7, 'file_size': 9}


def patch_member(path: Path, name: str, **fields: int) -> None:
    """Change fields of the member ``name`` in the central directory and its local header (no zip64 sizes)."""
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b'PK\x05\x06')
    offset = _END.unpack_from(raw, end)[6]
    while raw[offset : offset + 4] == b'PK\x01\x02':
        central = list(_CENTRAL.unpack_from(raw, offset))
        length = _CENTRAL.size + central[12] + central[13] + central[14]
        if raw[offset + _CENTRAL.size : offset + _CENTRAL.size + central[12]].decode('utf-8') == name:
            local_offset = central[18]
            local = list(_LOCAL.unpack_from(raw, local_offset))
            for key, value in fields.items():
                central[_CENTRAL_FIELDS[key]] = value
                if key in _LOCAL_FIELDS:
                    local[_LOCAL_FIELDS[key]] = value
            _CENTRAL.pack_into(raw, offset, *central)
            if 'header_offset' not in fields:
                _LOCAL.pack_into(raw, local_offset, *local)
        offset += length
    path.write_bytes(bytes(raw))


def flip_byte(path: Path, name: str) -> None:
    """Flip a byte in the middle of the stored data of the member ``name``."""
    with zipfile.ZipFile(path) as handle:
        info = handle.getinfo(name)
    raw = bytearray(path.read_bytes())
    local = _LOCAL.unpack_from(raw, info.header_offset)
    start = info.header_offset + _LOCAL.size + local[10] + local[11]
    raw[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def nested_tree(depth: int, key: str) -> str:
    """Return a ``repository_metadata`` with one file ``depth`` folders deep."""
    return '{"o": {"d": ' * depth + json.dumps({'o': {'f': {'k': key}}}) + '}}' * depth


# -- the sound archive --------------------------------------------------------------------------------------------


def write_sound_archive(folder: Path) -> Path:
    """Store a small graph with every kind of entity in a new ``sqlite_dos`` profile and write its archive: the graph
    of the archive contract, a file with a unicode name, and a calculation function."""
    backend = get_storage_backend('sqlite_dos')
    profile = new_profile(backend, folder / 'profile', name='corpus', default_user_email='corpus@example.org')
    target = folder / 'sound.aiida'
    with opened_storage(backend, profile, initialise=True) as storage:
        assert isinstance(storage, EntityStorage)
        graph = store_graph(storage)
        named = Int(7, storage=storage)
        named.base.repository.put_object_from_bytes('données'.encode(), 'données/файл.txt')
        function = CalcFunctionNode(storage=storage)
        function.base.links.add_incoming(graph.result, LinkType.INPUT_CALC, 'y')
        doubled = Int(6, storage=storage)
        doubled.base.links.add_incoming(function, LinkType.CREATE, 'result')
        store_nodes([named, function, doubled], storage)
        function.seal()
        create_archive(storage, target, get_archive_format('sqlite_zip'))
    return target


SOUND_NODES = 8
"""The nodes of the sound archive."""


# -- the cases ----------------------------------------------------------------------------------------------------

Build = Callable[[Sound, Path], None]


def _node(kind: str) -> str:
    """SQL selecting the smallest id of a node whose node_type starts with ``kind``."""
    return f"(SELECT min(id) FROM db_dbnode WHERE substr(node_type, 1, {len(kind)}) = '{kind}')"


_DATA, _CALC, _WORK = _node('data.'), _node('process.calculation.'), _node('process.workflow.')
_INSERT_LINK = 'INSERT INTO db_dblink (input_id, output_id, label, type) VALUES ({}, {}, {!r}, {!r})'
_NEW_UUID = "'0f0e0d0c-0b0a-4908-8706-050403020100'"


@dataclass(frozen=True)
class Hostile:
    """An archive with a defect, and the fragment of the line ``archive verify`` must report for it."""

    id: str
    expected: str
    build: Build
    open_refuses: bool = False
    """Whether opening the archive (``SqliteZipFormat.open``) refuses it too (its defect is in the zip, metadata or
    structure of the database; rows and contents are only read by ``verify`` and imports)."""
    needs_hashes: bool = False
    """Whether only the check of contents (``check_hashes``) finds it."""
    import_expected: str = ''
    """The fragment of the message of an import's refusal, when it is not :attr:`expected` (an import hashes the
    objects itself, with its own words)."""


@dataclass(frozen=True)
class Odd:
    """An odd but legal archive, and the nodes it holds."""

    id: str
    build: Build
    nodes: int = SOUND_NODES


def _zip(members: Callable[[Sound], Iterable[tuple[str | zipfile.ZipInfo, bytes]]], **options: Any) -> Build:
    def build(sound: Sound, target: Path) -> None:
        write_zip(target, members(sound), **options)

    return build


def _rows(*statements: Statement | Callable[[Sound], Statement]) -> Build:
    def build(sound: Sound, target: Path) -> None:
        write_zip(target, sound.altered(*(s(sound) if callable(s) else s for s in statements)))

    return build


def _bytes(content: Callable[[Sound], bytes]) -> Build:
    def build(sound: Sound, target: Path) -> None:
        target.write_bytes(content(sound))

    return build


def _patched(name: Callable[[Sound], str], **fields: int) -> Build:
    def build(sound: Sound, target: Path) -> None:
        write_zip(target, sound.members)
        patch_member(target, name(sound), **fields)

    return build


def _flipped(name: Callable[[Sound], str]) -> Build:
    def build(sound: Sound, target: Path) -> None:
        write_zip(target, sound.members)
        flip_byte(target, name(sound))

    return build


def _escaping(name: str) -> Build:
    # NOTE: zipfile cuts a name at NUL when writing: write a stand-in of the same length, then patch its bytes.
    def build(sound: Sound, target: Path) -> None:
        stand_in = name.replace('\x00', '#')
        write_zip(target, [*sound.members, (stand_in, b'x')])
        target.write_bytes(target.read_bytes().replace(stand_in.encode(), name.encode()))

    return build


def _largest_object(sound: Sound) -> str:
    return 'repo/' + max(sound.keys, key=lambda key: len(dict(sound.members)[f'repo/{key}']))


def _symlink(sound: Sound) -> Iterable[tuple[str | zipfile.ZipInfo, bytes]]:
    link = zipfile.ZipInfo('repo/' + hashlib.sha256(b'/etc/passwd').hexdigest())
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    return [*sound.members, (link, b'/etc/passwd')]


def _overlapping(sound: Sound, target: Path) -> None:
    """Two directory entries pointing at the same data: the trick of non-recursive zip bombs."""
    write_zip(target, [*sound.members, ('repo/' + 'e' * 64, b'second')])
    with zipfile.ZipFile(target) as handle:
        first = handle.getinfo(_largest_object(sound)).header_offset
    patch_member(target, 'repo/' + 'e' * 64, header_offset=first)


def _bomb(sound: Sound, target: Path) -> None:
    """A file of a node whose deflate stream holds far more than it declares: its declared size, CRC and name are
    those of its first 100 bytes, which is all that zipfile would read."""
    content = bytes(2_000_000)
    key = hashlib.sha256(content[:100]).hexdigest()
    tree = json.dumps({'o': {'bomb.bin': {'k': key}}})
    members = sound.altered((f'UPDATE db_dbnode SET repository_metadata = ? WHERE id = {_CALC}', (tree,)))
    write_zip(target, [*members, (f'repo/{key}', content)])
    patch_member(target, f'repo/{key}', file_size=100, crc=zlib.crc32(content[:100]))


def _impossible_size(sound: Sound, target: Path) -> None:
    write_zip(target, sound.members)
    patch_member(target, _largest_object(sound), file_size=0xFFFF_FFFE)


def _garbled_rows(sound: Sound) -> bytes:
    """Return the database with the root page of ``db_dbnode`` overwritten: the schema reads, the rows do not."""
    path = sound.scratch / 'pages.sqlite3'
    path.write_bytes(sound.database)
    connection = sqlite3.connect(path)
    try:
        (page,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'db_dbnode'").fetchone()
        (size,) = connection.execute('PRAGMA page_size').fetchone()
    finally:
        connection.close()
    path.unlink()
    start = (page - 1) * size
    return sound.database[:start] + bytes(range(256)) * (size // 256) + sound.database[start + size :]


def _stored_size_lie(sound: Sound, target: Path) -> None:
    write_zip(target, sound.members, compression=zipfile.ZIP_STORED)
    patch_member(target, _largest_object(sound), file_size=5)


def _copy(fixture: str) -> Build:
    def build(sound: Sound, target: Path) -> None:
        shutil.copyfile(AIIDA_CORE_STATIC / fixture, target)

    return build


def _wrong_content(sound: Sound) -> Iterable[tuple[str, bytes]]:
    key = sound.keys[0]
    return [(name, b'not what the name says' if name == f'repo/{key}' else content) for name, content in sound.members]


def _hundred_thousand_files(sound: Sound, target: Path) -> None:
    """One node with MANY_FILES small files in a hundred folders, each file its own object."""
    contents = [b'%d' % number for number in range(MANY_FILES)]
    keys = [hashlib.sha256(content).hexdigest() for content in contents]
    tree: dict[str, Any] = {'o': {}}
    for number, key in enumerate(keys):
        folder = tree['o'].setdefault(f'folder{number % 100}', {'o': {}})
        folder['o'][f'file{number}.txt'] = {'k': key}
    database = altered_database(
        sound.database,
        sound.scratch,
        (f'UPDATE db_dbnode SET repository_metadata = ? WHERE id = {_DATA}', (json.dumps(tree),)),
    )
    members = [
        *sound.replaced('db.sqlite3', database),
        *((f'repo/{key}', content) for key, content in zip(keys, contents, strict=True)),
    ]
    write_zip(target, members, compression=zipfile.ZIP_STORED)


def _data_descriptors(sound: Sound, target: Path) -> None:
    """Members streamed to a pipe-like file: sizes and CRC after the data (flag bit 3), as streaming zippers write."""

    class Unseekable(io.RawIOBase):
        def __init__(self, handle: io.BufferedWriter) -> None:
            self._handle = handle

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return self._handle.write(data)

    with open(target, 'wb') as raw, zipfile.ZipFile(Unseekable(raw), 'w', compression=zipfile.ZIP_DEFLATED) as handle:
        for name, content in sound.members:
            handle.writestr(name, content)


def _without_nodes(sound: Sound, target: Path) -> None:
    tables = ('db_dblink', 'db_dbgroup_dbnodes', 'db_dbcomment', 'db_dblog', 'db_dbnode', 'db_dbgroup')
    database = altered_database(sound.database, sound.scratch, *(f'DELETE FROM {table}' for table in tables))
    write_zip(
        target,
        [
            (name, database if name == 'db.sqlite3' else content)
            for name, content in sound.members
            if not name.startswith('repo/')
        ],
    )


HOSTILE: list[Hostile] = [
    # the zip
    Hostile('not-a-zip', 'not a zip file', _bytes(lambda sound: b'#!/bin/sh\nrm -rf ~\n' * 50), open_refuses=True),
    Hostile('empty-file', 'not a zip file', _bytes(lambda sound: b''), open_refuses=True),
    Hostile(
        'truncated-end',
        'truncated or corrupt zip',
        _bytes(lambda sound: sound.path.read_bytes()[:-300]),
        open_refuses=True,
    ),
    Hostile(
        'truncated-half',
        'truncated or corrupt zip',
        _bytes(lambda sound: sound.path.read_bytes()[: sound.path.stat().st_size // 2]),
        open_refuses=True,
    ),
    Hostile(
        'central-directory-garbled',
        'truncated or corrupt zip',
        _bytes(lambda sound: sound.path.read_bytes().replace(b'PK\x01\x02', b'PK\x01\x09', 1)),
        open_refuses=True,
    ),
    Hostile(
        'crc-database',
        'the member db.sqlite3 is corrupt',  # NOTE: a flipped bit breaks the CRC, or ends the deflate stream early
        _flipped(lambda sound: 'db.sqlite3'),
        open_refuses=True,
    ),
    Hostile('crc-object', 'is corrupt', _flipped(_largest_object), needs_hashes=True),
    Hostile(
        'decompression-bomb-hidden', 'decompresses to more than the 100 bytes it declares', _bomb, needs_hashes=True
    ),
    Hostile('decompression-bomb-declared', 'more than deflate can produce', _impossible_size, open_refuses=True),
    Hostile('stored-size-lie', 'stored uncompressed as', _stored_size_lie, open_refuses=True),
    Hostile('encrypted-member', 'is encrypted', _patched(_largest_object, flag_bits=0x1), open_refuses=True),
    Hostile(
        'compression-bzip2',
        'uses the compression method 12',
        _zip(lambda sound: sound.members, compression=zipfile.ZIP_BZIP2),
        open_refuses=True,
    ),
    Hostile(
        'compression-unknown',
        'uses the compression method 99',
        _patched(_largest_object, compress_type=99),
        open_refuses=True,
    ),
    Hostile('symlink-member', 'is a symbolic link', _zip(_symlink), open_refuses=True),
    Hostile('overlapping-members', 'overlap in the zip', _overlapping, open_refuses=True),
    Hostile('name-absolute', 'escapes the archive', _escaping('/etc/passwd'), open_refuses=True),
    Hostile('name-parent', 'escapes the archive', _escaping('../outside'), open_refuses=True),
    Hostile('name-nested-parent', 'escapes the archive', _escaping('repo/../../outside'), open_refuses=True),
    Hostile('name-backslash', 'escapes the archive', _escaping('repo\\..\\evil'), open_refuses=True),
    Hostile('name-nul', 'escapes the archive', _escaping('repo/nul\x00.txt'), open_refuses=True),
    Hostile(
        'duplicate-member',
        "the member 'db.sqlite3' appears twice",
        _zip(lambda sound: [*sound.members, ('db.sqlite3', b'x')]),
        open_refuses=True,
    ),
    Hostile(
        'object-name-not-hex',
        "'repo/ABC' is not named by a sha256",
        _zip(lambda sound: [*sound.members, ('repo/ABC', b'x')]),
        open_refuses=True,
    ),
    Hostile(
        'object-name-upper-case',
        'is not named by a sha256',
        _zip(
            lambda sound: [
                ('repo/' + name[5:].upper() if name.startswith('repo/') else name, content)
                for name, content in sound.members
            ]
        ),
        open_refuses=True,
    ),
    # metadata.json
    Hostile(
        'metadata-missing',
        'no metadata.json in the zip',
        _zip(lambda sound: sound.replaced('metadata.json', None)),
        open_refuses=True,
    ),
    Hostile(
        'metadata-not-json',
        'metadata.json is not valid JSON',
        _zip(lambda sound: sound.replaced('metadata.json', b'{"export_version": ')),
        open_refuses=True,
    ),
    Hostile(
        'metadata-not-object',
        'metadata.json is not a JSON object but list',
        _zip(lambda sound: sound.replaced('metadata.json', b'["main_0001"]')),
        open_refuses=True,
    ),
    Hostile(
        'metadata-oversize',
        'bytes, more than the',
        _zip(lambda sound: sound.replaced('metadata.json', metadata(padding=' ' * (8 * 1024 * 1024)))),
        open_refuses=True,
    ),
    Hostile(
        'metadata-no-version',
        'metadata.json has no export_version',
        _zip(lambda sound: sound.replaced('metadata.json', metadata(export_version=None))),
        open_refuses=True,
    ),
    Hostile(
        'metadata-newer-version',
        "export_version 'main_0002' is unknown or newer",
        _zip(lambda sound: sound.replaced('metadata.json', metadata(export_version='main_0002'))),
        open_refuses=True,
    ),
    Hostile(
        'metadata-legacy-version',
        'a legacy archive (export_version 0.9',
        _zip(lambda sound: sound.replaced('metadata.json', metadata(export_version='0.9'))),
        open_refuses=True,
    ),
    Hostile(
        'metadata-key-format',
        "key_format 'sha1' is not supported",
        _zip(lambda sound: sound.replaced('metadata.json', metadata(key_format='sha1'))),
        open_refuses=True,
    ),
    # the database's structure
    Hostile(
        'database-missing',
        'no db.sqlite3 in the zip',
        _zip(lambda sound: sound.replaced('db.sqlite3', None)),
        open_refuses=True,
    ),
    Hostile(
        'database-not-sqlite',
        'db.sqlite3 is not an SQLite database',
        _zip(lambda sound: sound.replaced('db.sqlite3', b'CREATE TABLE x;' * 100)),
        open_refuses=True,
    ),
    Hostile(
        'database-garbled-schema',
        'db.sqlite3 is not a readable SQLite database',
        _zip(lambda sound: sound.replaced('db.sqlite3', sound.database[:100] + b'\xff' * (len(sound.database) - 100))),
        open_refuses=True,
    ),
    Hostile(
        'database-corrupt-data-pages',
        'db.sqlite3 is a corrupt SQLite database',
        _zip(lambda sound: sound.replaced('db.sqlite3', _garbled_rows(sound))),
    ),
    Hostile('database-missing-table', 'has no table db_dblog', _rows('DROP TABLE db_dblog'), open_refuses=True),
    Hostile(
        'database-missing-column',
        'db_dbnode of db.sqlite3 lacks the column(s) extras',
        _rows('ALTER TABLE db_dbnode DROP COLUMN extras'),
        open_refuses=True,
    ),
    Hostile(
        'database-trigger',
        "holds the trigger 'evil'",
        _rows('CREATE TRIGGER evil AFTER INSERT ON db_dbnode BEGIN DELETE FROM db_dbuser; END'),
        open_refuses=True,
    ),
    Hostile(
        'database-virtual-table',
        'db_dblog of db.sqlite3 is a virtual table',
        _rows(
            'DROP TABLE db_dblog',
            'CREATE VIRTUAL TABLE db_dblog USING '
            'fts5(id, uuid, time, loggername, levelname, dbnode_id, message, metadata)',
        ),
        open_refuses=True,
    ),
    Hostile(
        'database-view',
        "holds the view 'peek'",
        _rows('CREATE VIEW peek AS SELECT * FROM db_dbuser'),
        open_refuses=True,
    ),
    Hostile(
        'database-extra-table', "holds the table 'smuggled'", _rows('CREATE TABLE smuggled (x)'), open_refuses=True
    ),
    # rows
    Hostile(
        'row-node-malformed-uuid',
        '1 nodes with a malformed uuid',
        _rows(f"UPDATE db_dbnode SET uuid = 'not-a-uuid' WHERE id = {_DATA}"),
    ),
    Hostile(
        'row-node-duplicate-uuid',
        '1 nodes share a uuid',
        _rows(
            *loosened('db_dbnode'),
            f'UPDATE db_dbnode SET uuid = (SELECT uuid FROM db_dbnode WHERE id = {_DATA}) WHERE id = {_CALC}',
        ),
    ),
    Hostile(
        'row-comment-malformed-uuid',
        'comments with a malformed uuid',
        _rows('UPDATE db_dbcomment SET uuid = upper(uuid)'),
    ),
    Hostile(
        'row-duplicate-email',
        'users share an email',
        _rows(*loosened('db_dbuser'), "INSERT INTO db_dbuser SELECT id + 100, email, '', '', '' FROM db_dbuser"),
    ),
    Hostile(
        'row-attributes-not-object',
        'nodes whose attributes is not a JSON object',
        _rows(f"UPDATE db_dbnode SET attributes = '[1, 2]' WHERE id = {_DATA}"),
    ),
    Hostile(
        'row-extras-not-json',
        'nodes whose extras is not a JSON object',
        _rows(f"UPDATE db_dbnode SET extras = '{{oops' WHERE id = {_DATA}"),
    ),
    Hostile(
        'row-repository-metadata-not-object',
        'nodes whose repository_metadata is not a JSON object',
        _rows(f'UPDATE db_dbnode SET repository_metadata = \'"o"\' WHERE id = {_CALC}'),
    ),
    Hostile(
        'row-log-metadata-not-object',
        'logs whose metadata is not a JSON object',
        _rows("UPDATE db_dblog SET metadata = '42'"),
    ),
    Hostile(
        'row-computer-metadata-blob',
        'computers whose metadata is not a JSON object',
        _rows("UPDATE db_dbcomputer SET metadata = x'00ff'"),
    ),
    Hostile(
        'row-node-bad-ctime',
        'nodes with a bad ctime',
        _rows(f"UPDATE db_dbnode SET ctime = 'yesterday' WHERE id = {_DATA}"),
    ),
    Hostile(
        'row-group-bad-time', 'groups with a bad time', _rows("UPDATE db_dbgroup SET time = '2024-02-31 10:00:00'")
    ),
    Hostile(
        'row-link-missing-node',
        'links to or from a missing node',
        _rows(_INSERT_LINK.format(_DATA, 999_999, 'x', 'input_calc')),
    ),
    Hostile(
        'row-link-self', 'links from a node to itself', _rows(_INSERT_LINK.format(_CALC, _CALC, 'x', 'input_calc'))
    ),
    Hostile(
        'row-link-unknown-type', 'links of an unknown type', _rows(_INSERT_LINK.format(_DATA, _CALC, 'x', 'teleport'))
    ),
    Hostile(
        'row-link-create-from-data',
        'links of a type not allowed between their nodes',
        _rows(_INSERT_LINK.format(_DATA, f'{_DATA} + 1', 'x', 'create')),
    ),
    Hostile(
        'row-link-input-calc-to-workflow',
        'links of a type not allowed between their nodes',
        _rows(_INSERT_LINK.format(_DATA, _WORK, 'other', 'input_calc')),
    ),
    Hostile(
        'row-link-call-from-calculation',
        'links of a type not allowed between their nodes',
        _rows(_INSERT_LINK.format(_CALC, _WORK, 'call', 'call_work')),
    ),
    Hostile(
        'row-link-bad-label',
        'links with an invalid label',
        _rows(_INSERT_LINK.format(_DATA, _CALC, 'has space', 'input_calc')),
    ),
    Hostile(
        'row-link-two-creators',
        'nodes with more than one incoming create link',
        _rows(
            'INSERT INTO db_dblink (input_id, output_id, label, type) '
            "SELECT input_id, output_id, 'again', 'create' FROM db_dblink WHERE type = 'create' LIMIT 1"
        ),
    ),
    Hostile(
        'row-group-member-missing-node',
        'group memberships of a missing node',
        _rows('INSERT INTO db_dbgroup_dbnodes (dbnode_id, dbgroup_id) VALUES (999999, 1)'),
    ),
    Hostile(
        'row-comment-missing-node', 'comments of a missing node', _rows('UPDATE db_dbcomment SET dbnode_id = 999999')
    ),
    Hostile('row-log-missing-node', 'logs of a missing node', _rows('UPDATE db_dblog SET dbnode_id = 999999')),
    Hostile(
        'row-node-unknown-user',
        'nodes of an unknown user',
        _rows(f'UPDATE db_dbnode SET user_id = 77 WHERE id = {_DATA}'),
    ),
    Hostile(
        'row-node-missing-computer',
        'nodes of a missing computer',
        _rows(f'UPDATE db_dbnode SET dbcomputer_id = 77 WHERE id = {_CALC}'),
    ),
    Hostile(
        'row-authinfo-unknown-user',
        'auth infos of an unknown user',
        _rows(
            'INSERT INTO db_dbauthinfo (aiidauser_id, dbcomputer_id, metadata, auth_params, enabled) '
            "VALUES (77, 1, '{}', '{}', 1)"
        ),
    ),
    # the repository
    Hostile(
        'object-missing',
        'refer to objects missing from the zip',
        _zip(lambda sound: [m for m in sound.members if m[0] != _largest_object(sound)]),
    ),
    Hostile(
        'object-wrong-content',
        'not to its name',
        _zip(_wrong_content),
        needs_hashes=True,
        import_expected='does not hash to its name',
    ),
    Hostile(
        'repository-metadata-deep',
        'nested deeper than 256 folders',
        _rows(
            lambda sound: (
                f'UPDATE db_dbnode SET repository_metadata = ? WHERE id = {_CALC}',
                (nested_tree(300, sound.keys[0]),),
            )
        ),
    ),
    Hostile(
        'repository-metadata-absurdly-deep',
        'repository_metadata is not a JSON object',
        _rows(
            lambda sound: (
                f'UPDATE db_dbnode SET repository_metadata = ? WHERE id = {_CALC}',
                (nested_tree(100_000, sound.keys[0]),),
            )
        ),
    ),
    Hostile(
        'attributes-nested-too-deep',
        'attributes is nested deeper than 400 levels',
        _rows((f'UPDATE db_dbnode SET attributes = ? WHERE id = {_CALC}', ('{"a": ' + '[' * 1500 + ']' * 1500 + '}',))),
    ),
    Hostile(
        'extras-nested-too-deep',
        'extras is nested deeper than 400 levels',
        _rows(
            (
                f'UPDATE db_dbnode SET extras = ? WHERE id = {_CALC}',
                ('{"_aiida_x": ' + '{"a": ' * 600 + '1' + '}' * 601,),
            )
        ),
    ),
    Hostile(
        'repository-metadata-escaping-name',
        'repository_metadata is malformed',
        _rows(
            lambda sound: (
                f'UPDATE db_dbnode SET repository_metadata = ? WHERE id = {_CALC}',
                (json.dumps({'o': {'..': {'k': sound.keys[0]}}}),),
            )
        ),
    ),
]


ODD: list[Odd] = [
    Odd('sound', _zip(lambda sound: sound.members)),
    Odd(
        'macosx-and-dot-entries',
        _zip(
            lambda sound: [
                ('./', b''),
                ('__MACOSX/', b''),
                ('__MACOSX/._db.sqlite3', b'\x00\x05\x16\x07junk'),
                *sound.members,
            ]
        ),
    ),
    Odd('directory-entries', _zip(lambda sound: [('repo/', b''), *sound.members, ('extra/', b'')])),
    Odd(
        'unusual-order',
        _zip(
            lambda sound: sorted(
                sound.members, key=lambda member: (not member[0].startswith('repo/'), member[0] != 'db.sqlite3')
            )
        ),
    ),
    Odd('archive-comment', _zip(lambda sound: sound.members, comment=b'made by hand\nwith a comment')),
    Odd('zip64-records', _zip(lambda sound: sound.members, force_zip64=True)),
    Odd('stored-uncompressed', _zip(lambda sound: sound.members, compression=zipfile.ZIP_STORED)),
    Odd('data-descriptors', _data_descriptors),
    Odd(
        'sql-looking-labels',
        _rows(
            ('UPDATE db_dbnode SET label = ?, description = ?', (SQL_LABEL, SQL_LABEL)),
            ('UPDATE db_dbgroup SET label = ? || id', (SQL_LABEL,)),
            ('UPDATE db_dbcomment SET content = ?', (SQL_LABEL,)),
        ),
    ),
    Odd(
        'unreferenced-object',
        _zip(lambda sound: [*sound.members, ('repo/' + hashlib.sha256(b'spare').hexdigest(), b'spare')]),
    ),
    Odd('no-nodes', _without_nodes, nodes=0),
    Odd('hundred-thousand-files', _hundred_thousand_files),
    Odd('aiida-core-main-0000', _copy('export__migrate__export_main_0000_simple.aiida'), nodes=10),
    Odd('aiida-core-1.0-graph', _copy('graphs__graph1.aiida'), nodes=10),
]


@dataclass(frozen=True)
class Corpus:
    """Where the corpus was built: the sound archive and one file per case, named by its id."""

    folder: Path
    sound: Path

    def path(self, case_id: str) -> Path:
        """Return the archive of the case ``case_id``."""
        return self.folder / f'{case_id}.aiida'


def build_corpus(folder: Path) -> Corpus:
    """Write the sound archive and every case of :data:`HOSTILE` and :data:`ODD` in ``folder``."""
    sound_path = write_sound_archive(folder)
    scratch = folder / 'scratch'
    scratch.mkdir()
    sound = Sound(sound_path, scratch)
    cases = folder / 'cases'
    cases.mkdir()
    corpus = Corpus(cases, sound_path)
    for case in (*HOSTILE, *ODD):
        case.build(sound, corpus.path(case.id))
    return corpus
