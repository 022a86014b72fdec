"""provstore reads, in place, and imports the archives aiida-core writes, and finds the graph aiida-core holds."""

from __future__ import annotations

from pathlib import Path

from aiida_graph import AIIDA_SESSION_WARNINGS, build_aiida_graph
from interop_helpers import (
    EMAIL,
    Snapshot,
    aiida_snapshot,
    as_imported,
    assert_same_graph,
    opened_archive,
    provstore_snapshot,
    without_checkpoints,
)

from provstore.archive.imports import import_archive
from provstore.storage import EntityStorage
from provstore_sqlite_zip.format import SqliteZipFormat

pytestmark = AIIDA_SESSION_WARNINGS


def aiida_archive(tmp_path: Path) -> tuple[Path, Snapshot]:
    """Build the graph with aiida-core, export all of it; return the archive and what aiida-core holds."""
    from aiida.tools.archive import create_archive

    build_aiida_graph(tmp_path)
    archive = tmp_path / 'aiida-core.aiida'
    create_archive(None, filename=archive)
    held = aiida_snapshot()
    assert (len(held['user']), len(held['node']), len(held['link']), len(held['group'])) == (2, 12, 12, 4)
    return archive, held


def test_aiida_core_archive_read_in_place(aiida_profile: str, tmp_path: Path) -> None:
    """An archive aiida-core wrote, opened in place by provstore, holds every entity and file aiida-core holds (but
    the checkpoints of process nodes, which aiida-core's exporter leaves out).
    """
    archive, held = aiida_archive(tmp_path)
    assert SqliteZipFormat.read_version(archive) == 'main_0001'
    with opened_archive(archive) as opened:
        assert_same_graph(provstore_snapshot(opened), without_checkpoints(held))


def test_provstore_imports_an_aiida_core_archive(
    aiida_profile: str, provstore_storage: EntityStorage, tmp_path: Path
) -> None:
    """provstore's importer brings in every entity and file of an archive aiida-core wrote, as aiida-core holds them
    (but its private ``_aiida_`` extras, left out of new nodes as aiida-core's own importer does); the default user,
    the same person in both profiles, is matched by email; a second import adds no row.
    """
    archive, held = aiida_archive(tmp_path)
    assert EMAIL in held['user']
    assert 'checkpoints' in str(held['node']) and '_aiida_hash' in str(held['node'])
    expected = as_imported(held)

    summary = import_archive(provstore_storage, archive, SqliteZipFormat, import_group=False)

    assert_same_graph(provstore_snapshot(provstore_storage), expected)
    assert summary.added['node'] == len(expected['node'])
    # NOTE: with the default mode (keep_existing) a second import would add the archive's _aiida_ extras to the
    # nodes, as aiida-core's does (test_import_modes.py); 'none' leaves them as they are.
    again = import_archive(provstore_storage, archive, SqliteZipFormat, import_group=False, extras_mode_existing='none')
    assert not any(again.added.values())
    assert_same_graph(provstore_snapshot(provstore_storage), expected)
