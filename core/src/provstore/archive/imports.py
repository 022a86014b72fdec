"""``import_archive``: bring the entities and files of an archive, of any format, into a profile's storage.

Written once over :class:`~provstore.storage.EntityStorage` rows and the :class:`~provstore.archive.ArchiveReader`
protocol. Identity is the UUID (users: the email); what the profile already holds is skipped (or merged, for the
extras of nodes and for comments, as the modes say).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from provstore.archive.create import ProgressCallback
    from provstore.archive.format import ArchiveFormat
    from provstore.storage import EntityStorage

__all__ = [
    'COMMENT_MODES',
    'EXTRAS_MODES_EXISTING',
    'EXTRAS_MODES_NEW',
    'ImportSummary',
    'import_archive',
]

ExtrasModeExisting = Literal['keep_existing', 'update_existing', 'mirror', 'none']
ExtrasModeNew = Literal['keep', 'none']
CommentMode = Literal['leave', 'newest', 'overwrite']

EXTRAS_MODES_EXISTING: tuple[ExtrasModeExisting, ...] = ('keep_existing', 'update_existing', 'mirror', 'none')
"""For nodes the profile already holds: keep its extras and add the archive's new keys (``keep_existing``), also
take the archive's value of keys in both (``update_existing``), take the archive's extras as they are (``mirror``),
or leave the extras as they are (``none``)."""
EXTRAS_MODES_NEW: tuple[ExtrasModeNew, ...] = ('keep', 'none')
"""For new nodes: keep the archive's extras (but aiida-core's private ``_aiida_`` keys), or none."""
COMMENT_MODES: tuple[CommentMode, ...] = ('leave', 'newest', 'overwrite')
"""For comments the profile already holds: leave them, take the archive's when newer, or always take it."""


@dataclass(frozen=True)
class ImportSummary:
    """What an import added, skipped and renamed (or would, after a dry run)."""

    path: Path
    added: Mapping[str, int]
    """New rows per entity kind, by the kind's name (``'node'``, ``'link'``, ...)."""
    existing: Mapping[str, int]
    """Rows of the archive the profile already held, per entity kind."""
    relabelled: Mapping[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per entity kind (``'group'``, ``'computer'``), the ``(label, new label)`` of new rows whose label was taken."""
    updated: Mapping[str, int] = field(default_factory=dict)
    """Existing rows changed by a merge mode: ``'node'`` (extras), ``'comment'`` (content)."""
    object_count: int = 0
    """Repository objects the profile lacked and received."""
    object_bytes: int = 0
    import_group: str | None = None
    """The label of the group the archive's nodes were added to, if any."""
    dry_run: bool = False


def import_archive(
    storage: EntityStorage,
    path: Path,
    archive_format: type[ArchiveFormat],
    *,
    extras_mode_existing: ExtrasModeExisting = 'keep_existing',
    extras_mode_new: ExtrasModeNew = 'keep',
    comment_mode: CommentMode = 'leave',
    import_group: str | bool = True,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import the archive at ``path`` into ``storage``, atomically: every row in one transaction, the objects the
    profile lacks written before the commit; a failure at any moment leaves the profile's rows as they were.

    The archive is verified first (:meth:`ArchiveFormat.verify`, and the content of each object to be written
    hashed): a defective archive is refused before anything is written.

    :param import_group: ``True`` adds every node of the archive to a new group labelled by the time of import,
        a string to the group of that label (made if missing), ``False`` to no group.
    :param dry_run: write nothing; return what would be added, skipped and renamed.
    :raises ArchiveError: naming the first defect of an archive that is not sound.
    """
    raise NotImplementedError
