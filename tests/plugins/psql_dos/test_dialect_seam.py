"""The dialect seam of psql_dos: which database a storage is on is asked of its dialect, never tested elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import provstore_psql_dos

PACKAGE = Path(provstore_psql_dos.__file__).parent

DIALECT_TEST = re.compile(r"dialect\.name|_postgres\b|is_postgres|_sqlite\b|== 'postgresql'|== 'sqlite'")
"""What a test of the database's name looks like in code."""

ALLOWED = ('dialects', 'models.py', 'migrations')
"""Where a test of the database's name belongs: the dialect classes, the column types, the migrations."""


def test_no_dialect_flag_outside_the_dialects() -> None:
    """No module of psql_dos but the dialect classes, the models and the migrations tests which database it is on."""
    found = [
        f'{path.relative_to(PACKAGE)}:{number}: {line.strip()}'
        for path in sorted(PACKAGE.rglob('*.py'))
        if path.relative_to(PACKAGE).parts[0] not in ALLOWED
        for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1)
        if DIALECT_TEST.search(line)
    ]
    assert found == []
    assert any(DIALECT_TEST.search(path.read_text(encoding='utf-8')) for path in (PACKAGE / 'dialects').glob('*.py'))
