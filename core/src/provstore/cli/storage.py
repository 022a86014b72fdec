"""``provstore storage``: the version, migration, figures, maintenance and backups of a profile's storage."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provstore.cli.context import load_profile_of_context, load_writable_profile_of_context
from provstore.cli.output import echo_fields, echo_json, echo_table
from provstore.cli.progress import TerminalProgress
from provstore.exceptions import StorageError
from provstore.manager import get_manager, get_storage_class, maintain_storage, migrate_storage, restore_storage
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


# -- backups ----------------------------------------------------------------------------------------------------


@storage.command('backup')
@click.argument('dest', type=click.Path(file_okay=False, path_type=Path))
@click.option('--keep', type=click.IntRange(min=1), help='Keep this many backups in DEST (the new one included).')
@click.option('--verify', 'check', is_flag=True, help='Check the newest backup in DEST (or the backup DEST) instead.')
@click.option('--list', 'listing', is_flag=True, help='List the complete backups in DEST instead.')
@click.option('--json', 'as_json', is_flag=True, help='Print the report, problems or listing as JSON.')
@click.pass_context
def backup(  # noqa: PLR0917 - click passes every option
    ctx: click.Context, dest: Path, keep: int | None, check: bool, listing: bool, as_json: bool
) -> None:
    """Back up the profile's storage into a new folder of DEST, while the profile is in use.

    The database is snapshotted first (SQLite's online backup API, or pg_dump of the PostgreSQL database, which must
    be on PATH), then the repository is copied; files unchanged since the previous backup in DEST are hard-linked,
    not copied. A backup is complete once its manifest.json (size and sha256 of every file) is written, last; an
    interrupted backup is resumed by the next run. DEST/last points to the newest backup.

    Exit codes: 0 when done (or --verify found nothing wrong), 1 on failure or when --verify finds problems.
    """
    from provstore.storage.backup import create_backup, list_backups, verify_backup  # noqa: PLC0415

    if check and listing:
        raise click.UsageError('give --verify or --list, not both')
    if listing:
        found = list_backups(dest)
        if as_json:
            echo_json(found)
        elif not found:
            click.echo(f'No complete backup in {dest}.')
        else:
            echo_table(
                ('NAME', 'CREATED', 'PROFILE', 'BACKEND', 'FILES', 'BYTES'),
                [
                    (
                        item['name'],
                        item['created'],
                        item['profile'],
                        item['storage_backend'],
                        item['files'],
                        item['bytes'],
                    )
                    for item in found
                ],
            )
        return
    if check:
        with TerminalProgress() as progress:
            problems = verify_backup(dest, progress)
        if as_json:
            echo_json({'backup': str(dest), 'problems': problems})
        for problem in [] if as_json else problems:
            click.echo(problem, err=True)
        if problems:
            sys.exit(1)
        if not as_json:
            click.echo(f'{dest}: every file matches the manifest')
        return
    load_profile_of_context(ctx)
    storage_of_profile = get_manager().get_profile_storage()
    with TerminalProgress() as progress:
        report = create_backup(storage_of_profile, dest, keep=keep, progress=progress)
    if as_json:
        echo_json(asdict(report))
        return
    click.echo(
        f'Backed up profile {storage_of_profile.profile.name!r} into {report.folder}: {report.files} files, '
        f'{report.bytes} bytes; copied {report.files_copied} ({report.bytes_copied} bytes), hard-linked '
        f'{report.files_linked}, kept {report.files_resumed} from an interrupted run'
    )
    if report.pruned:
        click.echo(f'Pruned {len(report.pruned)} old backup(s): {", ".join(report.pruned)}')


@storage.command('restore')
@click.argument('src', type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option('--profile', 'name', required=True, help='Name of the profile to create from the backup.')
@click.option('--database-name', help='psql_dos: the database to restore into; default provstore_<NAME>.')
@click.option('--force', is_flag=True, help='Replace an existing profile NAME (erasing its storage).')
@TIMEOUT
def restore(src: Path, name: str, database_name: str | None, force: bool, timeout: float) -> None:
    """Create the profile NAME from the backup SRC (a backup folder, or a backup destination: its newest backup).

    The backup is checked against its manifest first; the restored storage must hold the rows and objects of the
    snapshot before the profile is added to the configuration. With --force an existing profile NAME is replaced,
    which is refused while another process uses it.
    """
    with TerminalProgress() as progress:
        profile = restore_storage(
            src, name, database_name=database_name, force=force, timeout=timeout, progress=progress
        )
    click.echo(f'Restored profile {profile.name!r} ({profile.storage_backend}) from {src} in {profile.folder}')


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
