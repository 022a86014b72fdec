"""The file repository: backends that store flat byte objects, and the virtual file tree of a node over them."""

from provstore.repository.backend import (
    CHUNK_SIZE,
    AbstractRepositoryBackend,
    BackupTarget,
    MaintenanceReport,
    check_byte_stream,
    sha256_of_stream,
)
from provstore.repository.repository import File, FileType, Repository

__all__ = [
    'CHUNK_SIZE',
    'AbstractRepositoryBackend',
    'BackupTarget',
    'File',
    'FileType',
    'MaintenanceReport',
    'Repository',
    'check_byte_stream',
    'sha256_of_stream',
]
