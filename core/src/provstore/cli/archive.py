"""``provstore archive``: create archives of a profile, and read the version and figures of an archive file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provstore.cli.output import echo_fields, echo_json
from provstore.cli.progress import TerminalProgress

if TYPE_CHECKING:
    from provstore.archive import ArchiveFormat
    from provstore.archive.imports import ImportSummary

__all__ = ['archive']

DEFAULT_FORMAT = 'sqlite_zip'
"""The archive format used unless ``--format`` names another: aiida-core's ``.aiida`` files."""

FORMAT = click.option(
    '--format',
    'format_name',
    default=DEFAULT_FORMAT,
    show_default=True,
    metavar='NAME',
    help='Archive format (an installed plugin provides it).',
)


def _format(name: str) -> type[ArchiveFormat]:
    from provstore.registry import get_archive_format  # noqa: PLC0415 - plugins only when an archive is used

    return get_archive_format(name)


@click.group()
def archive() -> None:
    """Create archives of a profile and inspect archive files."""


@archive.command('create')
@click.argument('output', type=click.Path(dir_okay=False, path_type=Path))
@click.option('--all', 'everything', is_flag=True, help='Archive the whole profile.')
@click.option('-N', '--nodes', 'identifiers', multiple=True, metavar='ID', help='A node to start from (repeatable).')
@click.option('--no-comments', is_flag=True, help='Leave out the comments of the archived nodes.')
@click.option('--no-logs', is_flag=True, help='Leave out the logs of the archived nodes.')
@click.option('--compress', type=click.IntRange(0, 9), default=6, show_default=True, help='0 (stored) to 9.')
@click.option('--dry-run', is_flag=True, help='Write nothing; print what the archive would hold.')
@click.option('--force', is_flag=True, help='Replace OUTPUT if it exists.')
@FORMAT
@click.pass_context
def create(  # noqa: PLR0917 - click passes one argument per option
    ctx: click.Context,
    output: Path,
    everything: bool,
    identifiers: tuple[str, ...],
    no_comments: bool,
    no_logs: bool,
    compress: int,
    dry_run: bool,
    force: bool,
    format_name: str,
) -> None:
    """Write an archive of the profile (--all), or of the nodes -N ID... and what the export rules reach from them.

    A start set brings the groups of its nodes, their users and computers, and, unless told not to, their comments
    and logs. Process nodes must be sealed. The file appears under OUTPUT only when complete.

    Exit codes: 0 done, 1 refused (an unsealed process, OUTPUT exists without --force, ...), 2 usage.
    """
    from provstore.archive.create import create_archive  # noqa: PLC0415 - the ORM only when an archive is made
    from provstore.cli.node import load_node, storage_of_context  # noqa: PLC0415

    if everything == bool(identifiers):
        raise click.UsageError('give either --all or -N ID (one or more)')
    storage = storage_of_context(ctx)
    node_ids = None if everything else [_pk(load_node(storage, identifier)) for identifier in identifiers]
    with TerminalProgress() as report:
        summary = create_archive(
            storage,
            output,
            _format(format_name),
            node_ids=node_ids,
            include_comments=not no_comments,
            include_logs=not no_logs,
            compression=compress,
            dry_run=dry_run,
            force=force,
            progress=report,
        )
    counts = ', '.join(f'{name} {count}' for name, count in summary.counts.items())
    files = f'files {summary.object_count} ({summary.object_bytes:,} bytes)'
    if dry_run:
        click.echo(f'Dry run: {output} would hold {counts}; {files}. Nothing was written.')
    else:
        click.echo(f'Wrote {output}: {counts}; {files}.')


@archive.command('import')
@click.argument('files', nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    '--extras-mode-existing',
    type=click.Choice(['keep_existing', 'update_existing', 'mirror', 'none']),
    default='keep_existing',
    show_default=True,
    help='Extras of nodes the profile already holds: add new keys only, also update keys in both, take the '
    "archive's, or leave them.",
)
@click.option(
    '--extras-mode-new',
    type=click.Choice(['keep', 'import', 'none']),
    default='keep',
    show_default=True,
    help="Extras of new nodes: keep the archive's ('import' is aiida-core's name for it), or none.",
)
@click.option(
    '--comment-mode',
    type=click.Choice(['leave', 'newest', 'overwrite']),
    default='leave',
    show_default=True,
    help="Comments the profile already holds: leave them, take the archive's when newer, or always take it.",
)
@click.option('-G', '--group', 'group_label', metavar='LABEL', help='Add the nodes to this group (made if missing).')
@click.option('--no-import-group', is_flag=True, help='Add the nodes to no group.')
@click.option('--include-authinfos', is_flag=True, help="Also import the archive's authorisation infos.")
@click.option('--dry-run', is_flag=True, help='Write nothing; print what would be added, merged and renamed.')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list of summaries, one per file.')
@FORMAT
@click.pass_context
def import_(  # noqa: PLR0917 - click passes one argument per option
    ctx: click.Context,
    files: tuple[Path, ...],
    extras_mode_existing: str,
    extras_mode_new: str,
    comment_mode: str,
    group_label: str | None,
    no_import_group: bool,
    include_authinfos: bool,
    dry_run: bool,
    as_json: bool,
    format_name: str,
) -> None:
    """Import the archives FILE... into the profile, each in one transaction: all of it or, on any error, nothing.

    Entities the profile holds (same UUID; users: same email) are skipped, or merged as the modes say; a new group
    or computer whose label is taken is renamed 'LABEL (Imported #n)'. Unless told otherwise, the nodes of each
    archive go into a new group named by the time of import. The archive is checked before anything is written.

    Exit codes: 0 done, 1 refused (a defective archive, a clash with the profile's links, ...), 2 usage.
    """
    from provstore.archive.imports import import_archive  # noqa: PLC0415 - the ORM only when an archive is read
    from provstore.cli.node import storage_of_context  # noqa: PLC0415

    if group_label is not None and no_import_group:
        raise click.UsageError('give either -G LABEL or --no-import-group, not both')
    storage = storage_of_context(ctx)
    archive_format = _format(format_name)
    summaries = []
    for file in files:
        with TerminalProgress() as report:
            summary = import_archive(
                storage,
                file,
                archive_format,
                extras_mode_existing=extras_mode_existing,  # type: ignore[arg-type]
                extras_mode_new='keep' if extras_mode_new == 'import' else extras_mode_new,  # type: ignore[arg-type]
                comment_mode=comment_mode,  # type: ignore[arg-type]
                import_group=False if no_import_group else (group_label or True),
                include_authinfos=include_authinfos,
                dry_run=dry_run,
                progress=report,
            )
        summaries.append(summary)
        if not as_json:
            click.echo(_describe_import(summary))
    if as_json:
        echo_json([dataclasses.asdict(summary) | {'path': str(summary.path)} for summary in summaries])


def _describe_import(summary: ImportSummary) -> str:
    """One line per import: what was added, what the profile held already, files, group, renamings."""
    added = ', '.join(f'{name} {count}' for name, count in summary.added.items())
    existing = ', '.join(f'{name} {count}' for name, count in summary.existing.items() if count)
    parts = [f'added {added}', f'already held: {existing or "nothing"}']
    if summary.updated:
        parts.append('merged: ' + ', '.join(f'{name} {count}' for name, count in summary.updated.items()))
    for kind, renamed in summary.relabelled.items():
        parts.append(f'{kind} renamed: ' + ', '.join(f'{old!r} -> {new!r}' for old, new in renamed))
    parts.append(f'files {summary.object_count} ({summary.object_bytes:,} bytes)')
    if summary.import_group is not None:
        parts.append(f'group {summary.import_group!r}')
    if summary.dry_run:
        return f'Dry run: {summary.path} would be imported: ' + '; '.join(parts) + '. Nothing was written.'
    return f'Imported {summary.path}: ' + '; '.join(parts) + '.'


@archive.command('migrate')
@click.argument('source', metavar='IN', type=click.Path(dir_okay=False, path_type=Path))
@click.argument('destination', metavar='OUT', type=click.Path(dir_okay=False, path_type=Path))
@click.option('--force', is_flag=True, help='Replace OUT if it exists.')
@FORMAT
def migrate(source: Path, destination: Path, force: bool, format_name: str) -> None:
    """Write the archive IN, of an older version, as a new archive OUT of the version this code writes.

    IN is never changed; OUT appears only when complete. An archive at the newest version already is copied
    unchanged, so every file of a folder can be migrated alike.

    Exit codes: 0 done, 1 refused (IN is not a readable archive, OUT exists without --force, ...), 2 usage.
    """
    archive_format = _format(format_name)
    before = archive_format.read_version(source)
    with TerminalProgress() as report:
        try:
            archive_format.migrate(source, destination, force=force, progress=report)
        except NotImplementedError as exc:
            raise click.ClickException(str(exc)) from None
    head = archive_format.version_head()
    if before == head:
        click.echo(f'{source} is at version {head} already: copied it unchanged to {destination}.')
    else:
        click.echo(f'Migrated {source} (version {before}) to {destination} (version {head}).')


@archive.command('version')
@click.argument('file', type=click.Path(dir_okay=False, path_type=Path))
@FORMAT
def version(file: Path, format_name: str) -> None:
    """Print the format version of the archive FILE and the one this code writes (from its metadata alone)."""
    archive_format = _format(format_name)
    click.echo(
        f'{file}: version {archive_format.read_version(file)} (this code writes {archive_format.version_head()})'
    )


@archive.command('info')
@click.argument('file', type=click.Path(dir_okay=False, path_type=Path))
@click.option('--json', 'as_json', is_flag=True, help='Print {"format", "version", "metadata", "entities"} as JSON.')
@FORMAT
def info(file: Path, as_json: bool, format_name: str) -> None:
    """Print the metadata of the archive FILE and the number of rows of each entity kind in its database.

    Reads the metadata and the database only: no file of the repository is extracted.
    """
    from provstore.storage import EntityStorage, EntityType  # noqa: PLC0415

    archive_format = _format(format_name)
    metadata = archive_format.read_metadata(file)
    storage = archive_format.open(file)
    try:
        entities = (
            {kind.value: storage.count_rows(kind) for kind in EntityType} if isinstance(storage, EntityStorage) else {}
        )
    finally:
        storage.close()
    figures: dict[str, Any] = {
        'format': metadata.format,
        'version': metadata.version,
        'metadata': dict(metadata.details),
        'entities': entities,
    }
    if as_json:
        echo_json(figures)
        return
    echo_fields(
        {
            'format': metadata.format,
            'version': metadata.version,
            'key_format': metadata.key_format,
            'entities': entities,
        }
    )


def _pk(node: Any) -> int:
    pk = node.pk
    assert isinstance(pk, int)  # NOTE: load_node returns stored nodes only
    return pk
