"""Hook implementations of the ``disk_objectstore`` plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provstore import hookimpl

if TYPE_CHECKING:
    from provstore.repository import AbstractRepositoryBackend


@hookimpl
def register_repository_backends() -> list[type[AbstractRepositoryBackend]]:
    """Return the ``disk_objectstore`` repository backend."""
    from provstore_disk_objectstore.backend import DiskObjectStoreRepositoryBackend  # noqa: PLC0415 - lazy by design

    return [DiskObjectStoreRepositoryBackend]
