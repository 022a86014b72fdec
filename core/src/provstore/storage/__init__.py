"""Storage backends: the database and repository of a profile."""

from provstore.storage.backend import StorageBackend

__all__ = ['StorageBackend']
