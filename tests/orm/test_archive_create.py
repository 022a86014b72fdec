"""``create_archive`` writes ``.aiida`` files with the ``sqlite_zip`` format, on ``sqlite_dos`` and ``psql_dos``.

Each archive is opened in place with the read-only ``sqlite_zip`` backend and compared with its source, row by row
and file by file.
"""

from __future__ import annotations

import json
import random
import sqlite3
import zipfile
from pathlib import Path

import pytest

from provstore.archive.create import ArchiveSummary, create_archive
from provstore.exceptions import ArchiveExportError
from provstore.orm import (
    CalcJobNode,
    Int,
    LinkType,
    get_nodes_export,
    store_nodes,
)
from provstore.storage import EntityStorage, EntityType, Row
from provstore.testing.archive_graph import Graph
from provstore_sqlite_zip.cache import check_database
from provstore_sqlite_zip.format import SqliteZipFormat

ARCHIVED = (
    EntityType.USER,
    EntityType.COMPUTER,
    EntityType.NODE,
    EntityType.GROUP,
    EntityType.GROUP_NODE,
    EntityType.LINK,
    EntityType.COMMENT,
    EntityType.LOG,
)


def rows_of(storage: EntityStorage, entity: EntityType) -> list[Row]:
    """Return every row of ``entity`` by ascending id."""
    return list(storage.iter_rows(entity))


def assert_archive_holds(archive: Path, source: EntityStorage, node_ids: set[int] | None) -> None:
    """Assert the archive's rows are the source's (the selected nodes and what refers to them) and its files too."""
    check_database(archive, extracted_database(archive))
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        for entity in ARCHIVED:
            expected = rows_of(source, entity)
            if node_ids is not None:
                expected = [row for row in expected if selected(entity, row, node_ids, rows_of(opened, entity))]
            assert rows_of(opened, entity) == expected, entity
        assert rows_of(opened, EntityType.AUTHINFO) == []
        keys = {key for row in rows_of(opened, EntityType.NODE) for key in file_keys(row['repository_metadata'])}
        assert keys
        repository, archived = source.get_repository(), opened.get_repository()
        for key in keys:
            assert archived.get_object_content(key) == repository.get_object_content(key)
        assert set(archived.list_objects()) == keys
    finally:
        opened.close()


def selected(entity: EntityType, row: Row, node_ids: set[int], archived: list[Row]) -> bool:
    """Whether a source row belongs in the archive of ``node_ids`` (users, computers, groups: as archived)."""
    if entity is EntityType.NODE:
        return bool(row['id'] in node_ids)
    if entity is EntityType.LINK:
        return row['input_id'] in node_ids and row['output_id'] in node_ids
    if entity in (EntityType.GROUP_NODE, EntityType.COMMENT, EntityType.LOG):
        return bool(row['dbnode_id'] in node_ids)
    return row['id'] in {other['id'] for other in archived}


def file_keys(tree: dict[str, object]) -> set[str]:
    """Return the keys of every file in a ``repository_metadata`` tree."""
    keys: set[str] = set()
    for child in (tree.get('o') or {}).values():  # type: ignore[attr-defined]
        keys.update({child['k']} if 'k' in child else file_keys(child))
    return keys


def extracted_database(archive: Path) -> Path:
    """Extract the archive's ``db.sqlite3`` beside it and return its path."""
    target = archive.with_suffix('.check.sqlite3')
    with zipfile.ZipFile(archive) as handle:
        target.write_bytes(handle.read('db.sqlite3'))
    return target


def test_whole_profile_round_trip(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An archive of the whole profile holds every row (auth infos aside) and every file of the source."""
    archive = tmp_path / 'all.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat)
    assert_archive_holds(archive, storage, None)
    assert summary.counts['node'] == storage.count_rows(EntityType.NODE) == 5
    assert summary.counts['comment'] == 2
    assert summary.object_count == 3
    assert summary.object_bytes == len(b'input file') + len(b'result file' * 1000) + len(b'not reached')


def test_metadata_and_member_order(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """metadata.json (aiida-core's keys, main_0001, the entity counts) and db.sqlite3 come first, then repo/."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat, compression=9)
    with zipfile.ZipFile(archive) as handle:
        infos = handle.infolist()
        names = handle.namelist()
        metadata = json.loads(handle.read('metadata.json'))
    assert names[:2] == ['metadata.json', 'db.sqlite3']
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
    assert all(name.startswith('repo/') for name in names[2:])
    assert metadata['export_version'] == 'main_0001'
    assert metadata['key_format'] == 'sha256'
    assert metadata['compression'] == 9
    assert {'aiida_version', 'ctime'} <= set(metadata)
    assert metadata['creation_parameters']['entity_counts']['node'] == 5
    assert SqliteZipFormat.read_version(archive) == 'main_0001'


def test_start_set_holds_the_export_closure(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An archive of one node holds exactly its export closure, with its groups, users, computers and comments."""
    archive = tmp_path / 'part.aiida'
    closure = get_nodes_export([graph.result.pk], storage)
    assert graph.unrelated.pk not in closure
    assert {graph.data.pk, graph.calculation.pk, graph.workflow.pk} <= closure
    summary = create_archive(storage, archive, SqliteZipFormat, node_ids=[graph.result.pk], compression=0)
    assert_archive_holds(archive, storage, closure)
    with zipfile.ZipFile(archive) as handle:
        assert {info.compress_type for info in handle.infolist()} == {zipfile.ZIP_STORED}
    assert summary.counts == {
        'user': 1,
        'computer': 1,
        'node': len(closure),
        'group': 1,
        'group_node': 2,
        'link': storage.count_rows(EntityType.LINK),
        'comment': 1,
        'log': 1,
    }


def test_comments_and_logs_left_out(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """Without comments and logs, the archive has none, and everything else."""
    archive = tmp_path / 'bare.aiida'
    summary = create_archive(storage, archive, SqliteZipFormat, include_comments=False, include_logs=False)
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        assert opened.count_rows(EntityType.COMMENT) == opened.count_rows(EntityType.LOG) == 0
        assert opened.count_rows(EntityType.NODE) == summary.counts['node'] == 5
    finally:
        opened.close()


def test_dry_run_writes_nothing(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """A dry run returns the counts and bytes of a real run and leaves the folder empty."""
    folder = tmp_path / 'out'
    folder.mkdir()
    dry = create_archive(storage, folder / 'dry.aiida', SqliteZipFormat, dry_run=True)
    assert list(folder.iterdir()) == []
    real = create_archive(storage, folder / 'real.aiida', SqliteZipFormat)
    assert dry.dry_run
    assert (dry.counts, dry.object_count, dry.object_bytes) == (real.counts, real.object_count, real.object_bytes)


@pytest.mark.parametrize(('stage', 'at'), [('objects', 2), ('node', 5)])
def test_interrupted_create_leaves_nothing(
    storage: EntityStorage, graph: Graph, tmp_path: Path, stage: str, at: int
) -> None:
    """An exception from the progress callback (among the objects, or the rows) leaves no file under the final name
    and no temporary file beside it; an existing file replaced with ``force`` is kept whole."""
    folder = tmp_path / 'out'
    folder.mkdir()
    (folder / 'kept.aiida').write_bytes(b'old archive')

    def interrupt(reached: str, done: int, total: int) -> None:
        if reached == stage and done == at:
            assert len(list(folder.iterdir())) > 1  # NOTE: the temporary files exist at this point
            raise KeyboardInterrupt

    for name in ('cut.aiida', 'kept.aiida'):
        with pytest.raises(KeyboardInterrupt):
            create_archive(storage, folder / name, SqliteZipFormat, progress=interrupt, force=True)
    assert sorted(path.name for path in folder.iterdir()) == ['kept.aiida']
    assert (folder / 'kept.aiida').read_bytes() == b'old archive'


def test_existing_file_refused_unless_forced(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """An existing file is kept as it is, unless ``force`` replaces it with a complete archive."""
    archive = tmp_path / 'there.aiida'
    archive.write_bytes(b'precious')
    with pytest.raises(ArchiveExportError, match='the file exists'):
        create_archive(storage, archive, SqliteZipFormat)
    assert archive.read_bytes() == b'precious'
    summary: ArchiveSummary = create_archive(storage, archive, SqliteZipFormat, force=True)
    assert SqliteZipFormat.read_metadata(archive).details['creation_parameters']['entity_counts'] == summary.counts


def test_unsealed_process_refused(storage: EntityStorage, tmp_path: Path) -> None:
    """A selected process node that is not sealed refuses the archive, naming its pk; nothing is written."""
    data = Int(1, storage=storage)
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([data, calculation], storage)
    with pytest.raises(ArchiveExportError, match=rf'1 process node\(s\) are not sealed .*: pk {calculation.pk}$'):
        create_archive(storage, tmp_path / 'refused.aiida', SqliteZipFormat, node_ids=[calculation.pk])
    assert list(tmp_path.iterdir()) == []


def test_unsealed_process_refused_in_whole_profile(storage: EntityStorage, tmp_path: Path) -> None:
    """An archive of the whole profile is refused for its unsealed process nodes too (found while their rows are
    written, once): the error names them and no file, final or temporary, is left."""
    data = Int(1, storage=storage)
    calculation = CalcJobNode(storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    store_nodes([data, calculation], storage)
    with pytest.raises(ArchiveExportError, match=rf'1 process node\(s\) are not sealed .*: pk {calculation.pk}$'):
        create_archive(storage, tmp_path / 'refused.aiida', SqliteZipFormat)
    assert list(tmp_path.iterdir()) == []


def test_compression_level_checked(storage: EntityStorage, tmp_path: Path) -> None:
    """A compression level outside 0-9 is refused before anything is read or written."""
    with pytest.raises(ValueError, match='compression must be an integer from 0 to 9, got 10'):
        create_archive(storage, tmp_path / 'x.aiida', SqliteZipFormat, compression=10)
    assert list(tmp_path.iterdir()) == []


def test_incompressible_objects_stored(storage: EntityStorage, tmp_path: Path) -> None:
    """At levels 1-9 an object that does not deflate (random bytes) is stored, a compressible one deflated; both
    read back byte for byte, and aiida-core's ``compression`` key still gives the level asked for."""
    noise = random.Random(7).randbytes(200_000)
    text = b'energy 1.0 eV\n' * 20_000
    node = Int(1, storage=storage)
    node.base.repository.put_object_from_bytes(noise, 'noise.bin')
    node.base.repository.put_object_from_bytes(text, 'out.txt')
    node.store()
    archive = tmp_path / 'mixed.aiida'
    create_archive(storage, archive, SqliteZipFormat, compression=6)
    with zipfile.ZipFile(archive) as handle:
        kinds = {info.filename: info.compress_type for info in handle.infolist()}
        contents = {name: handle.read(name) for name in kinds if name.startswith('repo/')}
        metadata = json.loads(handle.read('metadata.json'))
    by_content = {content: kinds[name] for name, content in contents.items()}
    assert by_content == {noise: zipfile.ZIP_STORED, text: zipfile.ZIP_DEFLATED}
    assert kinds['db.sqlite3'] == kinds['metadata.json'] == zipfile.ZIP_DEFLATED
    assert metadata['compression'] == 6


AIIDA_CORE_ARCHIVE = (
    Path(__file__).resolve().parents[1]
    / 'fixtures'
    / 'aiida-core-static'
    / 'export__migrate__export_main_0001_simple.aiida'
)
"""A main_0001 archive written by aiida-core."""


def database_columns(archive: Path) -> dict[str, set[str]]:
    """Return the columns of every table of the archive's database."""
    database = extracted_database(archive)
    connection = sqlite3.connect(database)
    try:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')} for table in tables}
    finally:
        connection.close()


def test_database_has_aiida_cores_tables(storage: EntityStorage, graph: Graph, tmp_path: Path) -> None:
    """The archive's database has exactly the tables of aiida-core's main_0001 archives, each with its columns."""
    archive = tmp_path / 'all.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    ours, theirs = database_columns(archive), database_columns(AIIDA_CORE_ARCHIVE)
    assert set(ours) == set(theirs)
    for table, columns in theirs.items():
        assert ours[table] == columns, table
