"""Helpers shared by the ORM tests: the test profiles' default user, opening a profile, counting what is stored."""

from __future__ import annotations

from provstore.manager import get_manager
from provstore.storage import EntityStorage, EntityType

EMAIL = 'tester@example.org'
"""The default user email of every test profile."""


def open_storage(name: str) -> EntityStorage:
    """Load profile ``name`` in this process's manager and return its storage."""
    manager = get_manager()
    manager.load_profile(name)
    backend = manager.get_profile_storage()
    assert isinstance(backend, EntityStorage), f'storage backend {backend.name} does not store entities'
    return backend


def counts(storage: EntityStorage) -> dict[str, int]:
    """Return the number of rows of every entity table: what a test compares to show nothing was written."""
    return {entity.value: storage.count_rows(entity) for entity in EntityType}


def object_count(storage: EntityStorage) -> int:
    """Return the number of objects in the storage's repository."""
    return sum(1 for _ in storage.get_repository().list_objects())
