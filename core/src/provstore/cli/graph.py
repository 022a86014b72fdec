"""``provstore node graph``: the provenance around a node, drawn as a picture.

The nodes are found by the storage's traversal (:meth:`~provstore.storage.EntityStorage.traverse`, one recursive
query each way): ancestors up to one depth, descendants up to another, along the chosen link types. The picture is
written in Graphviz's DOT language; SVG and PNG are drawn from it by the Graphviz program ``dot``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provstore.cli.node import load_node, short_type, storage_of_context
from provstore.storage import EntityType

if TYPE_CHECKING:
    from provstore.storage import EntityStorage, Row

__all__ = ['LINK_TYPE_SETS', 'graph', 'graph_dot', 'graph_nodes']

LINK_TYPES = ('input_calc', 'create', 'input_work', 'return', 'call_calc', 'call_work')
"""The six link types, in the order the options list them."""

LINK_TYPE_SETS = {
    'all': LINK_TYPES,
    'data': ('input_calc', 'create'),
    'logic': ('input_work', 'return', 'call_calc', 'call_work'),
}
"""Names for sets of link types: data provenance (what made what) and logical provenance (what called what)."""

FORMATS = ('dot', 'svg', 'png')

DASHED = frozenset({'input_work', 'return', 'call_calc', 'call_work'})
"""Link types of the logical provenance, drawn dashed; data provenance links are solid."""

VALUE_WIDTH = 30
"""Values of simple data nodes (Int, Str, ...) longer than this are cut in their box."""

MISSING_DOT = (
    'The Graphviz program `dot` is not on PATH, and it draws SVG and PNG: install Graphviz (apt-get install graphviz, '
    'brew install graphviz, conda install -c conda-forge graphviz), or print DOT with --format dot'
)


def _depth(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """Read a traversal depth: a non-negative integer, or ``all`` (no limit: ``None``)."""
    text = value.strip().lower()
    if text == 'all':
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    raise click.BadParameter(f'{value!r} is not a depth: give a whole number (0 for none) or all', ctx, param)


def graph_nodes(
    storage: EntityStorage, pk: int, ancestor_depth: int | None, descendant_depth: int | None, link_types: Sequence[str]
) -> set[int]:
    """Return ``pk`` and its ancestors and descendants along ``link_types``, to the given depths (``None``: all)."""
    nodes = {pk}
    if ancestor_depth != 0:
        nodes |= storage.traverse([pk], [], list(link_types), ancestor_depth)
    if descendant_depth != 0:
        nodes |= storage.traverse([pk], list(link_types), [], descendant_depth)
    return nodes


def graph_links(storage: EntityStorage, nodes: set[int], link_types: Sequence[str]) -> list[Row]:
    """Return the links of ``link_types`` between ``nodes``, oldest first."""
    rows = storage.get_links(sorted(nodes), 'outgoing', list(link_types))
    return sorted((row for row in rows if row['output_id'] in nodes), key=lambda row: int(row['id']))


def _quoted(text: str) -> str:
    """Return ``text`` as a DOT string, with ``\\n`` for line breaks."""
    escaped = text.replace('\\', '\\\\').replace('"', '\\"').replace('\r', '')
    return '"' + escaped.replace('\n', '\\n') + '"'


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + '...'


def _node_lines(row: Row) -> list[str]:
    """The lines in a node's box: its class and pk, then its label, or the value of a simple data node."""
    node_type = row['node_type'] or ''
    lines = [f'{short_type(node_type)} ({row["id"]})']
    attributes = row['attributes'] or {}
    if row['label']:
        lines.append(_cut(row['label']))
    elif node_type.startswith('data.') and 'value' in attributes and not isinstance(attributes['value'], (dict, list)):
        lines.append(_cut(str(attributes['value'])))
    if node_type.startswith('process.') and attributes.get('process_state'):
        lines.append(str(attributes['process_state']))
    return lines


def _node_style(node_type: str) -> str:
    if node_type.startswith('process.workflow.'):
        return 'shape=box, style="rounded,filled", fillcolor="#fde2c4"'
    if node_type.startswith('process.'):
        return 'shape=box, style=filled, fillcolor="#f9c9c9"'
    return 'shape=ellipse, style=filled, fillcolor="#cfe3f7"'


def graph_dot(storage: EntityStorage, center: int, nodes: Iterable[int], links: Sequence[Row]) -> str:
    """Return the DOT text of ``nodes`` (by ascending pk) and ``links``; the ``center`` node has a double border.

    Node ``pk`` is named ``N<pk>`` in the DOT text (and so in the ``<title>`` of its SVG element); an edge is
    ``N<source> -> N<target>``, labelled with its link type and link label.
    """
    rows = {int(row['id']): row for row in storage.get_rows(EntityType.NODE, 'id', sorted(nodes))}
    lines = [
        'digraph provenance {',
        '    graph [rankdir=TB, fontname="Helvetica"];',
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for pk in sorted(rows):
        row = rows[pk]
        style = _node_style(row['node_type'] or '')
        if pk == center:
            style += ', penwidth=2, peripheries=2'
        lines.append(f'    N{pk} [label={_quoted(chr(10).join(_node_lines(row)))}, {style}];')
    for link in links:
        label = _quoted(f'{link["type"]}\n{link["label"]}')
        style = ', style=dashed' if link['type'] in DASHED else ''
        lines.append(f'    N{link["input_id"]} -> N{link["output_id"]} [label={label}{style}];')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def render(dot_text: str, output_format: str) -> bytes:
    """Return ``dot_text`` drawn by Graphviz in ``output_format`` (``svg`` or ``png``).

    :raises FileNotFoundError: if the program ``dot`` is not on PATH.
    :raises OSError: if it fails, with the first line it wrote.
    """
    program = shutil.which('dot')
    if program is None:
        raise FileNotFoundError(MISSING_DOT)
    done = subprocess.run([program, f'-T{output_format}'], input=dot_text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        said = (done.stderr.decode(errors='replace').strip().splitlines() or ['no message'])[0]
        raise OSError(f'Graphviz `dot -T{output_format}` failed (exit code {done.returncode}): {said}')
    return done.stdout


def _link_types(chosen: Sequence[str]) -> list[str]:
    types: dict[str, None] = {}
    for name in chosen or ('all',):
        for link_type in LINK_TYPE_SETS.get(name, (name,)):
            types[link_type] = None
    return list(types)


@click.command('graph', short_help='Draw the provenance around a node: DOT, SVG or PNG.')
@click.argument('identifier', metavar='ID')
@click.option(
    '-a',
    '--ancestor-depth',
    metavar='DEPTH',
    callback=_depth,
    default='1',
    show_default=True,
    help='How many links back to follow: a number (0: none) or all.',
)
@click.option(
    '-d',
    '--descendant-depth',
    metavar='DEPTH',
    callback=_depth,
    default='1',
    show_default=True,
    help='How many links forward to follow: a number (0: none) or all.',
)
@click.option(
    '-l',
    '--link-types',
    'link_types',
    type=click.Choice([*LINK_TYPE_SETS, *LINK_TYPES]),
    multiple=True,
    help='Follow and draw only these link types (repeat for more): data (input_calc, create), logic (input_work, '
    'return, call_calc, call_work), all (the default), or single types.',
)
@click.option(
    '-f',
    '--format',
    'output_format',
    type=click.Choice(FORMATS),
    help='What to write: dot (text, needs nothing), svg or png (drawn by Graphviz `dot`). Default: the extension '
    'of --output, else dot.',
)
@click.option(
    '-o',
    '--output',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write to this file instead of stdout.',
)
@click.option(
    '--max-nodes',
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help='Refuse to draw more nodes than this (a picture of more is unreadable; lower the depths).',
)
@click.pass_context
def graph(  # noqa: PLR0917 - click passes one argument per option
    ctx: click.Context,
    identifier: str,
    ancestor_depth: int | None,
    descendant_depth: int | None,
    link_types: tuple[str, ...],
    output_format: str | None,
    output: Path | None,
    max_nodes: int,
) -> None:
    """Draw the provenance around node ID: its ancestors and descendants to the given depths, along the chosen link
    types, and every such link between them.

    Data nodes are blue ellipses, calculations red boxes, workflows orange rounded boxes; node ID has a double
    border. Links are labelled with their type and label; logical ones (input_work, return, call_*) are dashed.

    DOT needs nothing installed (render it later with `dot -Tpdf`); SVG and PNG need the Graphviz program `dot`.
    PNG is not written to a terminal: give -o FILE.

    Examples: `provstore node graph 42 -o 42.svg`, `provstore node graph 42 -a all -d 0 -l data > 42.dot`.
    """
    if output_format is None:
        suffix = output.suffix.lower().lstrip('.') if output is not None else ''
        output_format = suffix if suffix in FORMATS else 'dot'
    if output_format != 'dot' and shutil.which('dot') is None:
        raise FileNotFoundError(MISSING_DOT)  # NOTE: before any work, so the user learns it at once
    if output_format == 'png' and output is None and sys.stdout.isatty():
        raise click.UsageError('PNG is not written to a terminal: give -o FILE.png (or pipe the output)')
    storage = storage_of_context(ctx)
    found = load_node(storage, identifier)
    assert found.pk is not None
    types = _link_types(link_types)
    nodes = graph_nodes(storage, found.pk, ancestor_depth, descendant_depth, types)
    if len(nodes) > max_nodes:
        raise ValueError(
            f'the graph around node {found.pk} has {len(nodes)} nodes, more than --max-nodes {max_nodes}: lower '
            '--ancestor-depth/--descendant-depth, choose --link-types, or raise --max-nodes'
        )
    text = graph_dot(storage, found.pk, nodes, graph_links(storage, nodes, types))
    content = text.encode() if output_format == 'dot' else render(text, output_format)
    if output is None:
        stdout = sys.stdout.buffer
        stdout.write(content)
        stdout.flush()
        return
    output.write_bytes(content)
    click.echo(f'Wrote the graph of {len(nodes)} node(s) around node {found.pk} to {output} ({output_format}).')
