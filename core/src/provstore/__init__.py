"""provstore: provenance-graph storage driven by plugins.

Importing this package is cheap: it loads no plugin and no database driver. The plugin registry is
built on first use (:func:`provstore.registry.get_registry`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from provstore.hookspecs import hookimpl

try:
    __version__ = version('provstore')
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = '0.0.0'

__all__ = ['__version__', 'hookimpl']
