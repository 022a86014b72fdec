"""``provstore node attributes``, ``node extras`` and ``node comment``: read a node's attributes, read and change its
extras, and read and write comments on it.

Attributes and extras print as JSON (values are JSON); values given on the command line are JSON too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from provstore.cli.node import format_time, load_node, storage_of_context, writable_storage_of_context
from provstore.cli.output import echo_json

if TYPE_CHECKING:
    from provstore.orm import Node

__all__ = ['attributes', 'comment', 'extras']


def _selected(found: Node, values: dict[str, Any], keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """Return ``values`` limited to ``keys`` (all when none is given).

    :raises NotExistentError: naming the keys the node does not have.
    """
    from provstore.orm import NotExistentError  # noqa: PLC0415

    if not keys:
        return values
    missing = [key for key in dict.fromkeys(keys) if key not in values]
    if missing:
        raise NotExistentError(f'node {found.pk} has no {what} {", ".join(map(repr, missing))}')
    return {key: values[key] for key in keys}


KEYS_OPTION = click.option(
    '-k', '--keys', 'keys', metavar='KEY', multiple=True, help='Print only this key (repeat for more); all by default.'
)


@click.command('attributes')
@click.argument('identifier', metavar='ID')
@KEYS_OPTION
@click.pass_context
def attributes(ctx: click.Context, identifier: str, keys: tuple[str, ...]) -> None:
    """Print the attributes of node ID as a JSON object (sorted keys); with -k, only those keys (exit code 1 when
    one is missing)."""
    found = load_node(storage_of_context(ctx), identifier)
    echo_json(_selected(found, found.base.attributes.all, keys, 'attribute'))


class _ShowWithoutCommand(click.Group):
    """A group whose first argument, when it names no subcommand, is given to its ``show`` subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ['show', *args]
        return super().parse_args(ctx, args)


@click.group('extras', cls=_ShowWithoutCommand)
def extras() -> None:
    """Print (`node extras ID [-k KEY]...`), set and delete the extras of a node.

    `node extras ID` prints the extras of node ID as a JSON object (sorted keys); with -k, only those keys.
    """


@extras.command('show')
@click.argument('identifier', metavar='ID')
@KEYS_OPTION
@click.pass_context
def extras_show(ctx: click.Context, identifier: str, keys: tuple[str, ...]) -> None:
    """Print the extras of node ID as a JSON object (sorted keys); with -k, only those keys (exit code 1 when one is
    missing). `node extras ID` is the same."""
    found = load_node(storage_of_context(ctx), identifier)
    echo_json(_selected(found, found.base.extras.all, keys, 'extra'))


@extras.command('set', context_settings={'ignore_unknown_options': True})
@click.argument('identifier', metavar='ID')
@click.argument('key')
@click.argument('value')
@click.pass_context
def extras_set(ctx: click.Context, identifier: str, key: str, value: str) -> None:
    """Set the extra KEY of node ID to VALUE, a JSON value: 3, 2.5, true, null, '"text"', '[1, 2]', '{"a": 1}'.

    The change is one atomic update on the server: extras other processes set meanwhile are kept.
    """
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f'VALUE {value!r} is not JSON: write a string in double quotes, as \'"{value}"\'') from None
    found = load_node(writable_storage_of_context(ctx), identifier)
    found.base.extras.set(key, parsed)
    click.echo(f'Set extra {key!r} of node {found.pk}.')


@extras.command('delete')
@click.argument('identifier', metavar='ID')
@click.argument('keys', metavar='KEY...', nargs=-1, required=True)
@click.pass_context
def extras_delete(ctx: click.Context, identifier: str, keys: tuple[str, ...]) -> None:
    """Delete the extras KEY... of node ID, in one atomic update; if one is missing, nothing is deleted (exit code
    1)."""
    found = load_node(writable_storage_of_context(ctx), identifier)
    _selected(found, found.base.extras.all, keys, 'extra')
    found.base.extras.delete_many(keys)
    click.echo(f'Deleted {len(set(keys))} extra(s) of node {found.pk}.')


@click.group('comment')
def comment() -> None:
    """Add comments to a node and show them."""


@comment.command('add')
@click.argument('identifier', metavar='ID')
@click.argument('text')
@click.pass_context
def comment_add(ctx: click.Context, identifier: str, text: str) -> None:
    """Add the comment TEXT to node ID, written by the profile's default user."""
    if not text.strip():
        raise ValueError('a comment needs some text')
    found = load_node(writable_storage_of_context(ctx), identifier)
    added = found.base.comments.add(text)
    click.echo(f'Added comment {added.pk} to node {found.pk}.')


@comment.command('show')
@click.argument('identifier', metavar='ID')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of text.')
@click.pass_context
def comment_show(ctx: click.Context, identifier: str, as_json: bool) -> None:
    """Show the comments on node ID, oldest first.

    The JSON form is a list of objects with the keys pk, uuid, user (email), ctime, mtime (ISO 8601) and content.
    """
    found = load_node(storage_of_context(ctx), identifier)
    comments = found.base.comments.all()
    if as_json:
        echo_json(
            [
                {
                    'pk': item.pk,
                    'uuid': item.uuid,
                    'user': item.user.email,
                    'ctime': format_time(item.ctime),
                    'mtime': format_time(item.mtime),
                    'content': item.content,
                }
                for item in comments
            ]
        )
        return
    if not comments:
        click.echo(f'No comments on node {found.pk}.')
        return
    for index, item in enumerate(comments):
        if index:
            click.echo()
        click.echo(f'Comment {item.pk} by {item.user.email} on {format_time(item.ctime, text=True)}:')
        for line in item.content.splitlines() or ['']:
            click.echo(f'  {line}'.rstrip())
