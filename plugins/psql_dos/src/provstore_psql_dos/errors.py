"""How a database error is told in one line (this module imports nothing: the light base uses it too)."""

from __future__ import annotations

__all__ = ['one_line']


def one_line(exc: BaseException) -> str:
    """Return the first line of a database error's message (the driver's, without SQLAlchemy's statement dump)."""
    original = getattr(exc, 'orig', None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
