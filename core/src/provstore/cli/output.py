"""How commands print: human tables by default, stable JSON on request."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

__all__ = ['echo_json', 'echo_table', 'progress']


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys, for scripts."""
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``headers`` as left-aligned columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for line in (headers, *rows):
        click.echo('  '.join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@contextlib.contextmanager
def progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(steps)``, drawing a progress bar of ``length`` steps on stderr when it is a terminal.

    When stderr is not a terminal (piped, redirected, captured) nothing at all is printed.
    """
    if not sys.stderr.isatty():
        yield lambda steps: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar.update
