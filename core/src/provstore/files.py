"""Small, careful file operations shared across the core."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ['move_into_place', 'write_atomically']


def write_atomically(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Write ``content`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file in the same folder, which is synced, given ``mode`` and renamed over
    ``path``; the folder is synced too, so the rename survives a crash.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(descriptor, 'wb') as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        move_into_place(Path(temporary), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def move_into_place(temporary: Path, path: Path) -> None:
    """Sync the complete file ``temporary`` and rename it over ``path`` (in the same folder), then sync the folder,
    so that after a crash ``path`` is the old file or the whole new one."""
    with open(temporary, 'rb') as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    # NOTE: some file systems refuse to sync a folder; the file itself is synced and renamed by then.
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
