"""Progress of long archive work (create, import, migrate), drawn on a terminal and silent otherwise.

:class:`TerminalProgress` is a callback ``progress(stage, done, total)``, as
:func:`~provstore.archive.create.create_archive` calls it: ``stage`` is an entity kind (``'node'``, ...), a line of
its own; ``'objects'`` (files copied) and ``'bytes'`` (their bytes so far) share one bar with the count, the bytes,
the rate and the time left. ``total`` is 0 when unknown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ['TerminalProgress']

OBJECTS = 'objects'
BYTES = 'bytes'
BAR_WIDTH = 24
REDRAW_SECONDS = 0.1
"""The shortest time between two drawings of an unfinished line."""


class TerminalProgress:
    """Draws progress on ``stream`` (default: standard error) when it is a terminal; does nothing otherwise."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """:param clock: seconds, for the rate and the time left (tests give their own)."""
        self._stream = sys.stderr if stream is None else stream
        self._enabled = self._stream.isatty()
        self._clock = clock
        self._open = ''  # the stage whose line is drawn and not ended yet
        self._width = 0  # the length of that line, to blank what a shorter one leaves
        self._drawn_at = 0.0
        self._objects = (0, 0)
        self._bytes = (0, 0)
        self._started: float | None = None
        self._files_done = False

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the line being drawn."""
        if self._open:
            self._stream.write('\n')
            self._stream.flush()
            self._open = ''
            self._width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        if stage in (OBJECTS, BYTES):
            self._files(stage, done, total)
            return
        finished = done == total
        text = f'{stage}: {done:,}' if finished or not total else f'{stage}: {done:,} of {total:,}'
        self._draw(stage, text, finished)

    def _files(self, stage: str, done: int, total: int) -> None:
        if self._files_done:
            return
        if self._started is None:
            self._started = self._clock()
        if stage == OBJECTS:
            self._objects = (done, total)
        else:
            self._bytes = (done, total)
        count, count_total = self._objects
        self._files_done = count_total > 0 and count >= count_total
        self._draw(OBJECTS, self.files_line(), finished=self._files_done)

    def files_line(self) -> str:
        """Return the line of the files: bar, count, bytes, rate and time left (from bytes when their total is
        known, else from the count)."""
        count, count_total = self._objects
        size, size_total = self._bytes
        elapsed = 0.0 if self._started is None else self._clock() - self._started
        fraction = size / size_total if size_total else (count / count_total if count_total else None)
        parts = ['files']
        if fraction is not None:
            filled = min(BAR_WIDTH, int(fraction * BAR_WIDTH))
            parts.append(f'[{"#" * filled}{"-" * (BAR_WIDTH - filled)}]')
        parts.append(f'{count:,}/{count_total:,}' if count_total else f'{count:,}')
        parts.append(_size(size) + (f' of {_size(size_total)}' if size_total else ''))
        if elapsed > 0:
            parts.append(f'{_size(size / elapsed)}/s')
            if fraction:
                parts.append(f'ETA {_duration(elapsed * (1 - fraction) / fraction)}')
        return '  '.join(parts)

    def _draw(self, stage: str, text: str, finished: bool) -> None:
        """Draw ``text`` as the line of ``stage``, ending it when ``finished``; unfinished lines at most every
        :data:`REDRAW_SECONDS`."""
        now = self._clock()
        if stage != self._open:
            self.close()
        elif not finished and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        self._stream.write('\r' + text + ' ' * max(0, self._width - len(text)))
        self._width = len(text)
        self._open = stage
        if finished:
            self.close()
        else:
            self._stream.flush()


def _size(value: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return f'{value:.0f} {unit}' if unit == 'B' else f'{value:.1f} {unit}'
        value /= 1024
    raise AssertionError('unreachable')  # pragma: no cover


def _duration(seconds: float) -> str:
    """``75`` -> ``0:01:15``."""
    whole = int(seconds + 0.5)
    return f'{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}'
