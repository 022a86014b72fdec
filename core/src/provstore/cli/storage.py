"""``provstore storage``: the version, migration, figures and maintenance of a profile's storage."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from provstore.cli.context import load_profile_of_context, load_writable_profile_of_context
from provstore.cli.output import echo_fields, echo_json, echo_table
from provstore.exceptions import StorageError
from provstore.manager import get_manager, get_storage_class, maintain_storage, migrate_storage
from provstore.storage import EntityType

if TYPE_CHECKING:
    from provstore.repository import MaintenanceReport
    from provstore.storage import EntityStorage

__all__ = ['storage']

EXIT_NEEDS_MIGRATION = 3
"""Exit code of ``storage version`` when the storage must be migrated before use."""
EXIT_UNREACHABLE = 4
"""Exit code of ``storage version`` when the storage cannot be reached or holds no schema."""

TIMEOUT = click.option(
    '--timeout', type=float, default=0.0, show_default=True, help='Seconds to wait for other users to let go.'
)


@click.group()
def storage() -> None:
    """Inspect and look after the storage of a profile (-p, or the default profile)."""


@storage.command('version')
@click.option('--json', 'as_json', is_flag=True, help='Print {"profile", "head", "storage"} as JSON.')
@click.pass_context
def version(ctx: click.Context, as_json: bool) -> None:
    """Print the schema version of the storage and the one this code needs.

    Exit codes: 0 when they agree, 3 when the storage needs `provstore storage migrate`, 4 when the storage cannot
    be reached or holds no schema (a server that does not answer, a missing or unreadable database), 1 on another
    error. Reads one value; it does not open the storage.
    """
    profile = load_profile_of_context(ctx)
    storage_class = get_storage_class(profile)
    head = storage_class.version_head()
    try:
        current = storage_class.version_profile(profile)
    except StorageError as exc:
        click.echo(f'Error: profile {profile.name!r}: the storage cannot be reached: {exc}', err=True)
        sys.exit(EXIT_UNREACHABLE)
    if current is None:
        click.echo(f'Error: profile {profile.name!r}: the storage holds no schema (not initialised?)', err=True)
        sys.exit(EXIT_UNREACHABLE)
    if as_json:
        echo_json({'profile': profile.name, 'head': head, 'storage': current})
    else:
        click.echo(f'profile {profile.name!r}: storage at version {current}, code at version {head}')
    if current != head:
        sys.exit(EXIT_NEEDS_MIGRATION)


@storage.command('migrate')
@TIMEOUT
@click.pass_context
def migrate(ctx: click.Context, timeout: float) -> None:
    """Migrate the storage to the version this code needs, holding the profile's exclusive lock."""
    profile = load_writable_profile_of_context(ctx)
    before, after = migrate_storage(profile, timeout)
    click.echo(f'profile {profile.name!r}: ' + (f'already at {after}' if before == after else f'{before} -> {after}'))


@storage.command('info')
@click.option('--detailed', is_flag=True, help='Also compute sizes (slower).')
@click.option('--json', 'as_json', is_flag=True, help='Print JSON.')
@click.pass_context
def info(ctx: click.Context, detailed: bool, as_json: bool) -> None:
    """Print figures about the storage: entities, repository objects, sizes with --detailed.

    The text form is a two-column table, nested figures indented under their heading; --json prints the
    backend's figures as they are (an object whose keys depend on the storage backend).
    """
    load_profile_of_context(ctx)
    figures = get_manager().get_profile_storage().get_info(detailed=detailed)
    if as_json:
        echo_json(figures)
        return
    echo_fields(figures)


@storage.command('maintain')
@click.option('--full', is_flag=True, help='Also do what needs every other user gone (takes the exclusive lock).')
@click.option('-n', '--dry-run', is_flag=True, help='Report what would be done; change nothing.')
@click.option('--compress', is_flag=True, help='Compress objects while packing them, where it saves space.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation before full maintenance.')
@TIMEOUT
@click.option('--json', 'as_json', is_flag=True, help='Print the report as JSON.')
@click.pass_context
def maintain(  # noqa: PLR0917 - the command's options
    ctx: click.Context, full: bool, dry_run: bool, compress: bool, yes: bool, timeout: float, as_json: bool
) -> None:
    """Optimise the storage. Live maintenance is safe while others work: it deletes the objects no node refers to
    (never one a writer is about to refer to), packs loose objects and drops loose copies already packed. --full
    also repacks to reclaim the space of deleted objects and vacuums the database; it is refused while others use the
    profile, naming them."""
    load_writable_profile_of_context(ctx)
    if full and not dry_run and not yes:
        click.confirm('Full maintenance needs every other process gone, and may take long. Go on?', abort=True)
    storage = get_manager().get_profile_storage()
    report = maintain_storage(storage, full=full, dry_run=dry_run, timeout=timeout, compress=compress)
    if as_json:
        echo_json(asdict(report))
        return
    for line in report_lines(report):
        click.echo(line)


@storage.command('integrity')
@click.option('--no-hash', 'no_hash', is_flag=True, help='Check that objects exist, without reading them (fast).')
@click.option('--json', 'as_json', is_flag=True, help='Print the checks as JSON.')
@click.pass_context
def integrity(ctx: click.Context, no_hash: bool, as_json: bool) -> None:
    """Check the storage: objects present and sound, links by the rules, no dangling row, file references in step.

    Read only. Exit codes: 0 when every check is clean, 1 when one found a problem. Objects no node refers to are
    reported, not counted as problems (`provstore storage maintain` removes them).
    """
    from provstore.cli.progress import TerminalProgress  # noqa: PLC0415
    from provstore.orm.integrity import check_integrity  # noqa: PLC0415

    storage = _entity_storage(ctx, writes=False)
    with TerminalProgress() as report:
        checks = check_integrity(storage, hashes=not no_hash, progress=report)
    failed = [check.name for check in checks if check.failed]
    if as_json:
        echo_json({'clean': not failed, 'checks': [asdict(check) for check in checks]})
    else:
        rows = [
            (
                check.name,
                f'{check.checked:,}',
                'skipped' if check.skipped else f'{check.problems:,}',
                check.skipped or check.description,
            )
            for check in checks
        ]
        echo_table(('check', 'checked', 'problems', 'what'), rows)
        for check in checks:
            for example in check.examples:
                click.echo(f'  {check.name}: {example}')
            if check.problems > len(check.examples):
                click.echo(f'  {check.name}: ... and {check.problems - len(check.examples):,} more')
        click.echo('problems found: ' + ', '.join(failed) if failed else 'clean')
    if failed:
        sys.exit(1)


def report_lines(report: MaintenanceReport) -> list[str]:
    """Return the lines that tell a person what maintenance did, or would do on a dry run.

    A dry run's steps read "would ...": a backend may write its steps that way already, in any case, or as
    plain actions ("pack 3 objects", "Pack 3 objects"), which get the "would" here; a step that says there is
    nothing to do is printed as it is.
    """
    if not report.steps:
        return ['nothing to do']
    if not report.dry_run:
        return list(report.steps)
    return [
        step if step.lower().startswith(('would ', 'nothing ')) else f'would {_lower_first_word(step)}'
        for step in report.steps
    ]


def _lower_first_word(text: str) -> str:
    """``Pack 3 objects`` -> ``pack 3 objects``; an acronym (``VACUUM the index``) stays as it is."""
    first = text.split(' ', 1)[0]
    return text[0].lower() + text[1:] if first[:1].isupper() and first[1:].islower() else text


# -- JSON indexes -----------------------------------------------------------------------------------------------


@storage.group('index')
def index() -> None:
    """Indexes on JSON paths (attributes.<key>, extras.<key>, ...) that make filters on them fast."""


def _entity_storage(ctx: click.Context, writes: bool) -> EntityStorage:
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415 - the ORM only when needed

    (load_writable_profile_of_context if writes else load_profile_of_context)(ctx)
    return get_entity_storage()


def _json_path(value: str, entity: str) -> tuple[EntityType, str, tuple[str, ...]]:
    """``attributes.a.b`` -> (entity, 'attributes', ('a', 'b'))."""
    field, _, rest = value.partition('.')
    if not rest:
        raise click.BadParameter(f'{value!r} is not a JSON path: write FIELD.KEY[.KEY...], e.g. attributes.energy')
    return EntityType(entity), field, tuple(rest.split('.'))


ENTITY = click.option(
    '--entity',
    type=click.Choice(['node', 'group', 'computer', 'authinfo', 'log']),
    default='node',
    show_default=True,
    help='The entity whose JSON field is indexed.',
)


@index.command('add')
@click.argument('path', metavar='FIELD.KEY')
@ENTITY
@click.pass_context
def index_add(ctx: click.Context, path: str, entity: str) -> None:
    """Create the index of a JSON path, e.g. attributes.process_state (nothing happens if it exists).

    Filters on the path (==, in, <, >, ...) then read the index instead of every row. On psql_dos it is built
    while other writers go on, and a node path also gets a table of its numbers, which answers ranges and counts.
    """
    name = _entity_storage(ctx, writes=True).add_json_index(*_json_path(path, entity))
    click.echo(f'Index {name} serves {entity} {path}.')


@index.command('drop')
@click.argument('path', metavar='FIELD.KEY')
@ENTITY
@click.pass_context
def index_drop(ctx: click.Context, path: str, entity: str) -> None:
    """Drop the index of a JSON path (nothing happens if there is none)."""
    _entity_storage(ctx, writes=True).drop_json_index(*_json_path(path, entity))
    click.echo(f'No index on {entity} {path} now.')


@index.command('list')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list of {"entity", "path"}.')
@click.pass_context
def index_list(ctx: click.Context, as_json: bool) -> None:
    """List the JSON paths that have an index."""
    found = [
        {'entity': entity.value, 'path': '.'.join((field, *keys))}
        for entity, field, keys in _entity_storage(ctx, writes=False).list_json_indexes()
    ]
    if as_json:
        echo_json(found)
    elif not found:
        click.echo('No JSON path has an index.')
    else:
        echo_table(('ENTITY', 'PATH'), [(item['entity'], item['path']) for item in found])
