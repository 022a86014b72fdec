"""Every exception the core raises, under one base class."""

from __future__ import annotations

__all__ = [
    'InvalidPathError',
    'PluginError',
    'PluginNotFoundError',
    'ProvstoreError',
    'RepositoryError',
]


class ProvstoreError(Exception):
    """Base class of every error raised by provstore."""


class PluginError(ProvstoreError):
    """A plugin failed to load, or returned something the host refuses (raised in strict mode)."""


class PluginNotFoundError(PluginError, LookupError):
    """No installed plugin provides the requested backend or format."""


class RepositoryError(ProvstoreError):
    """A file repository operation failed."""


class InvalidPathError(RepositoryError, ValueError):
    """A path inside a repository is not a clean relative path."""
