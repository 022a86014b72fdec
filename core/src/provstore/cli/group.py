"""``provstore group``: list, show, create, relabel, delete and copy groups, and add or remove their nodes.

A group is named by a GROUP argument: its pk (``7``), its label, or its uuid (or a prefix of it of at least 4 hex
digits). Changing members is set-based: one statement adds or removes every node given.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from provstore.cli.node import (
    MIN_UUID_PREFIX,
    UUID_MARKER,
    confirm,
    delete_shown_nodes,
    format_time,
    go_ahead,
    load_node,
    load_node_pks,
    short_type,
    show_nodes_delete,
    storage_of_context,
    writable_storage_of_context,
)
from provstore.cli.output import echo_fields, echo_json, echo_listing, echo_table
from provstore.storage import EntityType

if TYPE_CHECKING:
    from provstore.orm import Group
    from provstore.storage import EntityStorage

__all__ = ['group']

NODES_SHOWN = 100
"""How many nodes ``group show`` prints by default (``--limit`` changes it)."""


def load_group(storage: EntityStorage, identifier: str) -> Group:
    """Return the group named by ``identifier``: a pk, else a label, else a uuid or a uuid prefix only one group has.

    :raises NotExistentError: if no group has it.
    :raises MultipleObjectsError: if groups of several type strings have the label, or several the uuid prefix.
    """
    from provstore.orm import Group, MultipleObjectsError, NotExistentError  # noqa: PLC0415

    groups = Group.collection(storage)
    text = identifier.strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = groups.find(pk=int(text))
        if found:
            return found[0]
    labelled = groups.find(label=text)
    if len(labelled) == 1:
        return labelled[0]
    if len(labelled) > 1:
        types = ', '.join(f'pk {item.pk} [{item.type_string}]' for item in labelled)
        raise MultipleObjectsError(f'Several groups are labelled {text!r} ({types}): give the pk')
    digits = text.removeprefix(UUID_MARKER).replace('-', '').lower()
    if len(digits) >= MIN_UUID_PREFIX and len(digits) <= 32 and all(char in '0123456789abcdef' for char in digits):
        rows = storage.find_rows(EntityType.GROUP, 'uuid', digits, limit=2)
        if len(rows) > 1:
            raise MultipleObjectsError(f'uuid prefix {text!r} is ambiguous between groups: give more digits or the pk')
        if rows:
            return groups.get(pk=rows[0]['id'])
    raise NotExistentError(f'No group with pk, label or uuid {identifier!r} (`provstore group list -a` lists them)')


def _member_pks(storage: EntityStorage, group_pk: int) -> list[int]:
    return sorted(int(row['dbnode_id']) for row in storage.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', [group_pk]))


def _count(storage: EntityStorage, group_pk: int) -> int:
    """Return the number of nodes of a group, counted in the database."""
    from provstore.orm import Group, Node, QueryBuilder  # noqa: PLC0415

    builder = QueryBuilder(storage)
    builder.append(Group, tag='group', filters={'id': group_pk})
    builder.append(Node, with_group='group')
    return builder.count()


def _summary(found: Group, count: int | None) -> dict[str, Any]:
    """The JSON of a group in ``group list`` and ``group show``."""
    return {
        'pk': found.pk,
        'uuid': found.uuid,
        'label': found.label,
        'type_string': found.type_string,
        'description': found.description,
        'user': found.user.email,
        'time': None if found.time is None else found.time.isoformat(),
        'count': count,
    }


def _group_pk(found: Group) -> int:
    assert found.pk is not None
    return found.pk


@click.group()
def group() -> None:
    """List, show, create, relabel, delete and copy groups, and add or remove their nodes.

    GROUP is a pk, a label, or a uuid (or a prefix of it of at least 4 hex digits).
    """


# -- list / show ------------------------------------------------------------------------------------------------


@group.command('list')
@click.option('-a', '--all-types', is_flag=True, help='List groups of every type string, not only --type-string.')
@click.option(
    '-T', '--type-string', default='core', show_default=True, help='Only groups of this type string (core.import, ...).'
)
@click.option('-u', '--user', 'email', metavar='EMAIL', help='Only groups owned by this user.')
@click.option('-s', '--startswith', metavar='TEXT', help='Only groups whose label starts with TEXT.')
@click.option('-c', '--contains', metavar='TEXT', help='Only groups whose label contains TEXT.')
@click.option('-N', '--node', 'node_id', metavar='ID', help='Only groups that hold the node ID.')
@click.option('-C', '--count', 'with_count', is_flag=True, help='Also count the nodes of each group.')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of a table.')
@click.pass_context
def list_groups(  # noqa: PLR0917 - click passes one argument per option
    ctx: click.Context,
    all_types: bool,
    type_string: str,
    email: str | None,
    startswith: str | None,
    contains: str | None,
    node_id: str | None,
    with_count: bool,
    as_json: bool,
) -> None:
    """List groups by label: those of type string core unless -a or -T, of every user unless -u.

    The JSON form is a list of objects with the keys pk, uuid, label, type_string, description, user (email), time
    (ISO 8601) and count (the number of nodes; null unless -C/--count).
    """
    from provstore.orm import Group, User  # noqa: PLC0415

    storage = storage_of_context(ctx)
    if node_id is not None:
        node_pk = load_node(storage, node_id).pk
        pks = [row['dbgroup_id'] for row in storage.get_rows(EntityType.GROUP_NODE, 'dbnode_id', [node_pk])]
        candidates = [Group.collection(storage).get(pk=pk) for pk in sorted(pks)]
    else:
        candidates = Group.collection(storage).all()
    user_pk = None
    if email is not None:
        users = User.collection(storage).find(email=email)
        user_pk = users[0].pk if users else -1
    groups = [
        found
        for found in candidates
        if (all_types or found.type_string == type_string)
        and (user_pk is None or found.user.pk == user_pk)
        and (startswith is None or found.label.startswith(startswith))
        and (contains is None or contains in found.label)
    ]
    groups.sort(key=lambda found: (found.label, found.pk or 0))
    counts = {_group_pk(found): _count(storage, _group_pk(found)) for found in groups} if with_count else {}
    headers = ['PK', 'LABEL', 'TYPE_STRING', 'USER'] + (['COUNT'] if with_count else [])
    rows = [
        [str(found.pk), found.label, found.type_string, found.user.email]
        + ([str(counts[_group_pk(found)])] if with_count else [])
        for found in groups
    ]
    empty = 'No groups' + ('' if all_types else f' of type {type_string!r} (-a lists every type)') + '.'
    echo_listing([_summary(found, counts.get(_group_pk(found))) for found in groups], as_json, headers, rows, empty)


@group.command('show')
@click.argument('identifier', metavar='GROUP')
@click.option(
    '--limit',
    type=click.IntRange(min=0),
    default=NODES_SHOWN,
    show_default=True,
    help='List at most this many nodes (0: none); --json lists them all unless --limit is given.',
)
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of text.')
@click.pass_context
def show(ctx: click.Context, identifier: str, limit: int, as_json: bool) -> None:
    """Show the group GROUP: its fields, extras and nodes (by ascending pk).

    The JSON form is the object of `group list --json` (with count) plus extras and nodes, a list of
    {pk, uuid, node_type, label}.
    """
    from provstore.orm import Group, Node, QueryBuilder  # noqa: PLC0415

    storage = storage_of_context(ctx)
    found = load_group(storage, identifier)
    assert found.pk is not None
    count = _count(storage, found.pk)
    given = ctx.get_parameter_source('limit') is not click.core.ParameterSource.DEFAULT
    shown = limit if given or not as_json else None
    fields = ['id', 'uuid', 'node_type', 'label']
    nodes: list[dict[str, Any]] = []
    if shown != 0:
        builder = QueryBuilder(storage, limit=shown)
        builder.append(Group, tag='group', filters={'id': found.pk})
        builder.append(Node, tag='node', with_group='group', project=fields)
        builder.order_by({'node': {'id': 'asc'}})
        nodes = [dict(zip(['pk', *fields[1:]], values, strict=True)) for values in builder.iterall()]
    if as_json:
        echo_json({**_summary(found, count), 'extras': found.extras, 'nodes': nodes})
        return
    summary = _summary(found, count)
    summary['time'] = format_time(found.time, text=True)
    echo_fields({**summary, 'extras': found.extras})
    if nodes:
        echo_table(
            ('PK', 'UUID', 'TYPE', 'LABEL'),
            [(str(n['pk']), n['uuid'], short_type(n['node_type']), n['label']) for n in nodes],
        )
    if count > len(nodes):
        click.echo(f'... and {count - len(nodes)} more (--limit shows more)', err=True)


# -- create / relabel / delete ----------------------------------------------------------------------------------


@group.command('create')
@click.argument('label')
@click.option('-d', '--description', default='', help='A description of the group.')
@click.pass_context
def create(ctx: click.Context, label: str, description: str) -> None:
    """Create an empty group LABEL (type string core); a group LABEL that exists already is left as it is.

    Exit code 0 in both cases: the group exists afterwards.
    """
    from provstore.orm import Group  # noqa: PLC0415

    storage = writable_storage_of_context(ctx)
    found, created = Group.collection(storage).get_or_create(label)
    if created:
        if description:
            found.description = description
        click.echo(f'Created group {found.label!r} (pk {found.pk}).')
    else:
        click.echo(f'Group {found.label!r} exists already (pk {found.pk}); nothing changed.')


@group.command('relabel')
@click.argument('identifier', metavar='GROUP')
@click.argument('label')
@click.pass_context
def relabel(ctx: click.Context, identifier: str, label: str) -> None:
    """Change the label of GROUP to LABEL (refused if another group of its type string has LABEL)."""
    storage = writable_storage_of_context(ctx)
    found = load_group(storage, identifier)
    old = found.label
    found.label = label
    click.echo(f'Relabelled group {old!r} (pk {found.pk}) to {label!r}.')


@group.command('delete')
@click.argument('identifiers', metavar='GROUP...', nargs=-1, required=True)
@click.option(
    '--delete-nodes',
    is_flag=True,
    help="Also delete the groups' nodes, and every node that cannot exist without them (as `provstore node delete`).",
)
@click.option('-n', '--dry-run', is_flag=True, help='Only list what would be deleted.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@click.pass_context
def delete(ctx: click.Context, identifiers: tuple[str, ...], delete_nodes: bool, dry_run: bool, yes: bool) -> None:
    """Delete the groups GROUP...; their nodes stay, unless --delete-nodes.

    With --delete-nodes, the groups' nodes go too, with what aiida-core's delete rules take along (what a deleted
    calculation created, the processes that used deleted data, ...): the command lists them as `provstore node
    delete` does, and deletes the groups and the nodes in one transaction.

    Exit codes: 0 when the groups were deleted (with --dry-run: listed); 1 when nothing was deleted: an error, or the
    answer was no (or could not be given: scripts pass --yes).
    """
    from provstore.orm import Group  # noqa: PLC0415

    storage = storage_of_context(ctx) if dry_run else writable_storage_of_context(ctx)
    groups = {found.pk: found for found in (load_group(storage, identifier) for identifier in identifiers)}
    echo_table(
        ('PK', 'LABEL', 'TYPE_STRING', 'NODES'),
        [(str(pk), found.label, found.type_string, str(_count(storage, pk))) for pk, found in groups.items() if pk],
    )
    members: list[int] = []
    doomed: list[int] = []
    if delete_nodes:
        members = sorted({pk for found in groups.values() for pk in _member_pks(storage, _group_pk(found))})
        click.echo(f'Deleting their {_nodes(len(members))} deletes ', nl=False)
        doomed = show_nodes_delete(storage, members)
    what = 'this group' if len(groups) == 1 else f'these {len(groups)} groups'
    question = f'Delete {what}' + (f' and {_nodes(len(doomed))}?' if delete_nodes else '?')
    if not go_ahead(question, dry_run, yes):
        return
    collection = Group.collection(storage)
    with storage.transaction():
        if delete_nodes:
            delete_shown_nodes(storage, members, doomed)
        for pk in groups:
            assert pk is not None
            collection.delete(pk)
    deleted = f'Deleted {len(groups)} group' + ('' if len(groups) == 1 else 's')
    click.echo(deleted + (f' and {_nodes(len(doomed))}.' if delete_nodes else '.'))


# -- members ----------------------------------------------------------------------------------------------------


@group.command('add-nodes')
@click.argument('identifier', metavar='GROUP')
@click.argument('node_ids', metavar='ID...', nargs=-1, required=True)
@click.pass_context
def add_nodes(ctx: click.Context, identifier: str, node_ids: tuple[str, ...]) -> None:
    """Add the nodes ID... to GROUP, in one statement; nodes already in it are skipped."""
    storage = writable_storage_of_context(ctx)
    found = load_group(storage, identifier)
    assert found.pk is not None
    pks = load_node_pks(storage, node_ids)
    with storage.transaction():
        before = _count(storage, found.pk)
        storage.add_group_nodes(found.pk, pks)
        after = _count(storage, found.pk)
    click.echo(f'Added {_nodes(after - before)} to group {found.label!r} (it has {_nodes(after)}).')


@group.command('remove-nodes')
@click.argument('identifier', metavar='GROUP')
@click.argument('node_ids', metavar='[ID...]', nargs=-1)
@click.option('--clear', is_flag=True, help='Remove every node of GROUP (give no ID then).')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@click.pass_context
def remove_nodes(ctx: click.Context, identifier: str, node_ids: tuple[str, ...], clear: bool, yes: bool) -> None:
    """Remove the nodes ID... (or, with --clear, all nodes) from GROUP, in one statement; the nodes stay stored.

    IDs that are not in GROUP are named on stderr and skipped. Exit code 1 when nothing was removed because of an
    error or a no.
    """
    if clear == bool(node_ids):
        raise click.UsageError('give either node IDs or --clear, not both and not neither')
    storage = writable_storage_of_context(ctx)
    found = load_group(storage, identifier)
    assert found.pk is not None
    members = set(_member_pks(storage, found.pk))
    if clear:
        pks = sorted(members)
    else:
        given = load_node_pks(storage, node_ids)
        outside = [pk for pk in given if pk not in members]
        if outside:
            click.echo(f'Not in group {found.label!r}, skipped: {", ".join(map(str, outside))}', err=True)
        pks = [pk for pk in given if pk in members]
    if not pks:
        click.echo(f'Nothing to remove from group {found.label!r}.')
        return
    if not yes and not confirm(f'Remove {_nodes(len(pks))} from group {found.label!r}?'):
        click.echo('Nothing was removed.', err=True)
        sys.exit(1)
    with storage.transaction():
        storage.remove_group_nodes(found.pk, pks)
    click.echo(f'Removed {_nodes(len(pks))} from group {found.label!r} (it has {_nodes(len(members) - len(pks))}).')


@group.command('copy')
@click.argument('source', metavar='GROUP')
@click.argument('destination', metavar='LABEL')
@click.option('-y', '--yes', is_flag=True, help='Copy into a group LABEL that exists and has nodes without asking.')
@click.pass_context
def copy(ctx: click.Context, source: str, destination: str, yes: bool) -> None:
    """Add every node of GROUP to the group LABEL (type string core), created when it does not exist.

    A LABEL group that exists and is not empty keeps its nodes; the command asks first, unless --yes.
    """
    from provstore.orm import Group  # noqa: PLC0415

    storage = writable_storage_of_context(ctx)
    found = load_group(storage, source)
    assert found.pk is not None
    existing = Group.collection(storage).find(label=destination, type_string='core')
    if existing and existing[0].pk == found.pk:
        raise ValueError(f'group {found.label!r} is the source itself: give another label')
    held = _count(storage, existing[0].pk) if existing and existing[0].pk is not None else 0
    if held and not yes and not confirm(f'Group {destination!r} has {_nodes(held)} already: add to them?'):
        click.echo('Nothing was copied.', err=True)
        sys.exit(1)
    pks = _member_pks(storage, found.pk)
    with storage.transaction():
        target, created = Group.collection(storage).get_or_create(destination)
        assert target.pk is not None
        storage.add_group_nodes(target.pk, pks)
        total = _count(storage, target.pk)
    made = 'new group' if created else 'group'
    click.echo(
        f'Copied {_nodes(len(pks))} of group {found.label!r} into {made} {destination!r} (it has {_nodes(total)}).'
    )


def _nodes(count: int) -> str:
    return f'{count} node' + ('' if count == 1 else 's')
