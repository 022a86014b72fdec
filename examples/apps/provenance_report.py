"""provenance_report: record a small calculation in a profile, and print where a stored result came from.

An application as users write them: it reaches its storage only through a profile name (``--profile``, else
``$PROVSTORE_PROFILE``, else the default profile) and never imports a plugin, so the same code runs unchanged on
any storage backend a profile names (``sqlite_dos``, ``psql_dos``, ...)::

    python provenance_report.py --profile work record 2 3      # store 2 + 3 as a calculation, report its result
    python provenance_report.py --profile work report ID       # report a stored node (pk or uuid)
    python provenance_report.py report ID --json               # the same, as JSON

The report follows the provenance graph backwards from a node: the process that created it, that process's
inputs, what created those, and so on; data nodes list their files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from provstore.exceptions import ProvstoreError
from provstore.manager import get_manager
from provstore.orm import (
    CalcFunctionNode,
    Data,
    Int,
    LinkType,
    Node,
    ProcessNode,
    SinglefileData,
    store_nodes,
)

PROCESS_TYPE = 'provenance_report:add'
"""The ``process_type`` of the calculations this application records."""

MAX_DEPTH = 20
"""How many steps back the report follows the graph at most."""


def record_addition(x: int, y: int) -> Node:
    """Store ``x + y`` as a calculation in the loaded profile's storage: two inputs, the sum and a log file.

    Everything is stored in one transaction, files included. Return the stored sum.
    """
    inputs = {'x': Int(x), 'y': Int(y)}
    calculation = CalcFunctionNode(label='add', process_type=PROCESS_TYPE)
    calculation.set_process_label('add')
    calculation.set_process_state('finished')
    calculation.set_exit_status(0)
    for name, node in inputs.items():
        calculation.base.links.add_incoming(node, LinkType.INPUT_CALC, name)
    total = Int(x + y, label='sum')
    total.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    log = SinglefileData(io.BytesIO(f'add: {x} + {y} = {x + y}\n'.encode()), filename='add.log', label='log')
    log.base.links.add_incoming(calculation, LinkType.CREATE, 'log')
    store_nodes([*inputs.values(), calculation, total, log])
    calculation.seal()
    return total


def load(identifier: str) -> Node:
    """Return the stored node with pk or uuid ``identifier`` from the loaded profile's storage."""
    if identifier.isdigit():
        return Node.collection.get(pk=int(identifier))
    return Node.collection.get(uuid=identifier)


def describe(node: Node) -> dict[str, Any]:
    """Return what a report says about one node: identity, value, files (read back from the repository), state."""
    entry: dict[str, Any] = {
        'pk': node.pk,
        'uuid': node.uuid,
        'type': type(node).__name__,
        'node_type': node.node_type,
        'label': node.label,
    }
    if isinstance(node, Data):
        value = node.base.attributes.get('value', None)
        if value is not None:
            entry['value'] = value
        repository = node.base.repository
        paths = sorted(str(path / name) for path, _, names in repository.walk() for name in names)
        entry['files'] = {path: repository.get_object_content(path, 'rb').decode(errors='replace') for path in paths}
    if isinstance(node, ProcessNode):
        entry['process_type'] = node.process_type
        entry['state'] = node.process_state
        entry['exit_status'] = node.exit_status
    return entry


def report(node: Node, depth: int = 0) -> dict[str, Any]:
    """Return the provenance of ``node`` as plain data: the node, and what it came from, recursively.

    A process also lists what it created (one level).
    """
    entry = describe(node)
    if isinstance(node, ProcessNode):
        entry['created'] = [
            {'link': f'{triple.link_type.value}:{triple.link_label}', **describe(triple.node)}
            for triple in node.base.links.get_outgoing(link_type=LinkType.CREATE)
        ]
    if depth >= MAX_DEPTH:
        return entry
    link_types = (LinkType.CREATE,) if isinstance(node, Data) else (LinkType.INPUT_CALC, LinkType.INPUT_WORK)
    entry['from'] = [
        {'link': f'{triple.link_type.value}:{triple.link_label}', **report(triple.node, depth + 1)}
        for triple in node.base.links.get_incoming(link_type=link_types)
    ]
    return entry


def _headline(entry: dict[str, Any]) -> str:
    what = f'{entry["type"]} pk {entry["pk"]}' + (f' {entry["label"]!r}' if entry['label'] else '')
    if 'value' in entry:
        what += f' = {entry["value"]}'
    if 'state' in entry:
        what += f' [{entry["process_type"]}: {entry["state"]}, exit status {entry["exit_status"]}]'
    return what


def format_report(entry: dict[str, Any], indent: str = '') -> list[str]:
    """Return the report as indented text lines."""
    lines = [f'{indent}{entry.get("link", "node")} -> {_headline(entry)}']
    lines.extend(f'{indent}    file {name}: {content.strip()}' for name, content in entry.get('files', {}).items())
    for output in entry.get('created', []):
        lines.append(f'{indent}    created {output["link"]} -> {_headline(output)}')
        lines.extend(f'{indent}        file {name}: {text.strip()}' for name, text in output.get('files', {}).items())
    for source in entry.get('from', []):
        lines.extend(format_report(source, indent + '    '))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-p', '--profile', help='profile to use (default: $PROVSTORE_PROFILE, else the default one)')
    parser.add_argument('--json', action='store_true', help='print the report as JSON')
    commands = parser.add_subparsers(dest='command', required=True)
    record = commands.add_parser('record', help='store x + y as a calculation and report its result')
    record.add_argument('x', type=int)
    record.add_argument('y', type=int)
    show = commands.add_parser('report', help='report the provenance of a stored node')
    show.add_argument('identifier', metavar='ID', help='pk or uuid of the node')
    args = parser.parse_args(argv)

    manager = get_manager()
    try:
        profile = manager.load_profile(args.profile)
        node = record_addition(args.x, args.y) if args.command == 'record' else load(args.identifier)
        entry = report(load(str(node.pk)))  # read back from the storage, not from the object just stored
    except (ProvstoreError, ValueError) as exc:
        print(f'provenance_report: {exc}', file=sys.stderr)
        return 1
    finally:
        manager.unload_profile()
    if args.json:
        print(json.dumps({'profile': profile.name, 'backend': profile.storage_backend, 'report': entry}, indent=2))
    else:
        print(f'Provenance of node {entry["pk"]} in profile {profile.name!r} ({profile.storage_backend}):')
        print('\n'.join(format_report(entry)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
