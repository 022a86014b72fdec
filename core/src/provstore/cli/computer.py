"""``provstore computer``: list and show the computers that the calculations of a profile ran on.

A computer is named by a COMPUTER argument: its label or its pk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from provstore.cli.node import storage_of_context
from provstore.cli.output import echo_fields, echo_json, echo_listing
from provstore.cli.user import count_entities

if TYPE_CHECKING:
    from provstore.orm import Computer
    from provstore.storage import EntityStorage

__all__ = ['computer']


def load_computer(storage: EntityStorage, identifier: str) -> Computer:
    """Return the computer with the label (else the pk) ``identifier``.

    :raises NotExistentError: if there is none.
    """
    from provstore.orm import Computer, NotExistentError  # noqa: PLC0415

    computers = Computer.collection(storage)
    found = computers.find(label=identifier)
    text = identifier.strip()
    if not found and text.isascii() and text.isdigit() and len(text) <= 18:
        found = computers.find(pk=int(text))
    if not found:
        raise NotExistentError(f'No computer with label or pk {identifier!r} (`provstore computer list` lists them)')
    return found[0]


def _summary(found: Computer) -> dict[str, Any]:
    return {
        'pk': found.pk,
        'uuid': found.uuid,
        'label': found.label,
        'hostname': found.hostname,
        'description': found.description,
        'scheduler_type': found.scheduler_type,
        'transport_type': found.transport_type,
    }


@click.group()
def computer() -> None:
    """List and show the computers that the calculations of a profile ran on."""


@computer.command('list')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of a table.')
@click.pass_context
def list_computers(ctx: click.Context, as_json: bool) -> None:
    """List the computers by label.

    The JSON form is a list of objects with the keys pk, uuid, label, hostname, description, scheduler_type and
    transport_type.
    """
    from provstore.orm import Computer  # noqa: PLC0415

    computers = sorted(Computer.collection(storage_of_context(ctx)).all(), key=lambda found: found.label)
    rows = [
        (str(found.pk), found.label, found.hostname, found.scheduler_type, found.transport_type) for found in computers
    ]
    headers = ('PK', 'LABEL', 'HOSTNAME', 'SCHEDULER', 'TRANSPORT')
    echo_listing([_summary(found) for found in computers], as_json, headers, rows, 'No computers yet.')


@computer.command('show')
@click.argument('identifier', metavar='COMPUTER')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of text.')
@click.pass_context
def show(ctx: click.Context, identifier: str, as_json: bool) -> None:
    """Show the computer COMPUTER (a label or a pk), its metadata and how many nodes ran on it.

    The JSON form is the object of `computer list --json` plus metadata and nodes (a count).
    """
    storage = storage_of_context(ctx)
    found = load_computer(storage, identifier)
    assert found.pk is not None
    data = {
        **_summary(found),
        'metadata': found.metadata,
        'nodes': count_entities(storage, 'node', 'dbcomputer_id', found.pk),
    }
    if as_json:
        echo_json(data)
    else:
        echo_fields(data)
