"""``provstore user``: list and show the users of a profile (the authors of nodes, groups and comments).

A user is named by a USER argument: its email or its pk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from provstore.cli.node import storage_of_context
from provstore.cli.output import echo_fields, echo_json, echo_listing
from provstore.storage import StorageBackend

if TYPE_CHECKING:
    from provstore.orm import User
    from provstore.storage import EntityStorage

__all__ = ['count_entities', 'user']


def count_entities(storage: EntityStorage, entity: str, column: str, pk: int) -> int:
    """Return how many nodes (``entity='node'``) or groups have ``column`` equal to ``pk``, counted in the database."""
    from provstore.orm import Group, Node, QueryBuilder  # noqa: PLC0415

    builder = QueryBuilder(storage)
    builder.append(Node if entity == 'node' else Group, filters={column: pk})
    return builder.count()


def load_user(storage: EntityStorage, identifier: str) -> User:
    """Return the user with the email (or pk) ``identifier``.

    :raises NotExistentError: if there is none.
    """
    from provstore.orm import NotExistentError, User  # noqa: PLC0415
    from provstore.orm.users import normalize_email  # noqa: PLC0415

    users = User.collection(storage)
    text = identifier.strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = users.find(pk=int(text))
    else:
        found = users.find(email=normalize_email(text)) if '@' in text else []
    if not found:
        raise NotExistentError(f'No user with email or pk {identifier!r} (`provstore user list` lists them)')
    return found[0]


def _default_email(storage: EntityStorage) -> str | None:
    profile = storage.profile if isinstance(storage, StorageBackend) else None
    return None if profile is None else profile.default_user_email


def _summary(found: User, default: str | None) -> dict[str, Any]:
    return {
        'pk': found.pk,
        'email': found.email,
        'first_name': found.first_name,
        'last_name': found.last_name,
        'institution': found.institution,
        'is_default': found.email == default,
    }


@click.group()
def user() -> None:
    """List and show the users of a profile: the authors of its nodes, groups and comments."""


@user.command('list')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of a table.')
@click.pass_context
def list_users(ctx: click.Context, as_json: bool) -> None:
    """List the users by email; the profile's default user is marked with *.

    The JSON form is a list of objects with the keys pk, email, first_name, last_name, institution and is_default.
    """
    from provstore.orm import User  # noqa: PLC0415

    storage = storage_of_context(ctx)
    default = _default_email(storage)
    users = sorted(User.collection(storage).all(), key=lambda found: found.email)
    rows = [
        ('*' if found.email == default else '', str(found.pk), found.email, found.get_full_name(), found.institution)
        for found in users
    ]
    headers = ('', 'PK', 'EMAIL', 'NAME', 'INSTITUTION')
    echo_listing([_summary(found, default) for found in users], as_json, headers, rows, 'No users yet.')


@user.command('show')
@click.argument('identifier', metavar='USER')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of text.')
@click.pass_context
def show(ctx: click.Context, identifier: str, as_json: bool) -> None:
    """Show the user USER (an email or a pk) and how many nodes and groups it owns.

    The JSON form is the object of `user list --json` plus nodes and groups (counts).
    """
    storage = storage_of_context(ctx)
    found = load_user(storage, identifier)
    assert found.pk is not None
    data = {
        **_summary(found, _default_email(storage)),
        'nodes': count_entities(storage, 'node', 'user_id', found.pk),
        'groups': count_entities(storage, 'group', 'user_id', found.pk),
    }
    if as_json:
        echo_json(data)
    else:
        echo_fields(data)
