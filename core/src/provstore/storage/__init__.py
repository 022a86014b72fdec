"""Storage backends: the database and repository of a profile."""

from provstore.storage.backend import StorageBackend
from provstore.storage.entities import EntityStorage, EntityType, Row

__all__ = ['EntityStorage', 'EntityType', 'Row', 'StorageBackend']
