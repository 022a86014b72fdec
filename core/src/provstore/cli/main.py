"""The root ``provstore`` command: global options, error handling and the command groups."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from provstore import __version__
from provstore.cli.archive import archive
from provstore.cli.computer import computer
from provstore.cli.graph import graph
from provstore.cli.group import group
from provstore.cli.node import node
from provstore.cli.node_values import attributes, comment, extras
from provstore.cli.plugins import plugins
from provstore.cli.profile import profile, quickstart
from provstore.cli.query import query
from provstore.cli.storage import storage
from provstore.cli.user import user
from provstore.exceptions import ProvstoreError

__all__ = ['cli', 'main']

CONTEXT_SETTINGS = {'help_option_names': ['-h', '--help'], 'max_content_width': 120}


class ProvstoreGroup(click.Group):
    """A click group that turns provstore errors into one clear line and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ProvstoreError, OSError, ValueError) as exc:
            if ctx.find_root().params.get('verbose'):
                traceback.print_exc()
            click.echo(f'Error: {" ".join(str(exc).split())}', err=True)
            sys.exit(1)


@click.group(cls=ProvstoreGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, '-V', '--version', prog_name='provstore')
@click.option(
    '-p',
    '--profile',
    'profile_name',
    metavar='NAME',
    help='Profile to use (default: $PROVSTORE_PROFILE, else the default).',
)
@click.option(
    '--archive',
    'archive_file',
    metavar='FILE',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Read the archive FILE in place, read-only, instead of a profile (no configuration is written).',
)
@click.option('-v', '--verbose', is_flag=True, help='Print the full traceback of an error.')
def cli(profile_name: str | None, archive_file: Path | None, verbose: bool) -> None:
    """provstore: keep the provenance of computational work, in storage chosen by plugins."""
    if profile_name is not None and archive_file is not None:
        raise click.UsageError('-p/--profile and --archive exclude each other: give one of them')


cli.add_command(archive)
cli.add_command(computer)
cli.add_command(group)
cli.add_command(node)
node.add_command(attributes)
node.add_command(extras)
node.add_command(comment)
node.add_command(graph)
cli.add_command(plugins)
cli.add_command(profile)
cli.add_command(query)
cli.add_command(quickstart)
cli.add_command(storage)
cli.add_command(user)


def main() -> None:
    """Run the command line (the ``provstore`` console script)."""
    logging.basicConfig(format='%(levelname)s: %(message)s')
    cli(prog_name='provstore')
