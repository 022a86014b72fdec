"""The interface every storage backend implements.

This is the profile-independent part; the profile lifecycle and the entity collections are added by the
issues that introduce profiles and the ORM.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

__all__ = ['StorageBackend']


class StorageBackend(abc.ABC):
    """A profile's storage: a database of nodes, links and groups plus a file repository."""

    name: ClassVar[str]
    """The name profiles use to select this backend, unique across installed plugins."""

    read_only: ClassVar[bool] = False
    """Whether this backend refuses every write (an archive opened in place, for example)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection and file handle; the instance is unusable afterwards."""

    @property
    @abc.abstractmethod
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""

    @abc.abstractmethod
    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        """Return JSON-serialisable figures about the storage (entity counts; sizes when ``detailed``)."""
