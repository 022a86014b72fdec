"""Archive formats: single-file exports of a profile, such as AiiDA's ``.aiida`` files."""

from provstore.archive.create import ArchiveSummary, ProgressCallback, create_archive
from provstore.archive.format import ArchiveFormat, ArchiveMetadata, ArchiveReader, ArchiveWriter, StorageArchiveReader

__all__ = [
    'ArchiveFormat',
    'ArchiveMetadata',
    'ArchiveReader',
    'ArchiveSummary',
    'ArchiveWriter',
    'ProgressCallback',
    'StorageArchiveReader',
    'create_archive',
]
