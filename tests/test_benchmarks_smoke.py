"""The benchmark runner (benchmarks/run.py) runs end to end at a tiny scale and prints valid JSON lines.

Benchmarks are programs, not timed assertions: this checks only that the runner works and what its lines hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / 'benchmarks'

EXPECTED = {
    ('W1', 'one_by_one'): 'nodes_per_s',
    ('W1', 'transaction'): 'nodes_per_s',
    ('W1', 'batch'): 'nodes_per_s',
    ('W1', 'rows'): 'nodes_per_s',
    ('W2', 'one_by_one'): 'files_per_s',
    ('W2', 'read_back'): 'files_per_s',
    ('W2', 'batch'): 'files_per_s',
    ('W3', 'one_by_one'): 'nodes_per_s',
    ('W3', 'batch'): 'nodes_per_s',
}


def test_runner_prints_one_json_line_per_step_variant(tmp_path: Path) -> None:
    """At --scale 0.01 on sqlite_dos every step variant prints one JSON line with the keys WORKLOAD.md asks for."""
    environment = {**os.environ, 'PROVSTORE_PATH': str(tmp_path / 'untouched'), 'TMPDIR': str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / 'run.py'), '--backend', 'sqlite_dos', '--scale', '0.01'],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in completed.stdout.splitlines()]
    assert {(record['workload'], record['variant']) for record in records} == set(EXPECTED)
    assert len(records) == len(EXPECTED)
    for record in records:
        rate = EXPECTED[(record['workload'], record['variant'])]
        assert {'backend', 'workload', 'variant', 'scale', 'seconds', 'peak_rss_mb', rate} <= set(record)
        assert record['system'] == 'provstore'
        assert record['backend'] == 'sqlite_dos'
        assert record['scale'] == 0.01
        assert record['seconds'] > 0 and record[rate] > 0 and record['peak_rss_mb'] > 0
    w2 = {record['variant']: record for record in records if record['workload'] == 'W2'}
    assert w2['one_by_one']['files'] == 100 and w2['one_by_one']['mb_per_s'] > 0
    assert w2['read_back']['bytes'] == w2['one_by_one']['bytes']
    assert '| sqlite_dos | W1 | one_by_one |' in completed.stderr
    assert not (tmp_path / 'untouched').exists()
    assert [path.name for path in tmp_path.iterdir()] == []
