"""``provstore profile`` and ``provstore quickstart``: create, list, show, choose and delete profiles."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from provstore.cli.output import echo_fields, echo_json, echo_table
from provstore.config import Config, Profile, edit_config, load_config
from provstore.exceptions import ConfigError
from provstore.manager import checked_profile, get_storage_class
from provstore.options import Option, mask_secrets
from provstore.profile_access import LOCK_FILE_NAME, ProfileAccess
from provstore.registry import Kind, get_registry

__all__ = ['profile', 'quickstart']

EMBEDDED_DEFAULT = 'sqlite_dos'
"""The storage backend ``quickstart`` uses: one SQLite file, no server."""

EMAIL_KEY = 'default_user_email'
"""The key of ``profile set`` that changes the email of the profile's default user."""

_CLICK_TYPES: Mapping[type, Any] = {str: click.STRING, int: click.INT, float: click.FLOAT, dict: click.STRING}


class BackendOptionsCommand(click.Command):
    """A command that also takes the options every installed storage backend declares, built at run time.

    The options are read from the registry only when the command is parsed or its help is shown, so building
    the CLI loads no plugin.
    """

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return [*params[:-1], *self.backend_params(), params[-1]]

    def backend_params(self) -> list[click.Option]:
        """One click option per distinct option name across the installed storage backends."""
        declared: dict[str, tuple[Option, list[str]]] = {}
        for backend, option in _declared_options():
            declared.setdefault(option.name, (option, []))[1].append(backend)
        params = []
        for name, (option, backends) in sorted(declared.items()):
            flag = f'{option.flag}/--no-{option.flag[2:]}' if option.type is bool else option.flag
            params.append(
                click.Option(
                    [flag, name],
                    type=None if option.type is bool else _CLICK_TYPES[option.type],
                    default=None,
                    help=f'{option.help} [{", ".join(backends)}]'.strip(),
                    show_default=False,
                )
            )
        return params

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own = [param for param in super().get_params(ctx) if isinstance(param, click.Option)]
        with formatter.section('Options'):
            formatter.write_dl([record for param in own if (record := param.get_help_record(ctx))])
        classes = {name: get_registry().get_storage_backend(name) for name in get_registry().list_names(Kind.STORAGE)}
        if not classes:
            formatter.write_paragraph()
            formatter.write_text('No storage backend is installed: `provstore plugins list` shows what is.')
        for name, storage_class in classes.items():
            summary = (storage_class.__doc__ or '').strip().split('\n', 1)[0]
            with formatter.section(f'Options of storage backend {name!r} ({summary})'):
                formatter.write_dl([_option_help(option) for option in storage_class.options] or [('-', 'none')])


def _declared_options() -> list[tuple[str, Option]]:
    registry = get_registry()
    return [
        (name, option)
        for name in registry.list_names(Kind.STORAGE)
        for option in registry.get_storage_backend(name).options
    ]


def _option_help(option: Option) -> tuple[str, str]:
    metavar = '' if option.type is bool else f' {option.type.__name__.upper()}'
    flag = f'{option.flag}/--no-{option.flag[2:]}' if option.type is bool else option.flag
    default = 'required' if option.required else f'default: {option.default!r}'
    secret = ', secret' if option.secret else ''
    return f'{flag}{metavar}', f'{option.help} [{default}{secret}]'


@click.group()
def profile() -> None:
    """Create, list, show, choose and delete profiles (named storages in the config file)."""


@profile.command('setup', cls=BackendOptionsCommand)
@click.argument('name')
@click.option('-b', '--backend', required=True, help='Storage backend of the profile (see `provstore plugins list`).')
@click.option(
    '--email',
    help='Email of the default user of the profile: asked for on a terminal, else <login>@localhost.',
)
@click.option('--set-default', is_flag=True, help='Make it the default profile (the first profile always is).')
def setup(name: str, backend: str, email: str | None, set_default: bool, **backend_options: Any) -> None:
    """Create the profile NAME on storage backend BACKEND, and initialise its storage.

    Backend options not given take the backend's defaults. Without --email, the email of the default user (the
    author of what is stored) is asked for when standard input is a terminal, and is <login>@localhost otherwise;
    `provstore profile set NAME default_user_email EMAIL` changes it later. Nothing is left behind when the
    storage cannot be initialised: no config entry, no profile folder.
    """
    given = {key: value for key, value in backend_options.items() if value is not None}
    if email is None:
        email = default_email()
        if sys.stdin.isatty():
            email = click.prompt('Email of the default user', default=email)
    profile = create_profile(name, backend, given, email=email, set_default=set_default)
    click.echo(f'Created profile {profile.name!r} on {backend} in {profile.folder}')


def default_email() -> str:
    """Return the email a profile's default user gets when none is given: ``<login>@localhost``."""
    return f'{getpass.getuser()}@localhost'


def create_profile(
    name: str, backend: str, given: dict[str, Any], email: str | None = None, set_default: bool = False
) -> Profile:
    """Validate, initialise the storage of, and save a new profile; the config is untouched on failure."""
    storage_class = get_registry().get_storage_backend(backend)
    foreign = sorted(set(given) - {option.name for option in storage_class.options})
    if foreign:
        flags = ', '.join('--' + key.replace('_', '-') for key in foreign)
        raise click.UsageError(f'{flags} do(es) not apply to storage backend {backend!r}')
    storage_config = storage_class.validate_config(given, f'profile {name!r}')
    with edit_config() as config:
        created = config.add_profile(
            Profile(name=name, storage_backend=backend, storage_config=storage_config, default_user_email=email),
            set_default=set_default,
        )
        made = _missing_paths(created.folder)
        try:
            with ProfileAccess.for_folder(created.folder).exclusive():
                try:
                    storage_class.initialise(created)
                except BaseException:
                    storage_class.erase(created)
                    raise
        except BaseException:
            _remove_made(made, created.folder)
            raise
    return created


def _missing_paths(folder: Path) -> list[Path]:
    """Return what setting up a profile in ``folder`` may create and does not exist yet, innermost first.

    That is the lock file, the profile folder and the ``profiles`` folder above it.
    """
    return [path for path in (folder / LOCK_FILE_NAME, folder, folder.parent) if not path.exists()]


def _remove_made(made: list[Path], folder: Path) -> None:
    """Remove what a failed setup of the profile in ``folder`` created (``made``, from :func:`_missing_paths`).

    A profile folder made by the setup goes with everything in it; the ``profiles`` folder only when empty.
    NOTE: the lock file can go: the profile never reached the config file, so no other process holds it.
    """
    for path in made:
        if path == folder:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)


@profile.command('list')
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list instead of a table.')
def list_profiles(as_json: bool) -> None:
    """List the profiles; the default one is marked with '*'.

    The JSON form is a list of objects with the keys name, default (true/false), storage_backend, uuid and
    folder.
    """
    config = load_config()
    rows = [_summary(config, config.profiles[name]) for name in sorted(config.profiles)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f'No profiles in {config.path}; create one with `provstore quickstart`.')
        return
    table = [('*' if row['default'] else '', row['name'], row['storage_backend'], row['folder']) for row in rows]
    echo_table(('', 'NAME', 'BACKEND', 'FOLDER'), table)


@profile.command('show')
@click.argument('name', required=False)
@click.option('--json', 'as_json', is_flag=True, help='Print JSON instead of text.')
@click.pass_context
def show(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Show the profile NAME (default: the one chosen with -p, else the default profile). Secrets are masked."""
    config = load_config()
    selected = config.get_profile(name or ctx.find_root().params.get('profile_name'))
    options: tuple[Option, ...] = ()
    try:
        options = get_storage_class(selected).options
    except ConfigError:
        pass  # the backend is not installed: still show the profile, masking secrets by their names
    data = {
        **_summary(config, selected),
        'storage_config': mask_secrets(options, selected.storage_config),
        'default_user_email': selected.default_user_email,
        'options': mask_secrets((), selected.options),
    }
    if as_json:
        echo_json(data)
        return
    echo_fields(data)


@profile.command('set')
@click.argument('name')
@click.argument('key')
@click.argument('value')
def set_option(name: str, key: str, value: str) -> None:
    """Set KEY of the profile NAME to VALUE, checked first; the config file is rewritten atomically.

    KEY is default_user_email (the author of what is stored) or an option of the profile's storage backend (see
    `provstore profile setup --help`), e.g. `provstore profile set work database_port 5433`. VALUE is converted
    to the option's type (JSON for an object). Changing where the storage is does not move its data.
    """
    with edit_config() as config:
        selected = config.get_profile(name)
        config.profiles[name] = _with_value(selected, key, value)
    shown = mask_secrets(get_storage_class(selected).options, {key: value})[key]
    click.echo(f'Profile {name!r}: {key} = {shown}')


def _with_value(selected: Profile, key: str, value: str) -> Profile:
    """Return ``selected`` with ``key`` set to ``value``, validated as the profile's backend declares it.

    :raises ConfigError: naming the key and the profile, for an unknown key or a value that does not suit it.
    """
    where = f'profile {selected.name!r}'
    if key == EMAIL_KEY:
        from provstore.orm.users import normalize_email  # noqa: PLC0415 - the ORM only for this key

        try:
            return dataclasses.replace(selected, default_user_email=normalize_email(value))
        except ValueError as exc:
            raise ConfigError(f'{where}: {key}: {exc}') from None
    storage_class = get_storage_class(selected)
    declared = {option.name for option in storage_class.options}
    if key not in declared:
        known = ', '.join([EMAIL_KEY, *sorted(declared)])
        raise ConfigError(f'{where}: unknown key {key!r} for storage backend {storage_class.name!r}; keys: {known}')
    config = storage_class.validate_config({**selected.storage_config, key: value}, where)
    return dataclasses.replace(selected, storage_config=config)


@profile.command('set-default')
@click.argument('name')
def set_default(name: str) -> None:
    """Make NAME the default profile."""
    with edit_config() as config:
        config.set_default_profile(name)
    click.echo(f'Default profile: {name}')


@profile.command('delete')
@click.argument('name')
@click.option('--keep-data', is_flag=True, help='Remove the profile from the config but keep its storage.')
@click.option('-y', '--yes', is_flag=True, help='Do not ask for confirmation.')
@click.option('--timeout', type=float, default=0.0, show_default=True, help='Seconds to wait for users to let go.')
def delete(name: str, keep_data: bool, yes: bool, timeout: float) -> None:
    """Delete the profile NAME and, unless --keep-data, all its data.

    Refused while another process uses the profile. The data goes first: if erasing fails, the profile stays
    in the config so the command can be run again.
    """
    selected = load_config().get_profile(name)
    what = 'the profile' if keep_data else 'the profile AND ALL ITS DATA'
    if not yes:
        click.confirm(f'Delete {what} {name!r}?', abort=True)
    if not keep_data:
        storage_class = get_storage_class(selected)
        with ProfileAccess.for_folder(selected.folder).exclusive(timeout):
            storage_class.erase(checked_profile(selected))
    with edit_config() as config:
        config.remove_profile(name)
    if not keep_data:
        shutil.rmtree(selected.folder, ignore_errors=True)
    click.echo(f'Deleted profile {name!r}' + (f'; its data is kept in {selected.folder}' if keep_data else ''))


@click.command()
@click.option('--name', default='default', show_default=True, help='Name of the profile to create.')
@click.option('-b', '--backend', default=EMBEDDED_DEFAULT, show_default=True, help='Storage backend.')
@click.option('--email', help='Email of the default user (default: <login>@localhost).')
def quickstart(name: str, backend: str, email: str | None) -> None:
    """Create a default profile on the embedded storage, with no questions, and say where it lives.

    Does nothing if a profile called NAME exists already.
    """
    config = load_config()
    if name in config.profiles:
        click.echo(f'Profile {name!r} exists already in {config.path}; nothing to do.')
        return
    created = create_profile(name, backend, {}, email=email or default_email(), set_default=True)
    click.echo(f'Created profile {created.name!r} on {backend}, the default profile.')
    click.echo(f'  config file: {config.path}')
    click.echo(f'  data:        {created.folder}')


def _summary(config: Config, selected: Profile) -> dict[str, Any]:
    return {
        'name': selected.name,
        'default': config.default_profile == selected.name,
        'storage_backend': selected.storage_backend,
        'uuid': selected.uuid,
        'folder': str(selected.folder),
    }
