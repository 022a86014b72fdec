"""What a new user and a new plugin author tripped over (issue 9, item 4), each shown gone, on the test backend.

The same stumbles on the real backends (``sqlite_dos`` and ``psql_dos``) are in ``tests/orm/test_new_user_backends.py``.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from click.testing import CliRunner, Result
from core_helpers import archive_plugin

from provstore.cli import cli
from provstore.cli.storage import report_lines
from provstore.config import CONFIG_FILENAME, load_config
from provstore.options import SECRET_MASK
from provstore.registry import PluginRegistry, RegistrySettings, using_registry
from provstore.repository import AbstractRepositoryBackend, MaintenanceReport
from provstore.testing import JsonStorageBackend


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args), input=input)


def one_error_line(result: Result) -> str:
    """Check that ``result`` failed with exit code 1 and one ``Error:`` line, and return that line."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith('Error: ')
    return lines[0]


@pytest.fixture
def backend(test_storage_backend: type[JsonStorageBackend]) -> str:
    """The name of the test storage backend, registered for the test."""
    return test_storage_backend.name


def test_setup_without_email_defaults_it_as_quickstart_does(backend: str) -> None:
    """``profile setup`` with no --email and no terminal gives the default user ``<login>@localhost``."""
    result = invoke('profile', 'setup', 'p', '--backend', backend)
    assert result.exit_code == 0, result.output
    assert load_config().get_profile('p').default_user_email == f'{getpass.getuser()}@localhost'


def test_profile_set_email_and_option(backend: str) -> None:
    """``profile set`` changes the email and a declared option of the backend, converted and kept in the file."""
    invoke('profile', 'setup', 'p', '--backend', backend, '--email', 'old@example.org')
    uuid = load_config().get_profile('p').uuid
    result = invoke('profile', 'set', 'p', 'default_user_email', ' Me@Example.ORG ')
    assert result.exit_code == 0, result.output
    assert "Profile 'p': default_user_email = " in result.output
    secret = invoke('profile', 'set', 'p', 'password', 'hunter2-secret')
    assert secret.exit_code == 0, secret.output
    assert 'hunter2-secret' not in secret.output
    assert SECRET_MASK in secret.output
    profile = load_config().get_profile('p')
    assert profile.default_user_email == 'Me@example.org'
    assert profile.storage_config['password'] == 'hunter2-secret'
    assert profile.uuid == uuid


def test_profile_set_refuses_bad_keys_and_values_and_writes_nothing(backend: str, config_folder: Path) -> None:
    """An unknown key, a bad email, an unknown profile: one error line each, exit 1, the file unchanged."""
    invoke('profile', 'setup', 'p', '--backend', backend)
    before = (config_folder / CONFIG_FILENAME).read_bytes()
    unknown = one_error_line(invoke('profile', 'set', 'p', 'colour', 'blue'))
    assert "unknown key 'colour'" in unknown
    assert 'keys: default_user_email, filepath, password' in unknown
    assert 'must be a non-empty string' in one_error_line(invoke('profile', 'set', 'p', 'default_user_email', ' '))
    assert "No profile named 'q'" in one_error_line(invoke('profile', 'set', 'q', 'default_user_email', 'a@b'))
    assert (config_folder / CONFIG_FILENAME).read_bytes() == before


def test_profile_set_help() -> None:
    """``profile set --help`` says what KEY may be."""
    result = invoke('profile', 'set', '--help')
    assert result.exit_code == 0
    assert 'Usage: cli profile set [OPTIONS] NAME KEY VALUE' in result.output
    assert 'default_user_email' in result.output


def test_failed_setup_leaves_nothing_behind(backend: str, config_folder: Path, tmp_path: Path) -> None:
    """A setup whose storage cannot be initialised leaves no config entry, no profile folder and no lock file."""
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a folder')
    result = invoke('profile', 'setup', 'p', '--backend', backend, '--filepath', str(blocker / 'storage.json'))
    assert result.exit_code == 1, result.output
    assert not (config_folder / 'profiles').exists()
    assert load_config().profiles == {}


def test_figures_print_as_an_indented_table() -> None:
    """``storage info`` prints nested figures as an indented two-column table, never a Python dict."""
    from provstore.cli.output import echo_fields

    runner = CliRunner()
    figures = {
        'backend': 'x',
        'database': {'filepath': '/data/db', 'size': None, 'name': ''},
        'tags': ['a', 'b'],
        'empty': {},
    }
    with runner.isolation() as (out, _, _):
        echo_fields(figures)
    text = out.getvalue().decode()
    assert text.splitlines() == [
        'backend     x',
        'database',
        '  filepath  /data/db',
        '  size      -',
        '  name      -',
        'tags        a, b',
        'empty       -',
    ]


def test_storage_info_command(backend: str) -> None:
    """On a real profile the text form has no braces and the JSON form parses."""
    invoke('profile', 'setup', 'p', '--backend', backend)
    text = invoke('storage', 'info')
    assert text.exit_code == 0, text.output
    assert '{' not in text.output
    assert text.output.split()[:2] == ['backend', backend]
    assert json.loads(invoke('storage', 'info', '--json').output)['backend'] == backend


@pytest.mark.parametrize(
    ('steps', 'dry_run', 'expected'),
    [
        ((), True, ['nothing to do']),
        ((), False, ['nothing to do']),
        (('Would pack 3 loose objects',), True, ['Would pack 3 loose objects']),
        (('would pack 3 loose objects',), True, ['would pack 3 loose objects']),
        (('Pack 3 loose objects',), True, ['would pack 3 loose objects']),
        (('VACUUM the index',), True, ['would VACUUM the index']),
        (('Nothing to do in live maintenance',), True, ['Nothing to do in live maintenance']),
        (('Packed 3 loose objects',), False, ['Packed 3 loose objects']),
    ],
)
def test_maintenance_report_wording(steps: tuple[str, ...], dry_run: bool, expected: list[str]) -> None:
    """A dry run reads "would ..." exactly once, whatever the case of the backend's step; no "would nothing"."""
    assert report_lines(MaintenanceReport(dry_run=dry_run, live=True, steps=steps)) == expected


def test_maintain_dry_run_with_nothing_to_do(backend: str) -> None:
    """``storage maintain --dry-run`` on a storage with nothing to do says so, without "would"."""
    invoke('profile', 'setup', 'p', '--backend', backend)
    result = invoke('storage', 'maintain', '--dry-run')
    assert result.exit_code == 0, result.output
    assert 'would nothing' not in result.output
    assert 'would would' not in result.output.lower()


def test_query_help_shows_file_optional() -> None:
    """``query --help`` shows FILE as optional: standard input is read without it."""
    usage = invoke('query', '--help').output.splitlines()[0]
    assert usage.endswith('[OPTIONS] [FILE]')


def test_plugins_list_kind_article() -> None:
    """``plugins list --kind archive`` with no archive format installed says "an archive format"."""
    with using_registry(PluginRegistry(entry_points_group=None)):
        result = invoke('plugins', 'list', '--kind', 'archive')
    assert result.output.strip() == 'No plugin provides an archive format.'


def test_undotted_third_party_names_are_warned_about(
    fake_site: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """A third-party plugin naming a backend without a dotted prefix gets one WARNING; it still loads.

    First-party distributions (``provstore-<name>``) and dotted third-party names get none.
    """
    fake_site('acme-formats', archive_plugin('zipped'), entry_point='acme')
    fake_site('acme-dotted', archive_plugin('acme.tar'), entry_point='acmedotted')
    fake_site('provstore-extra', archive_plugin('extra'), entry_point='extra')
    with caplog.at_level(logging.WARNING, logger='provstore.registry'):
        registry = PluginRegistry(RegistrySettings(strict=True))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "provstore: plugin 'acme' (distribution acme-formats) provides archive format 'zipped' without a dotted "
        "prefix; third-party names read <prefix>.<name> (like 'acme.zipped') so that they never clash with "
        "provstore's own"
    ]
    assert registry.get_archive_format('zipped').name == 'zipped'
    assert registry.get_archive_format('extra').name == 'extra'


def test_package_docstring_points_to_the_registry() -> None:
    """The package docstring names a function that exists: ``provstore.registry.get_registry``."""
    import provstore
    import provstore.registry

    assert ':func:`provstore.registry.get_registry`' in (provstore.__doc__ or '')
    assert callable(provstore.registry.get_registry)


REPOSITORY = Path(__file__).resolve().parents[2]

MACHINE_PATH = re.compile(r'(?<![\w.])/(?:work|root|home)/')
"""A path of one particular machine (``/work/...``, ``/root/...``, ``/home/...``)."""


def test_no_machine_paths_in_the_repository() -> None:
    """No source, documentation or setting names a folder of one machine (benchmark results' records excepted)."""
    listed = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    suffixes = ('.py', '.md', '.toml', '.ini', '.cfg', '.txt', '.sh')
    checked = [
        name
        for name in listed
        if (name.endswith(suffixes) or name == '.ci/run') and not name.startswith('benchmarks/results/')
    ]
    assert 'benchmarks/run.py' in checked
    found = [
        f'{name}:{number}: {line.strip()}'
        for name in checked
        if (REPOSITORY / name).is_file()
        for number, line in enumerate((REPOSITORY / name).read_text(encoding='utf-8').splitlines(), 1)
        if MACHINE_PATH.search(line) and name != 'tests/core/test_new_user.py'
    ]
    assert found == []


def test_benchmark_reference_needs_an_interpreter_named(tmp_path: Path) -> None:
    """``run.py --reference`` without --aiida-python or $PROVSTORE_BENCH_AIIDA_PYTHON is a clear usage error."""
    environment = {key: value for key, value in os.environ.items() if key != 'PROVSTORE_BENCH_AIIDA_PYTHON'}
    command = [sys.executable, str(REPOSITORY / 'benchmarks' / 'run.py'), '--reference', '--steps', 'W1']
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=120)
    assert result.returncode == 2
    assert 'give --aiida-python PATH or set $PROVSTORE_BENCH_AIIDA_PYTHON' in result.stderr.splitlines()[-1]


class _FolderBackend(AbstractRepositoryBackend):
    """A repository backend that only remembers its location, called ``filepath`` as storage backends fill it in."""

    name = 'test.folder'
    uuid = None
    key_format = None
    is_initialised = False

    def __init__(self, filepath: str) -> None:
        self.filepath = filepath

    def initialise(self, **kwargs: Any) -> None:
        raise NotImplementedError

    def erase(self) -> None:
        raise NotImplementedError

    def _put_object_from_filelike(self, handle: BinaryIO) -> str:
        raise NotImplementedError

    def has_objects(self, keys: Sequence[str]) -> list[bool]:
        raise NotImplementedError

    def list_objects(self) -> Iterator[str]:
        raise NotImplementedError

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        raise NotImplementedError

    def _delete_objects(self, keys: list[str]) -> None:
        raise NotImplementedError

    def maintain(self, dry_run: bool = False, live: bool = True, **kwargs: Any) -> MaintenanceReport:
        raise NotImplementedError


def test_repository_from_options_fills_in_filepath(tmp_path: Path) -> None:
    """``from_options`` gives the location as ``filepath`` when the options do not; the options win when they do."""
    made = _FolderBackend.from_options({}, tmp_path / 'repo')
    assert made.filepath == str(tmp_path / 'repo')
    given = _FolderBackend.from_options({'filepath': str(tmp_path / 'other')}, tmp_path / 'repo')
    assert given.filepath == str(tmp_path / 'other')


def test_repository_with_another_location_name_fails_clearly(tmp_path: Path) -> None:
    """A constructor that calls its location ``path`` fails in one line that says to call it ``filepath``."""

    class PathBackend(_FolderBackend):
        """A backend written before reading the docs."""

        name = 'test.path'

        def __init__(self, path: str) -> None:
            super().__init__(filepath=path)

    with pytest.raises(TypeError) as info:
        PathBackend.from_options({}, tmp_path / 'repo')
    assert str(info.value) == (
        "repository backend 'test.path' (test_repository_with_another_location_name_fails_clearly.<locals>."
        "PathBackend) needs path, which nothing gives; a storage backend fills in only 'filepath' (the repository's "
        "folder or file): name the constructor parameter 'filepath', or give path in the repository options"
    )
    assert PathBackend.from_options({'path': str(tmp_path / 'repo')}).filepath == str(tmp_path / 'repo')


def test_documents_named_by_the_top_level_files_exist() -> None:
    """Every ``*.md`` that README, CONTRIBUTING, tox.ini, pyproject.toml and the architecture page name is in the
    repository (they once pointed to a DESIGN.md that was not)."""
    sources = ['README.md', 'CONTRIBUTING.md', 'tox.ini', 'pyproject.toml', 'docs/architecture.md']
    named = {
        (source, document)
        for source in sources
        for document in re.findall(r'[\w./-]+\.md\b', (REPOSITORY / source).read_text(encoding='utf-8'))
    }
    assert ('README.md', 'docs/architecture.md') in named
    assert ('CONTRIBUTING.md', 'docs/architecture.md') in named
    assert [(source, document) for source, document in sorted(named) if not (REPOSITORY / document).is_file()] == []


def test_tox_default_run_uses_the_interpreter_at_hand() -> None:
    """tox's default envs test the Python tox runs on and name its version; py310-py313 stay one option away;
    lint-imports runs without its deprecated --config."""
    import configparser

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPOSITORY / 'tox.ini', encoding='utf-8')
    env_list = [env.strip() for env in tox['tox']['env_list'].split(',')]
    assert env_list[0] == 'py'
    assert not [env for env in env_list if env.startswith('py3')]
    assert tox['tox']['labels'].split('=')[1].split(',') == [' py310', ' py311', ' py312', ' py313']
    assert tox['tox']['skip_missing_interpreters'] == 'false'
    assert 'platform.python_version()' in tox['testenv']['commands']
    assert not any('base_python' in tox[section] for section in tox.sections() if section.startswith('testenv:'))
    assert '--config' not in tox['testenv:lint']['commands']
    assert 'lint-imports' in tox['testenv:lint']['commands']
