"""Hook specifications: what a provstore plugin may implement.

A plugin is a module named by an entry point in the ``provstore`` group. It implements some of the hooks
below, each decorated with :data:`provstore.hookimpl`. The host calls every plugin's implementation on its
own, so each result and each error is tied to the plugin that produced it; registration hooks are neither
``firstresult`` nor ``historic``, so the order in which plugins were installed never decides anything.

Hook modules should import only this light API at module level and import their backend classes inside the
hook body, so that listing plugins stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from provstore.archive import ArchiveFormat
    from provstore.repository import AbstractRepositoryBackend
    from provstore.storage import StorageBackend

PROJECT_NAME = 'provstore'
"""The pluggy project name, which is also the entry-point group plugins are found in."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_storage_backends() -> list[type[StorageBackend]]:  # type: ignore[empty-body]
    """Return the storage backend classes this plugin provides.

    Called once per process, when the registry is first used.

    :return: a list of concrete subclasses of :class:`provstore.storage.StorageBackend`, each with a unique
        ``name`` class attribute. The first line of each class's docstring is its summary in listings.

    The host checks that the result is a list of classes, that each is a concrete subclass of the base class
    and that its ``name`` is valid and unique across all plugins; anything else discards this plugin's
    contribution and marks the plugin ``failed``.

    .. versionadded:: 0.1.0
    """


@hookspec
def register_repository_backends() -> list[type[AbstractRepositoryBackend]]:  # type: ignore[empty-body]
    """Return the repository backend classes this plugin provides.

    Called once per process, when the registry is first used.

    :return: a list of concrete subclasses of :class:`provstore.repository.AbstractRepositoryBackend`, each
        with a unique ``name`` class attribute.

    The host applies the same checks as for :func:`register_storage_backends`.

    .. versionadded:: 0.1.0
    """


@hookspec
def register_archive_formats() -> list[type[ArchiveFormat]]:  # type: ignore[empty-body]
    """Return the archive format classes this plugin provides.

    Called once per process, when the registry is first used. A format is a class of class methods: its versions
    (``version_head()``, ``versions_readable()``), ``read_metadata(path)`` / ``read_version(path)`` from the
    archive's metadata alone, and ``open(path)``, the archive as a read-only storage backend.

    :return: a list of concrete subclasses of :class:`provstore.archive.ArchiveFormat`, each with a unique
        ``name`` class attribute.

    The host applies the same checks as for :func:`register_storage_backends`.

    .. versionadded:: 0.1.0
    """
