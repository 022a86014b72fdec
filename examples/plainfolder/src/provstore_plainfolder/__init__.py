"""provstore-plainfolder: an example third-party provstore plugin.

It provides one repository backend, ``example.plainfolder``, which keeps every object as a plain file named by
its sha256 in one folder. The backend class lives in :mod:`provstore_plainfolder.backend`; this package does not
import it, so that loading the plugin's hooks stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version('provstore-plainfolder')
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = '0.0.0'

__all__ = ['__version__']
