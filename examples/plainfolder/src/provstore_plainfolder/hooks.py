"""The hook implementations of the plugin: the module the ``provstore`` entry point names.

Only the light core API is imported here; the backend class is imported inside the hook, when provstore asks
for it, so that listing plugins never pays for importing backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provstore import hookimpl

if TYPE_CHECKING:
    from provstore.repository import AbstractRepositoryBackend


@hookimpl
def register_repository_backends() -> list[type[AbstractRepositoryBackend]]:
    """Return the repository backend this plugin provides: ``example.plainfolder``."""
    from provstore_plainfolder.backend import PlainFolderRepositoryBackend  # noqa: PLC0415 - keep the hook module light

    return [PlainFolderRepositoryBackend]
