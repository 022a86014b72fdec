"""Archive formats: single-file exports of a profile, such as AiiDA's ``.aiida`` files.

``create_archive`` lives in :mod:`provstore.archive.create`: it uses the ORM's traversal, a layer above the registry
that imports this package, so it is not imported here.
"""

from provstore.archive.format import ArchiveFormat, ArchiveMetadata, ArchiveReader, ArchiveWriter, StorageArchiveReader

__all__ = [
    'ArchiveFormat',
    'ArchiveMetadata',
    'ArchiveReader',
    'ArchiveWriter',
    'StorageArchiveReader',
]
