"""The interface every archive format implements.

Creating and importing archives is added by the archive issue; this declares what the registry checks.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

__all__ = ['ArchiveFormat']


class ArchiveFormat(abc.ABC):
    """A single-file format that holds a whole or partial provenance graph with its files."""

    name: ClassVar[str]
    """The name users select this format by, unique across installed plugins."""

    @property
    @abc.abstractmethod
    def latest_version(self) -> str:
        """The version this format writes."""

    @abc.abstractmethod
    def read_version(self, path: Path) -> str:
        """Return the format version of the archive at ``path``.

        :raises provstore.exceptions.ProvstoreError: if the file is not an archive of this format.
        """
