"""Archive formats: single-file exports of a profile, such as AiiDA's ``.aiida`` files."""

from provstore.archive.format import ArchiveFormat, ArchiveMetadata, ArchiveReader, StorageArchiveReader

__all__ = ['ArchiveFormat', 'ArchiveMetadata', 'ArchiveReader', 'StorageArchiveReader']
