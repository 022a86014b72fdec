"""How commands print: human tables by default, stable JSON on request."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import click

__all__ = ['echo_fields', 'echo_json', 'echo_listing', 'echo_table', 'progress']


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys, for scripts."""
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``headers`` as left-aligned columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for line in (headers, *rows):
        click.echo('  '.join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def echo_listing(
    data: Sequence[Any], as_json: bool, headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str
) -> None:
    """Print a listing: ``data`` as JSON with ``--json``, else ``rows`` as a table, or the line ``empty`` when there
    is nothing to list."""
    if as_json:
        echo_json(data)
    elif not rows:
        click.echo(empty)
    else:
        echo_table(headers, rows)


def echo_fields(data: Mapping[str, Any]) -> None:
    """Print a mapping as a two-column table: nested mappings indented under their key, lists joined by commas."""
    rows: list[tuple[str, str]] = []

    def add(mapping: Mapping[str, Any], depth: int) -> None:
        for key, value in mapping.items():
            name = '  ' * depth + str(key)
            if isinstance(value, Mapping):
                rows.append((name, '' if value else '-'))
                add(value, depth + 1)
            elif isinstance(value, (list, tuple)):
                rows.append((name, ', '.join(str(item) for item in value) or '-'))
            else:
                rows.append((name, '-' if value is None or value == '' else str(value)))

    add(data, 0)
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        click.echo(f'{name.ljust(width)}  {value}'.rstrip())


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
