"""Profiles and storages for tests: a :class:`~provstore.config.Profile` of a backend class, its storage opened."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provstore.config import Profile
from provstore.storage import StorageBackend

__all__ = ['CONTRACT_EMAIL', 'new_profile', 'opened_storage']

CONTRACT_EMAIL = 'tester@example.org'
"""The default user email of the profiles the contracts make."""


def new_profile(
    backend_class: type[StorageBackend],
    folder: Path,
    name: str = 'contract',
    default_user_email: str | None = CONTRACT_EMAIL,
    **options: Any,
) -> Profile:
    """Return a profile ``name`` of ``backend_class`` living in ``folder``, with ``options`` validated.

    The profile is not written to any configuration file and its storage is not created.

    :raises ConfigError: if ``options`` are not valid for ``backend_class``.
    """
    config = backend_class.validate_config(options, f'profile {name!r}')
    return Profile(
        name=name,
        storage_backend=backend_class.name,
        storage_config=config,
        default_user_email=default_user_email,
        folder=folder,
    )


@contextlib.contextmanager
def opened_storage(
    backend_class: type[StorageBackend], profile: Profile, initialise: bool = False, erase: bool = False
) -> Iterator[StorageBackend]:
    """Open the profile's storage for the block (after creating it if ``initialise``) and close it afterwards.

    :param erase: erase the storage after closing it, whatever the block did.
    """
    try:
        if initialise:
            backend_class.initialise(profile)
        storage = backend_class(profile)
        try:
            yield storage
        finally:
            storage.close()
    finally:
        if erase:
            backend_class.erase(profile)
