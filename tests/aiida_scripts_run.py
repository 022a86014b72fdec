"""Run the scripts of ``examples/aiida_scripts`` as their users would: with provstore, and with aiida-core.

Each script is written for aiida-core; the lines that import from provstore carry their aiida-core form in a comment
(``# aiida-core: from aiida.orm import ...``), and those are the only lines that differ. A script runs in a process
of its own on a fresh profile of its own (the default one), and what it prints must equal the ``.out`` file beside
it, with provstore on every backend and with aiida-core alike.

aiida-core is found in this interpreter, else in the one ``$PROVSTORE_AIIDA_PYTHON`` names. Without either, the
comparison is skipped with a reason in capitals, except in the ``aiida-interop`` env (``PROVSTORE_AIIDA_INTEROP=1``),
which installs aiida-core and where its absence is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS_FOLDER = Path(__file__).resolve().parents[1] / 'examples' / 'aiida_scripts'
SCRIPTS = sorted(path.name for path in SCRIPTS_FOLDER.glob('*.py'))
EMAIL = 'tester@example.org'

AIIDA_LINE = re.compile(r'^.*\S\s+# aiida-core: (?P<aiida>.*)$', re.MULTILINE)
"""A line of a script and, in its comment, what it is with aiida-core."""

PROVSTORE_IMPORT = re.compile(r'^\s*(from|import) provstore\b', re.MULTILINE)

PROVSTORE_RUNNER = """
import json, runpy, sys
from provstore.cli.profile import create_profile
create_profile('scripts', sys.argv[2], json.loads(sys.argv[3]), email=sys.argv[4], set_default=True)
runpy.run_path(sys.argv[1], run_name='__main__')
"""

AIIDA_RUNNER = """
import runpy, sys
from aiida.manage.configuration import create_profile, get_config
config = get_config(create=True)
create_profile(config, storage_backend='core.sqlite_dos', storage_config={'filepath': sys.argv[2]}, name='scripts',
               email=sys.argv[3])
config.set_default_profile('scripts', overwrite=True)
config.store()
runpy.run_path(sys.argv[1], run_name='__main__')
"""


def expected_output(script: str) -> str:
    """What ``script`` prints: its ``.out`` file."""
    return (SCRIPTS_FOLDER / script).with_suffix('.out').read_text()


def as_aiida_script(text: str) -> str:
    """The text of a script with each marked line replaced by its aiida-core form."""
    return AIIDA_LINE.sub(lambda match: match['aiida'], text)


def _run(command: list[str], environment: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=cwd, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def run_with_provstore(script: str, folder: Path, backend: str, options: dict[str, Any]) -> str:
    """Run ``script`` as it is, on a new default provstore profile on ``backend`` configured in ``folder``."""
    environment = {**os.environ, 'PROVSTORE_PATH': str(folder / 'config')}
    environment.pop('PROVSTORE_PROFILE', None)
    command = [sys.executable, '-c', PROVSTORE_RUNNER, str(SCRIPTS_FOLDER / script), backend, json.dumps(options)]
    return _run([*command, EMAIL], environment, folder)


def aiida_python() -> str | None:
    """An interpreter that has aiida-core: this one, else ``$PROVSTORE_AIIDA_PYTHON``; ``None`` without one."""
    if importlib.util.find_spec('aiida') is not None:
        return sys.executable
    return os.environ.get('PROVSTORE_AIIDA_PYTHON') or None


def run_with_aiida(python: str, script: str, folder: Path) -> str:
    """Run the aiida-core form of ``script`` with ``python`` on a new default ``core.sqlite_dos`` profile."""
    (folder / '.aiida').mkdir()
    text = as_aiida_script((SCRIPTS_FOLDER / script).read_text())
    assert not PROVSTORE_IMPORT.search(text), f'{script}: an import of provstore is not marked'
    aiida_script = folder / script
    aiida_script.write_text(text)
    environment = {**os.environ, 'AIIDA_PATH': str(folder), 'PYTHONWARNINGS': 'ignore'}
    return _run([python, '-c', AIIDA_RUNNER, str(aiida_script), str(folder / 'storage'), EMAIL], environment, folder)


@pytest.mark.parametrize('script', SCRIPTS)
def test_script_prints_the_same_with_aiida_core(script: str, tmp_path: Path) -> None:
    """The aiida-core form of the script, run by aiida-core, prints what provstore prints (the ``.out`` file)."""
    python = aiida_python()
    if python is None:
        reason = (
            'AIIDA-CORE NOT INSTALLED: the scripts of examples/aiida_scripts were NOT compared with aiida-core; '
            'run `tox -e aiida-interop`, or set PROVSTORE_AIIDA_PYTHON to a Python that has it'
        )
        if os.environ.get('PROVSTORE_AIIDA_INTEROP'):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    assert run_with_aiida(python, script, tmp_path) == expected_output(script)
