"""provstore's importer treats what a profile already holds as aiida-core's does: the same archives, imported into an
aiida-core profile and into a provstore profile prepared alike, leave both holding the same graph, for each mode of
merging the extras of existing nodes and the comments, and with group and computer labels that clash renamed alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiida_graph import AIIDA_SESSION_WARNINGS, build_aiida_graph
from interop_helpers import (
    Snapshot,
    aiida_snapshot,
    as_imported,
    assert_same_graph,
    empty_aiida_profile,
    opened_archive,
    provstore_snapshot,
)

from provstore.archive.imports import import_archive
from provstore.orm import Comment, Computer, Group, Node
from provstore.storage import EntityStorage
from provstore_sqlite_zip.format import SqliteZipFormat

# The merge rules are the core's, the same on every storage: compared on sqlite_dos alone, to keep the run short.
pytestmark = [AIIDA_SESSION_WARNINGS, pytest.mark.parametrize('provstore_storage', ['sqlite_dos'], indirect=True)]

AIIDA_EXTRAS_MODES = {
    'keep_existing': ('k', 'c', 'l'),
    'update_existing': ('k', 'c', 'u'),
    'mirror': ('n', 'c', 'u'),
    'none': ('k', 'n', 'l'),
}
"""The extras modes of existing nodes, by name, as aiida-core's ``verdi archive import`` passes them to its importer."""


def two_aiida_archives(tmp_path: Path) -> tuple[Path, Path]:
    """Export the aiida-core graph, change the extras of node ``parameters`` and a comment, export it again; empty
    the aiida-core profile; return both archives.
    """
    from aiida import orm
    from aiida.tools.archive import create_archive

    build_aiida_graph(tmp_path)
    first, second = tmp_path / 'first.aiida', tmp_path / 'second.aiida'
    create_archive(None, filename=first)
    parameters = orm.QueryBuilder().append(orm.Node, filters={'label': 'parameters'}).one()[0]
    parameters.base.extras.set_many({'tag': 'from the archive', 'archive_only': 1})
    comment = orm.QueryBuilder().append(orm.Comment, filters={'content': 'from the second user'}).one()[0]
    comment.set_content('edited before the second export')
    create_archive(None, filename=second)
    empty_aiida_profile()
    return first, second


def comparable(snapshot: Snapshot, archive: Snapshot) -> Snapshot:
    """Keep of a target's snapshot the entities of the archive (the target made clashing ones of its own), without
    the times of modification of nodes and comments (each target changed some, at its own time).
    """
    kept: Snapshot = {kind: snapshot[kind] for kind in ('user', 'link')}
    for kind in ('computer', 'node', 'file', 'group', 'comment', 'log'):
        kept[kind] = {key: value for key, value in snapshot[kind].items() if key in archive[kind]}
    for kind in ('node', 'comment'):
        kept[kind] = {key: {**fields, 'mtime': None} for key, fields in kept[kind].items()}
    return kept


def import_into_aiida(first: Path, second: Path, extras_mode: str, comment_mode: str) -> Snapshot:
    """Import ``first`` into the aiida-core profile, which holds a group and a computer of the archive's labels;
    change node ``parameters``'s extras and a comment there; import ``second`` with the modes; return the snapshot.
    """
    from aiida import orm
    from aiida.tools.archive import import_archive as aiida_import_archive

    orm.Group(label='results').store()
    orm.Computer(
        label='cluster', hostname='elsewhere.example.org', scheduler_type='core.direct', transport_type='core.local'
    ).store()
    aiida_import_archive(first, create_group=False)
    parameters = orm.QueryBuilder().append(orm.Node, filters={'label': 'parameters'}).one()[0]
    parameters.base.extras.set_many({'tag': 'from the target', 'target_only': 2})
    comment = orm.QueryBuilder().append(orm.Comment, filters={'content': 'converged in 3 steps'}).one()[0]
    comment.set_content('edited in the target')
    aiida_import_archive(
        second, create_group=False, merge_extras=AIIDA_EXTRAS_MODES[extras_mode], merge_comments=comment_mode
    )
    return aiida_snapshot()


def import_into_provstore(
    storage: EntityStorage, first: Path, second: Path, extras_mode: Any, comment_mode: Any
) -> Snapshot:
    """Do in the provstore profile what :func:`import_into_aiida` does in aiida-core's; return the snapshot."""
    Group('results', storage=storage).store()
    Computer('cluster', 'elsewhere.example.org', storage=storage).store()
    import_archive(storage, first, SqliteZipFormat, import_group=False)
    parameters = Node.collection(storage).get(label='parameters')
    parameters.base.extras.set('tag', 'from the target')
    parameters.base.extras.set('target_only', 2)
    comment = Comment.collection(storage).get(content='converged in 3 steps')
    comment.content = 'edited in the target'
    import_archive(
        storage,
        second,
        SqliteZipFormat,
        import_group=False,
        extras_mode_existing=extras_mode,
        comment_mode=comment_mode,
    )
    return provstore_snapshot(storage)


def merged_by_both(
    storage: EntityStorage, tmp_path: Path, extras_mode: str, comment_mode: str
) -> tuple[Snapshot, Snapshot]:
    """Run the same imports into the aiida-core and the provstore profile; return what each holds of the archive's."""
    first, second = two_aiida_archives(tmp_path)
    with opened_archive(second) as opened:
        archive = provstore_snapshot(opened)
    by_aiida = comparable(import_into_aiida(first, second, extras_mode, comment_mode), archive)
    by_provstore = comparable(import_into_provstore(storage, first, second, extras_mode, comment_mode), archive)
    relabelled = {fields['label'] for kind in ('group', 'computer') for fields in by_aiida[kind].values()}
    assert {'results', 'cluster'}.isdisjoint(relabelled)
    return by_provstore, by_aiida


@pytest.mark.parametrize(
    ('extras_mode', 'comment_mode'),
    [('keep_existing', 'leave'), ('update_existing', 'newest'), ('mirror', 'overwrite'), ('none', 'newest')],
)
def test_importers_merge_alike(
    aiida_profile: str, provstore_storage: EntityStorage, tmp_path: Path, extras_mode: str, comment_mode: str
) -> None:
    """Both importers leave the same extras on a node both the target and the archive changed, the same comments
    (one changed in the target, one in the archive), and give the archive's group and computer the same new labels;
    aiida-core's private ``_aiida_`` extras aside (:func:`test_private_extras_merged_alike`).
    """
    by_provstore, by_aiida = merged_by_both(provstore_storage, tmp_path, extras_mode, comment_mode)

    assert_same_graph(as_imported(by_provstore), as_imported(by_aiida))


def test_private_extras_merged_alike(aiida_profile: str, provstore_storage: EntityStorage, tmp_path: Path) -> None:
    """Merging the extras of existing nodes (``keep_existing``), both importers treat aiida-core's private extras
    (the node hash, which a new node is imported without) alike.
    """
    by_provstore, by_aiida = merged_by_both(provstore_storage, tmp_path, 'keep_existing', 'leave')

    assert_same_graph(by_provstore, by_aiida)
