"""Hook implementations of the ``sandbox`` plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provstore import hookimpl

if TYPE_CHECKING:
    from provstore.repository import AbstractRepositoryBackend


@hookimpl
def register_repository_backends() -> list[type[AbstractRepositoryBackend]]:
    """Return the ``sandbox`` repository backend."""
    from provstore_sandbox.backend import SandboxRepositoryBackend  # noqa: PLC0415 - keep listing plugins cheap

    return [SandboxRepositoryBackend]
