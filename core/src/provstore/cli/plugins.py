"""``provstore plugins``: what is installed, what loaded and what failed."""

from __future__ import annotations

import sys

import click

from provstore.cli.output import echo_json, echo_table
from provstore.registry import Kind, PluginRecord, PluginStatus, get_registry

__all__ = ['plugins']

KIND_CHOICE = click.Choice([kind.value for kind in Kind])


@click.group()
def plugins() -> None:
    """Inspect the installed plugins (entry-point group ``provstore``)."""


@plugins.command('list')
@click.option('-k', '--kind', type=KIND_CHOICE, help='Show only plugins that provide this kind (and broken ones).')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list of plugin records instead of a table.')
def list_plugins(kind: str | None, as_json: bool) -> None:
    """List every plugin, including those that failed to load, and what each provides.

    Always exits 0, even when plugins are broken: it is the command to run when something is wrong.
    The JSON form is a list of objects with the keys name, distribution, version, value, status
    (loaded, failed, blocked, duplicate), hooks, provides ({storage, repository, archive: [names]})
    and error (null, or {stage, type, message}).
    """
    selected = Kind(kind) if kind else None
    records = [record for record in get_registry().plugins if _matches(record, selected)]
    if as_json:
        echo_json([record.as_json() for record in records])
        return
    if not records:
        click.echo('No plugins installed.' if selected is None else f'No plugin provides {_a(selected.label)}.')
        return
    rows = [
        (record.name, record.distribution, record.version, record.status.value, _provides(record, selected))
        for record in records
    ]
    echo_table(('NAME', 'DISTRIBUTION', 'VERSION', 'STATUS', 'PROVIDES'), rows)


@plugins.command('check')
def check_plugins() -> None:
    """Exit 1 when any plugin failed to load or is a duplicate, printing why; exit 0 otherwise."""
    records = get_registry().plugins
    broken = [record for record in records if record.status in (PluginStatus.FAILED, PluginStatus.DUPLICATE)]
    for record in broken:
        click.echo(f'{record.origin} {record.status.value}: {record.error}', err=True)
    if broken:
        sys.exit(1)
    loaded = sum(record.status is PluginStatus.LOADED for record in records)
    click.echo(f'All plugins are healthy: {loaded} loaded, {len(records) - loaded} blocked.')


@plugins.command('show')
@click.argument('name')
@click.option('--json', 'as_json', is_flag=True, help='Print the plugin record as JSON.')
def show_plugin(name: str, as_json: bool) -> None:
    """Show everything known about the plugin NAME: origin, status, hooks, what it provides, its error."""
    registry = get_registry()
    record = registry.get_plugin(name)
    if as_json:
        echo_json(record.as_json())
        return
    click.echo(f'Plugin:        {record.name}')
    click.echo(f'Distribution:  {record.distribution} {record.version}'.rstrip())
    click.echo(f'Entry point:   {record.value}')
    click.echo(f'Status:        {record.status.value}')
    click.echo(f'Hooks:         {", ".join(record.hooks) or "-"}')
    if record.error is not None:
        click.echo(f'Error:         {record.error}')
    for kind in Kind:
        for item in record.provides.get(kind, ()):
            summary = _summary(registry.get(kind, item).__doc__)
            click.echo(f'Provides:      {kind.label} {item!r}: {summary}'.rstrip())


def _matches(record: PluginRecord, kind: Kind | None) -> bool:
    return kind is None or record.status is not PluginStatus.LOADED or bool(record.provides.get(kind))


def _provides(record: PluginRecord, kind: Kind | None) -> str:
    if record.error is not None:
        return f'({record.error})'
    kinds = [kind] if kind else list(Kind)
    return ', '.join(f'{k.value}:{name}' for k in kinds for name in record.provides.get(k, ())) or '-'


def _a(noun: str) -> str:
    """``archive format`` -> ``an archive format``; ``storage backend`` -> ``a storage backend``."""
    return f'{"an" if noun[:1] in "aeiou" else "a"} {noun}'


def _summary(docstring: str | None) -> str:
    return (docstring or '').strip().split('\n', 1)[0]
