"""Small, careful file operations shared across the core."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ['write_atomically']


def write_atomically(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Write ``content`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file in the same folder, which is synced, given ``mode`` and renamed over
    ``path``; the folder is synced too, so the rename survives a crash.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(descriptor, 'wb') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
