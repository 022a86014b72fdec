"""Helpers shared by the ORM tests: the test server, making and opening profiles, counting what is stored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from postgres_test_server import drop_database, new_database_name

from provstore.manager import get_manager
from provstore.storage import EntityStorage, EntityType

EMAIL = 'tester@example.org'
"""The default user email of every test profile."""

BACKENDS = ['sqlite_dos', 'psql_dos']


@contextlib.contextmanager
def configured_profile(request: pytest.FixtureRequest, backend: str) -> Iterator[str]:
    """Create a configured profile on ``backend`` (its PostgreSQL database dropped afterwards); yield its name."""
    from provstore.cli.profile import create_profile

    options: dict[str, Any] = {}
    database = None
    if backend == 'psql_dos':
        database = new_database_name()
        options = {**request.getfixturevalue('postgres_server'), 'database_name': database}
    name = f'orm-{backend}'
    try:
        create_profile(name, backend, options, email=EMAIL, set_default=True)
        yield name
    finally:
        get_manager().unload_profile()
        if database is not None:
            drop_database(database)


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
