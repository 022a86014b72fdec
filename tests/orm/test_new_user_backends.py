"""What a new user tripped over (issue 9, item 4), shown gone on both real backends, through the real CLI.

A profile made by ``profile setup`` without ``--email`` stores nodes; ``profile set`` gives a profile without an email
one; a failed setup leaves nothing behind; ``storage info`` is a table; a dry run of maintenance reads well.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from orm_helpers import BACKENDS
from postgres_test_server import drop_database

from provstore.cli import cli
from provstore.cli.profile import create_profile
from provstore.config import load_config
from provstore.exceptions import ConfigError
from provstore.manager import get_manager
from provstore.orm import Int


def invoke(*args: str) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(params=BACKENDS)
def setup_flags(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(backend, flags)`` for ``profile setup`` on each real backend (a database of its own on PostgreSQL)."""
    backend: str = request.param
    if backend == 'sqlite_dos':
        yield backend, []
        return
    options = request.getfixturevalue('postgres_server')
    database = f'provstore_newuser_{uuid.uuid4().hex[:16]}'
    flags = [
        f'--database-hostname={options["database_hostname"]}',
        f'--database-port={options["database_port"]}',
        f'--database-username={options["database_username"]}',
        f'--database-name={database}',
    ]
    try:
        yield backend, flags
    finally:
        get_manager().unload_profile()
        drop_database(database)


def test_setup_without_email_stores_nodes(setup_flags: tuple[str, list[str]]) -> None:
    """``profile setup`` with no --email (no terminal) gives ``<login>@localhost``, and storing works at once."""
    backend, flags = setup_flags
    result = invoke('profile', 'setup', 'work', '--backend', backend, *flags)
    assert result.exit_code == 0, result.output
    get_manager().load_profile('work')
    node = Int(5).store()
    assert node.user.email == f'{getpass.getuser()}@localhost'


def test_profile_set_gives_a_profile_its_email(setup_flags: tuple[str, list[str]]) -> None:
    """A profile without an email says which command fixes it; after ``profile set`` nodes are stored."""
    backend, flags = setup_flags
    given = {flag[2:].split('=')[0].replace('-', '_'): flag.split('=', 1)[1] for flag in flags}
    create_profile('old', backend, given, email=None)
    get_manager().load_profile('old')
    with pytest.raises(ConfigError, match=r'provstore profile set old default_user_email EMAIL'):
        Int(1).store()
    get_manager().unload_profile()
    result = invoke('profile', 'set', 'old', 'default_user_email', 'me@example.org')
    assert result.exit_code == 0, result.output
    get_manager().load_profile('old')
    assert Int(2).store().user.email == 'me@example.org'


def test_profile_set_validates_backend_options(setup_flags: tuple[str, list[str]]) -> None:
    """``profile set`` converts a backend option to its declared type and refuses a value that does not suit it."""
    backend, flags = setup_flags
    assert invoke('profile', 'setup', 'p', '--backend', backend, *flags).exit_code == 0
    key, good, bad = ('database_port', '5433', 'abc') if backend == 'psql_dos' else ('repository_options', '{}', '[1]')
    before = load_config().get_profile('p').storage_config
    refused = invoke('profile', 'set', 'p', key, bad)
    assert refused.exit_code == 1
    assert refused.output.startswith(f"Error: profile 'p': option '{key}' must be")
    assert load_config().get_profile('p').storage_config == before
    assert invoke('profile', 'set', 'p', key, good).exit_code == 0
    assert load_config().get_profile('p').storage_config[key] == json.loads(good)


@pytest.mark.parametrize('backend', BACKENDS)
def test_failed_setup_leaves_nothing_behind(backend: str, config_folder: Path, tmp_path: Path) -> None:
    """A setup that cannot initialise its storage (PostgreSQL at a closed port; SQLite under a file) leaves no
    config entry, no profile folder and no ``access.lock``."""
    if backend == 'psql_dos':
        flags = ['--database-hostname=127.0.0.1', '--database-port=1']
    else:
        blocker = tmp_path / 'a-file'
        blocker.write_text('not a folder')
        flags = [f'--filepath={blocker / "storage"}']
    result = invoke('profile', 'setup', 'broken', '--backend', backend, *flags)
    assert result.exit_code == 1, result.output
    assert result.output.startswith('Error: ')
    assert sorted(path.name for path in config_folder.iterdir()) == ['config.json.lock']
    assert load_config().profiles == {}


def test_storage_info_table_and_maintain_dry_run(setup_flags: tuple[str, list[str]]) -> None:
    """``storage info`` prints a table (no Python dict), ``--json`` the figures; a dry run reads "would ..." once."""
    backend, flags = setup_flags
    assert invoke('profile', 'setup', 'p', '--backend', backend, *flags).exit_code == 0
    get_manager().load_profile('p')
    Int(1).store()
    get_manager().unload_profile()
    text = invoke('storage', 'info')
    assert text.exit_code == 0, text.output
    assert '{' not in text.output
    assert "'" not in text.output
    rows = dict(line.split(None, 1) for line in text.output.splitlines() if len(line.split(None, 1)) == 2)
    assert rows['backend'] == backend
    assert rows['nodes'] == '1'
    figures = json.loads(invoke('storage', 'info', '--json').output)
    assert figures['entities']['nodes'] == 1
    for args in (['--dry-run'], ['--dry-run', '--full']):
        dry = invoke('storage', 'maintain', *args)
        assert dry.exit_code == 0, dry.output
        assert 'would nothing' not in dry.output
        assert all(line.lower().count('would') <= 1 for line in dry.output.splitlines())


def test_setup_on_a_terminal_asks_for_the_email(config_folder: Path) -> None:
    """On a terminal, ``profile setup`` without --email asks for it (offering ``<login>@localhost``) and keeps it."""
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, '-m', 'provstore.cli', 'profile', 'setup', 'asked', '--backend', 'sqlite_dos'],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.write(leader, b'asked@example.org\n')
        output, _ = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode == 0, output
    assert f'Email of the default user [{getpass.getuser()}@localhost]: ' in output
    assert load_config().get_profile('asked').default_user_email == 'asked@example.org'
