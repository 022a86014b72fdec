"""Archive formats: single-file exports of a profile, such as AiiDA's ``.aiida`` files."""

from provstore.archive.format import ArchiveFormat

__all__ = ['ArchiveFormat']
