"""The progress create_archive reports: rows per entity kind, then objects and their bytes as they are copied."""

from __future__ import annotations

from pathlib import Path

from provstore.archive.create import create_archive
from provstore.orm import Int, store_nodes
from provstore.registry import get_archive_format
from provstore.storage import EntityStorage


def test_create_reports_objects_and_bytes(storage: EntityStorage, tmp_path: Path) -> None:
    """Before each 'objects' step comes the running total of 'bytes'; the last equals the summary's bytes."""
    nodes = [Int(value, storage=storage) for value in range(3)]
    for index, node in enumerate(nodes):
        node.base.repository.put_object_from_bytes(b'x' * (index + 1) * 1000, 'file.bin')
    store_nodes(nodes, storage)
    calls: list[tuple[str, int, int]] = []
    summary = create_archive(
        storage, tmp_path / 'a.aiida', get_archive_format('sqlite_zip'), progress=lambda *call: calls.append(call)
    )
    files = [call for call in calls if call[0] in ('objects', 'bytes')]
    assert files == [
        ('objects', 0, 3),
        ('bytes', 1000, 0),
        ('objects', 1, 3),
        ('bytes', 3000, 0),
        ('objects', 2, 3),
        ('bytes', 6000, 0),
        ('objects', 3, 3),
    ]
    assert summary.object_bytes == 6000
    assert ('node', 3, 3) in calls
