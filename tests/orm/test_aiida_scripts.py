"""The scripts of ``examples/aiida_scripts``, written for aiida-core, run with provstore on ``sqlite_dos`` and
``psql_dos`` and print their ``.out`` files; with aiida-core at hand they print the same under it (see
``tests/aiida_scripts_run.py``; ``tests/interop`` runs that comparison where aiida-core is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiida_scripts_run import (
    PROVSTORE_IMPORT,
    SCRIPTS,
    SCRIPTS_FOLDER,
    as_aiida_script,
    expected_output,
    run_with_provstore,
    test_script_prints_the_same_with_aiida_core,
)

__all__ = ['test_script_prints_the_same_with_aiida_core']


@pytest.mark.parametrize('backend', ['sqlite_dos', 'psql_dos'])
@pytest.mark.parametrize('script', SCRIPTS)
def test_script_runs_with_provstore(script: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The script, as it is, prints its ``.out`` file on a fresh profile of each backend."""
    options: dict[str, Any] = request.getfixturevalue('psql_options') if backend == 'psql_dos' else {}
    assert run_with_provstore(script, tmp_path, backend, options) == expected_output(script)


def test_only_marked_lines_differ_for_aiida_core() -> None:
    """Only the marked lines change, the profile is loaded as aiida-core does, and nothing of provstore is left."""
    assert SCRIPTS == ['find_structures.py', 'provenance_report.py']
    for script in SCRIPTS:
        text = (SCRIPTS_FOLDER / script).read_text()
        aiida = as_aiida_script(text)
        changed = [line for line, other in zip(text.splitlines(), aiida.splitlines(), strict=True) if line != other]
        assert changed, script
        assert all('# aiida-core: ' in line for line in changed)
        assert 'from aiida import load_profile' in aiida
        assert not PROVSTORE_IMPORT.search(aiida)
