"""The README's demo (``examples/tour.py``) runs to the end on the embedded default and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOUR = Path(__file__).resolve().parents[1] / 'examples' / 'tour.py'


def test_the_tour_runs_to_the_end(tmp_path: Path) -> None:
    """Every command of the tour succeeds: store, look, plan a delete, export, browse in place, import twice."""
    environment = {**os.environ, 'TMPDIR': str(tmp_path)}
    environment.pop('PROVSTORE_PROFILE', None)
    result = subprocess.run(
        [sys.executable, str(TOUR)], capture_output=True, text=True, timeout=600, env=environment, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    output = result.stdout
    assert 'JOB DONE.' in output
    assert '$ provstore archive create ' in output
    imports = [line for line in output.splitlines() if line.startswith('Imported ')]
    assert len(imports) == 2
    assert 'added user 1, computer 0, node 6,' in imports[0]
    assert 'added user 0, computer 0, node 0, group 0, group_node 0, link 0,' in imports[1]
    assert output.rstrip().splitlines()[-1].startswith('Done in ')
    assert list(tmp_path.iterdir()) == []  # the tour removes its temporary folder
