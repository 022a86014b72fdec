"""What the global options of ``provstore`` choose: a profile (``-p/--profile``) or an archive read in place
(``--archive FILE``).

An archive is opened read-only through its archive format (``sqlite_zip``), without reading or writing any
configuration file; commands that write refuse it with the read-only error of its storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from provstore.manager import get_manager

if TYPE_CHECKING:
    from provstore.config import Profile

__all__ = ['ARCHIVE_FORMAT', 'load_profile_of_context', 'load_writable_profile_of_context']

ARCHIVE_FORMAT = 'sqlite_zip'
"""The archive format of ``--archive`` files: aiida-core's ``.aiida`` files."""


def load_profile_of_context(ctx: click.Context) -> Profile:
    """Load, in this process's manager, the archive of ``--archive`` or else the profile of ``-p`` (or the default
    profile), and return it."""
    params = ctx.find_root().params
    archive: Path | None = params.get('archive_file')
    if archive is not None:
        return get_manager().load_archive(archive, ARCHIVE_FORMAT)
    return get_manager().load_profile(params.get('profile_name'))


def load_writable_profile_of_context(ctx: click.Context) -> Profile:
    """As :func:`load_profile_of_context`, for a command that writes.

    :raises ReadOnlyStorageError: for ``--archive``, before anything is done.
    """
    profile = load_profile_of_context(ctx)
    if ctx.find_root().params.get('archive_file') is not None:
        get_manager().get_profile_storage().check_writable()
    return profile
