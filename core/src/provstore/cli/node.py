"""``provstore node``: show, list and delete the nodes of a profile, and read their files.

A node is named by an ID: its pk (``42``), its uuid, or a prefix of its uuid of at least
:data:`MIN_UUID_PREFIX` hex digits that only one node has (dashes and case do not matter). A prefix made of digits
only reads as a pk: write it ``uuid:1234``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provstore.cli.context import load_profile_of_context
from provstore.cli.output import echo_json, echo_table, progress
from provstore.exceptions import StorageError
from provstore.storage import EntityType

if TYPE_CHECKING:
    from provstore.orm import Node
    from provstore.storage import EntityStorage, Row
    from provstore.storage.entities import Direction

__all__ = ['node']

MIN_UUID_PREFIX = 4
"""The fewest hex digits of a uuid that name a node."""

UUID_MARKER = 'uuid:'
"""Written before an ID, makes it a uuid (prefix) even when it is made of digits only."""

CANDIDATES_SHOWN = 5
"""How many nodes an ambiguous uuid prefix error names."""

LINKS_SHOWN = 20
"""How many links in each direction ``node show`` prints (``--json`` gives them all)."""

VALUE_WIDTH = 100
"""Attribute and extra values longer than this are cut in ``node show``'s text (``--json`` gives them whole)."""

DELETE_BATCH = 1000
"""Nodes per statement when ``node delete`` reads and deletes (all in one transaction)."""


def storage_of_context(ctx: click.Context) -> EntityStorage:
    """Return the storage of the profile chosen with -p (or the default), or of the archive of --archive, which
    must store nodes."""
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415 - the ORM only when a node command runs

    load_profile_of_context(ctx)
    return get_entity_storage()


def writable_storage_of_context(ctx: click.Context) -> EntityStorage:
    """As :func:`storage_of_context`, for a command that writes.

    :raises ReadOnlyStorageError: for ``--archive``, before anything is read.
    """
    from provstore.orm.entities import check_writable  # noqa: PLC0415

    storage = storage_of_context(ctx)
    check_writable(storage)
    return storage


def _node_of_row(storage: EntityStorage, row: Row) -> Node:
    from provstore.orm.node_classes import nodes_from_rows  # noqa: PLC0415 - the ORM only when a node command runs

    return nodes_from_rows(storage, [row])[0]


def load_node(storage: EntityStorage, identifier: str) -> Node:
    """Return the node named by ``identifier``: a pk, a uuid, or a uuid prefix only one node has.

    :raises ValueError: if ``identifier`` is none of these forms, or a uuid prefix that is too short.
    :raises NotExistentError: if no node has it.
    :raises MultipleObjectsError: if several nodes have the uuid prefix (naming a few of them).
    """
    from provstore.orm import MultipleObjectsError, NotExistentError  # noqa: PLC0415
    from provstore.orm.validation import MAX_INT64  # noqa: PLC0415

    text = identifier.strip()
    if text.isascii() and text.isdigit() and (len(text.lstrip('0')) > len(str(MAX_INT64)) or int(text) > MAX_INT64):
        shown = text if len(text) <= 30 else f'{text[:20]}... ({len(text)} digits)'
        raise NotExistentError(f'No node with pk {shown}: a pk is at most {MAX_INT64}')
    if text.isascii() and text.isdigit():
        rows = storage.get_rows(EntityType.NODE, 'id', [int(text)])
        if not rows:
            hint = f' (digits only make a pk: write {UUID_MARKER}{text} for a uuid prefix)' if len(text) >= 4 else ''
            raise NotExistentError(f'No node with pk {text}{hint}')
        return _node_of_row(storage, rows[0])
    prefix = text.removeprefix(UUID_MARKER)
    digits = prefix.replace('-', '').lower()
    if not digits or not digits.isascii() or not all(char in '0123456789abcdef' for char in digits):
        raise ValueError(f'{identifier!r} is not a node ID: give a pk, a uuid or at least 4 hex digits of one')
    if len(digits) > 32:
        raise ValueError(f'{identifier!r} is not a node ID: a uuid has 32 hex digits, this has {len(digits)}')
    if len(digits) < MIN_UUID_PREFIX:
        raise ValueError(f'uuid prefix {prefix!r} is too short: give at least {MIN_UUID_PREFIX} hex digits, or a pk')
    rows = storage.find_rows(EntityType.NODE, 'uuid', digits, limit=CANDIDATES_SHOWN + 1)
    if not rows:
        raise NotExistentError(f'No node with a uuid starting with {prefix!r}')
    if len(rows) > 1:
        shown = ', '.join(
            f'pk {row["id"]} ({row["uuid"]}, {short_type(row["node_type"])})' for row in rows[:CANDIDATES_SHOWN]
        )
        more = ', ...' if len(rows) > CANDIDATES_SHOWN else ''
        raise MultipleObjectsError(
            f'uuid prefix {prefix!r} is ambiguous: nodes {shown}{more} have it; give more digits or the pk'
        )
    return _node_of_row(storage, rows[0])


def load_node_pks(storage: EntityStorage, identifiers: Sequence[str]) -> list[int]:
    """Return the pks of the nodes named by ``identifiers``, without repeats, in the order given.

    Plain pks are checked in one query; uuids and prefixes are looked up one by one (:func:`load_node`).

    :raises NotExistentError: naming the pks that are not nodes.
    """
    from provstore.orm import NotExistentError  # noqa: PLC0415
    from provstore.orm.validation import MAX_INT64  # noqa: PLC0415

    plain = [text.strip() for text in identifiers]
    numbers = {int(text) for text in plain if text.isascii() and text.isdigit() and int(text) <= MAX_INT64}
    stored = {int(row['id']) for row in storage.get_rows(EntityType.NODE, 'id', sorted(numbers))} if numbers else set()
    missing = sorted(numbers - stored)
    if missing:
        shown = ', '.join(map(str, missing[:CANDIDATES_SHOWN])) + (', ...' if len(missing) > CANDIDATES_SHOWN else '')
        raise NotExistentError(f'No node with pk {shown}')
    pks: dict[int, None] = {}
    for text, identifier in zip(plain, identifiers, strict=True):
        if text.isascii() and text.isdigit() and int(text) in stored:
            pks[int(text)] = None
        else:
            pks[_pk(load_node(storage, identifier))] = None
    return list(pks)


def short_type(node_type: str) -> str:
    """Return the class part of a ``node_type``: ``data.core.int.Int.`` → ``Int``."""
    return node_type.rstrip('.').rpartition('.')[2] or node_type or 'Node'


def format_time(value: datetime.datetime | None, text: bool = False) -> str | None:
    """Return a time in ISO 8601 (``text``: to the second, with a space), or ``None``."""
    if value is None:
        return None
    return value.isoformat(sep=' ', timespec='seconds') if text else value.isoformat()


SUMMARY_FIELDS = ('id', 'uuid', 'node_type', 'process_type', 'label', 'description', 'ctime', 'mtime')
"""The columns ``node list`` reads."""


def _summary(row: Row) -> dict[str, Any]:
    """The JSON of a node in ``node list``."""
    return {
        'pk': row['id'],
        'uuid': row['uuid'],
        'node_type': row['node_type'],
        'process_type': row['process_type'],
        'label': row['label'],
        'description': row['description'],
        'ctime': format_time(row['ctime']),
        'mtime': format_time(row['mtime']),
    }


@click.group()
def node() -> None:
    """Show, list and delete the nodes of a profile (-p, or the default profile), and read their files."""


# -- show -------------------------------------------------------------------------------------------------------


@node.command('show', short_help='Show a node: attributes, extras, files and links.')
@click.argument('identifier', metavar='ID')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of text.')
@click.pass_context
def show(ctx: click.Context, identifier: str, as_json: bool) -> None:
    """Show the node ID: what it is, its attributes, extras, files and links.

    ID is a pk, a uuid, or a prefix of a uuid that only one node has (at least 4 hex digits; write uuid:1234 for a
    prefix of digits only).

    The JSON form is an object with the keys pk, uuid, node_type, process_type, label, description, ctime, mtime
    (ISO 8601), user (email), computer (label or null), attributes, extras, files (the path of every file, sorted),
    incoming and outgoing (lists of {pk, uuid, node_type, link_type, link_label}, oldest link first).
    """
    storage = storage_of_context(ctx)
    found = load_node(storage, identifier)
    assert found.pk is not None
    computer = found.computer
    data: dict[str, Any] = {
        'pk': found.pk,
        'uuid': found.uuid,
        'node_type': found.node_type,
        'process_type': found.process_type,
        'label': found.label,
        'description': found.description,
        'ctime': format_time(found.ctime),
        'mtime': format_time(found.mtime),
        'user': found.user.email,
        'computer': None if computer is None else computer.label,
        'attributes': found.base.attributes.all,
        'extras': found.base.extras.all,
        'files': _file_paths(found),
    }
    limit = None if as_json else LINKS_SHOWN
    directions: tuple[Direction, ...] = ('incoming', 'outgoing')
    links = {direction: _links(storage, found.pk, direction, limit) for direction in directions}
    if as_json:
        echo_json({**data, **{direction: shown for direction, (shown, _) in links.items()}})
        return
    for key in ('pk', 'uuid', 'node_type', 'process_type', 'label', 'description', 'user', 'computer'):
        click.echo(f'{key + ":":<14}{"" if data[key] is None else data[key]}'.rstrip())
    for key, value in (('ctime', found.ctime), ('mtime', found.mtime)):
        click.echo(f'{key + ":":<14}{format_time(value, text=True) or ""}'.rstrip())
    for key in ('attributes', 'extras'):
        click.echo(f'{key}:' + ('' if data[key] else ' none'))
        for name, value in sorted(data[key].items()):
            click.echo(f'  {name}: {_cut(json.dumps(value, sort_keys=True))}')
    files = data['files']
    click.echo(f'files: {len(files)}' + (f' (provstore node repo ls {found.pk})' if files else ''))
    for direction, (shown, total) in links.items():
        click.echo(f'{direction} links: {total}')
        if shown:
            rows = [
                (link['link_type'], link['link_label'], str(link['pk']), short_type(link['node_type']))
                for link in shown
            ]
            echo_table(('  LINK_TYPE', 'LABEL', 'PK', 'TYPE'), [('  ' + row[0], *row[1:]) for row in rows])
        if total > len(shown):
            click.echo(f'  ... and {total - len(shown)} more (--json lists them all)')


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + '...'


def _file_paths(found: Node) -> list[str]:
    repository = found.base.repository
    if repository.is_empty():
        return []
    return sorted(str(path / name) for path, _, names in repository.walk() for name in names)


def _links(
    storage: EntityStorage, pk: int, direction: Direction, limit: int | None
) -> tuple[list[dict[str, Any]], int]:
    """Return the links of one direction (at most ``limit``, oldest first) as JSON objects, and how many there are."""
    rows = sorted(storage.get_links([pk], direction), key=lambda row: int(row['id']))
    end = 'input_id' if direction == 'incoming' else 'output_id'
    shown = rows if limit is None else rows[:limit]
    ends = {row['id']: row for row in storage.get_rows(EntityType.NODE, 'id', list({row[end] for row in shown}))}
    links = [
        {
            'pk': row[end],
            'uuid': ends[row[end]]['uuid'],
            'node_type': ends[row[end]]['node_type'],
            'link_type': row['type'],
            'link_label': row['label'],
        }
        for row in shown
    ]
    return links, len(rows)


# -- list -------------------------------------------------------------------------------------------------------


@node.command('list')
@click.option(
    '-t',
    '--type',
    'node_type',
    metavar='TYPE',
    help='Only nodes of this class, subclasses included (Data, Dict, CalcJobNode, ...), or whose node_type starts '
    'with TYPE (data.core.).',
)
@click.option('-l', '--label', help='Only nodes with exactly this label.')
@click.option(
    '--limit', type=click.IntRange(min=1), default=50, show_default=True, help='Print at most this many nodes.'
)
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of a table.')
@click.pass_context
def list_nodes(ctx: click.Context, node_type: str | None, label: str | None, limit: int, as_json: bool) -> None:
    """List nodes, the most recently stored first.

    The JSON form is a list of objects with the keys pk, uuid, node_type, process_type, label, description, ctime
    and mtime (ISO 8601).
    """
    from provstore.orm import Node, QueryBuilder  # noqa: PLC0415 - the ORM only when a node command runs

    prefix = type_prefix(node_type) if node_type is not None else ''
    filters: dict[str, Any] = {}
    if prefix:
        filters['node_type'] = {'startswith': prefix}
    if label is not None:
        filters['label'] = label
    builder = QueryBuilder(storage_of_context(ctx), limit=limit)
    builder.append(Node, tag='node', filters=filters, project=list(SUMMARY_FIELDS))
    builder.order_by({'node': {'id': 'desc'}})
    rows = [dict(zip(SUMMARY_FIELDS, values, strict=True)) for values in builder.iterall(batch_size=limit)]
    if as_json:
        echo_json([_summary(row) for row in rows])
        return
    if not rows:
        click.echo('No nodes' + (' match' if node_type is not None or label is not None else ' yet') + '.')
        return
    table = [
        (
            str(row['id']),
            row['uuid'],
            short_type(row['node_type']),
            row['label'],
            format_time(row['ctime'], text=True) or '',
        )
        for row in rows
    ]
    echo_table(('PK', 'UUID', 'TYPE', 'LABEL', 'CTIME'), table)
    if len(rows) == limit:
        click.echo(f'(the {limit} most recent; --limit shows more)', err=True)


def type_prefix(value: str) -> str:
    """Return the ``node_type`` prefix of ``--type``: a class name (with its subclasses) or a prefix as it is.

    :raises ValueError: for a capitalised word that is not the name of a node class.
    """
    from provstore.orm.node_classes import node_type_path, registered_node_classes  # noqa: PLC0415

    classes = {cls.__name__: cls for cls in registered_node_classes().values()}
    found = classes.get(value)
    if found is not None:
        path = node_type_path(found.NODE_TYPE)
        return f'{path}.' if path else ''
    if value[:1].isupper() and '.' not in value:
        raise ValueError(
            f'No node class {value!r}; the classes are {", ".join(sorted(classes))}, or give a node_type prefix '
            '(data.core.int.)'
        )
    return value


# -- delete -----------------------------------------------------------------------------------------------------


@node.command('delete', short_help='Delete nodes along the provenance graph.')
@click.argument('identifiers', metavar='ID...', nargs=-1, required=True)
@click.option('-n', '--dry-run', is_flag=True, help='Only list what would be deleted.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@click.pass_context
def delete(ctx: click.Context, identifiers: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Delete the nodes ID... and every node that cannot exist without them.

    IDs are pks, uuids or unique uuid prefixes. aiida-core's delete rules decide what goes along: what a deleted
    calculation created, the processes that used deleted data, the workflows that called deleted processes, ...
    The command lists what would go (counts by node_type, and the pks) and asks, unless --yes. Nodes go with their
    links, group memberships, comments and logs, in one transaction; their files stay in the repository until
    `provstore storage maintain` removes them.

    Exit codes: 0 when the nodes were deleted (with --dry-run: listed); 1 when nothing was deleted: an error, or
    the answer was no (or could not be given: scripts pass --yes).
    """
    # NOTE: writability is checked before the question, which a read-only storage (--archive) never needs
    storage = storage_of_context(ctx) if dry_run else writable_storage_of_context(ctx)
    pks = sorted({_pk(load_node(storage, identifier)) for identifier in identifiers})
    click.echo(f'Deleting {_nodes(len(pks))} ({", ".join(map(str, pks))}) deletes ', nl=False)
    doomed = show_nodes_delete(storage, pks)
    question = 'Delete this node?' if len(doomed) == 1 else f'Delete these {len(doomed)} nodes?'
    if not go_ahead(question, dry_run, yes):
        return
    with storage.transaction():
        delete_shown_nodes(storage, pks, doomed)
    click.echo(f'Deleted {_nodes(len(doomed))}.')


def show_nodes_delete(storage: EntityStorage, pks: list[int]) -> list[int]:
    """Print, after what the caller printed, the nodes that deleting ``pks`` deletes (counts by node_type and the
    pks); return them."""
    from provstore.orm import get_nodes_delete  # noqa: PLC0415

    doomed = sorted(get_nodes_delete(pks, storage))
    types = _count_types(storage, doomed)
    click.echo(f'{_nodes(len(doomed))}:')
    echo_table(('  COUNT', 'NODE_TYPE'), [(f'  {count}', name) for name, count in sorted(types.items())])
    click.echo(f'  pks: {compact_ranges(doomed)}')
    return doomed


def delete_shown_nodes(storage: EntityStorage, pks: list[int], doomed: list[int]) -> None:
    """Delete ``doomed``, what :func:`show_nodes_delete` showed for ``pks``, in the caller's transaction.

    :raises StorageError: if deleting ``pks`` now deletes other nodes (another process linked more since).
    """
    from provstore.orm import get_nodes_delete  # noqa: PLC0415

    # NOTE: computed again inside the transaction: if another process linked more nodes since the list was
    # shown, refuse rather than delete more than the user agreed to.
    if sorted(get_nodes_delete(pks, storage)) != doomed:
        raise StorageError('The nodes to delete changed while the command ran; nothing was deleted: run it again')
    with progress(len(doomed), 'Deleting nodes') as advance:
        for chunk in _chunks(doomed, DELETE_BATCH):
            storage.delete_nodes(chunk)
            advance(len(chunk))


def _pk(found: Node) -> int:
    assert found.pk is not None
    return found.pk


def _nodes(count: int) -> str:
    return f'{count} node' + ('' if count == 1 else 's')


def confirm(question: str) -> bool:
    """Ask ``question`` on stderr; ``False`` when the answer is no or cannot be read (no input)."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo(err=True)
        return False


def go_ahead(question: str, dry_run: bool, yes: bool) -> bool:
    """Return whether to go on deleting: ``False`` after a dry run (saying so); exit with code 1 on a no.

    :param yes: go on without asking.
    """
    if dry_run:
        click.echo('Dry run: nothing was deleted.')
        return False
    if not yes and not confirm(question):
        click.echo('Nothing was deleted.', err=True)
        sys.exit(1)
    return True


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _count_types(storage: EntityStorage, pks: Sequence[int]) -> Counter[str]:
    """Return how many of the nodes ``pks`` have each ``node_type``, reading them in batches."""
    types: Counter[str] = Counter()
    with progress(len(pks), 'Reading nodes') as advance:
        for chunk in _chunks(pks, DELETE_BATCH):
            types.update(row['node_type'] for row in storage.get_rows(EntityType.NODE, 'id', chunk))
            advance(len(chunk))
    return types


def compact_ranges(values: Sequence[int]) -> str:
    """Return sorted integers as ranges: ``[1, 2, 3, 5, 7, 8]`` → ``1-3 5 7-8``."""
    parts: list[str] = []
    start = previous = None
    for value in [*values, None]:
        if value is not None and previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f'{start}-{previous}')
        start = previous = value
    return ' '.join(parts)


# -- repo -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _in_node(found: Node, path: str) -> Iterator[None]:
    """Turn a missing or wrong-kind repository path into an error that names the node and the path."""
    where = f'node {found.pk}'
    try:
        yield
    except FileNotFoundError:
        raise FileNotFoundError(f'{where} has no file or directory {path!r}') from None
    except IsADirectoryError:
        raise IsADirectoryError(
            f'{path!r} of {where} is a directory: list it with `provstore node repo ls {found.pk} {path}`'
        ) from None
    except NotADirectoryError as exc:
        raise NotADirectoryError(f'{where}: {exc}') from None


@node.group('repo')
def repo() -> None:
    """List, print and copy out the files of a node."""


@repo.command('ls')
@click.argument('identifier', metavar='ID')
@click.argument('path', required=False, default='')
@click.pass_context
def repo_ls(ctx: click.Context, identifier: str, path: str) -> None:
    """List the files and directories (with a trailing /) of node ID at PATH (default: the top)."""
    found = load_node(storage_of_context(ctx), identifier)
    repository = found.base.repository
    with _in_node(found, path):
        entry = repository.get_object(path or None)
        if not entry.is_dir:
            click.echo(entry.name)
            return
        for item in repository.list_objects(path or None):
            click.echo(item.name + ('/' if item.is_dir else ''))


@repo.command('cat')
@click.argument('identifier', metavar='ID')
@click.argument('path')
@click.pass_context
def repo_cat(ctx: click.Context, identifier: str, path: str) -> None:
    """Write the content of the file PATH of node ID to stdout, byte for byte."""
    from provstore.repository import CHUNK_SIZE  # noqa: PLC0415

    found = load_node(storage_of_context(ctx), identifier)
    stdout = sys.stdout.buffer
    with _in_node(found, path), found.base.repository.open(path, 'rb') as handle:
        try:
            shutil.copyfileobj(handle, stdout, CHUNK_SIZE)
            stdout.flush()
        except BrokenPipeError:
            _quiet_broken_pipe()


def _quiet_broken_pipe() -> None:
    """Leave quietly when the reader went away (``| head``): no error, no message at interpreter exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (tests): nothing to silence
    sys.exit(0)


@repo.command('dump')
@click.argument('identifier', metavar='ID')
@click.argument('destination', metavar='DEST', type=click.Path(path_type=Path))
@click.option(
    '-f', '--force', is_flag=True, help='Write into DEST even if it is not empty, replacing same-named files.'
)
@click.pass_context
def repo_dump(ctx: click.Context, identifier: str, destination: Path, force: bool) -> None:
    """Copy every file of node ID into the folder DEST (created if needed; refused if not empty, unless --force)."""
    found = load_node(storage_of_context(ctx), identifier)
    if destination.exists() and not destination.is_dir():
        raise NotADirectoryError(f'{destination} exists and is not a folder: give a new or empty folder')
    if destination.is_dir() and any(destination.iterdir()) and not force:
        raise FileExistsError(f'{destination} is not empty: give a new or empty folder, or --force to write into it')
    found.base.repository.copy_tree(destination.absolute())
    click.echo(f'Copied {len(_file_paths(found))} file(s) of node {found.pk} into {destination}')
