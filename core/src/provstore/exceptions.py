"""Every exception the core raises, under one base class."""

from __future__ import annotations

__all__ = [
    'ArchiveError',
    'ArchiveExportError',
    'BackupError',
    'ConfigError',
    'IncompatibleStorageError',
    'InvalidPathError',
    'InvalidPathTypeError',
    'PluginError',
    'PluginNotFoundError',
    'ProfileLockedError',
    'ProfileNotFoundError',
    'ProvstoreError',
    'QueryError',
    'ReadOnlyStorageError',
    'RepositoryError',
    'StorageError',
    'ValidationError',
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


class InvalidPathTypeError(InvalidPathError, TypeError):
    """A path is not a string or a path object, or is absolute where a relative one is needed (or the reverse): a
    ``TypeError`` too, as aiida-core raises one there."""


class ConfigError(ProvstoreError):
    """The configuration file, or a value given for it, is invalid."""


class ProfileNotFoundError(ConfigError, LookupError):
    """No profile with the requested name exists in the configuration."""


class StorageError(ProvstoreError):
    """A storage backend operation failed."""


class QueryError(ProvstoreError, ValueError):
    """A query names an unknown field, operator or relationship, or gives a value that does not suit it."""


class ValidationError(ProvstoreError, ValueError):
    """A value cannot be stored alike on every backend (a NUL character, an integer beyond 64 bits, a text too long
    for its column); nothing was written."""


class IncompatibleStorageError(StorageError):
    """The storage's schema version is not the one this code works with: it needs a migration (or newer code)."""


class ReadOnlyStorageError(StorageError):
    """A write was attempted on a read-only storage or repository backend (an archive opened in place)."""


class ArchiveError(ProvstoreError):
    """A file is not a readable archive: the one-line message names the file and the defect."""


class ArchiveExportError(ProvstoreError):
    """An archive cannot be made of what was asked (unsealed process nodes, a file already there); nothing was
    written."""


class ProfileLockedError(ProvstoreError):
    """Another process holds the profile in a way that conflicts with the requested access (see profile_access)."""


class BackupError(ProvstoreError):
    """A backup cannot be made, checked or restored: the one-line message names the folder or file and the defect."""
