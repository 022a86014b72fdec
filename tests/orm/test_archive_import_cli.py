"""``provstore archive import``: aiida-core's archives into real profiles, with the exit codes scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from fixture_archives import AIIDA_CORE_STATIC
from orm_helpers import counts

from provstore.cli import cli
from provstore.storage import EntityStorage, EntityType
from provstore_sqlite_zip.format import SqliteZipFormat

SIMPLE = AIIDA_CORE_STATIC / 'export__migrate__export_main_0001_simple.aiida'
GRAPH = AIIDA_CORE_STATIC / 'graphs__graph1.aiida'


def invoke(*args: str) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args))


def test_import_then_import_again(storage: EntityStorage) -> None:
    """Two archives in one command; again, nothing is added; --json gives one summary per file."""
    done = invoke('archive', 'import', str(SIMPLE), str(GRAPH), '--no-import-group')
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f'Imported {SIMPLE}: added user 1, computer 1, node ')
    assert "group '" not in done.stdout
    held = counts(storage)
    again = invoke('archive', 'import', str(SIMPLE), '--json', '-G', 'again')
    assert again.exit_code == 0, again.output
    (summary,) = json.loads(again.stdout)
    assert summary['path'] == str(SIMPLE)
    assert summary['import_group'] == 'again'
    assert summary['added']['node'] == 0
    assert summary['existing']['node'] == archived_nodes(SIMPLE) > 0
    assert counts(storage)['node'] == held['node'] == archived_nodes(SIMPLE) + archived_nodes(GRAPH)
    assert counts(storage)['group'] == held['group'] + 1


def archived_nodes(archive: Path) -> int:
    """The number of nodes in ``archive``, read in place."""
    opened = SqliteZipFormat.open(archive)
    try:
        assert isinstance(opened, EntityStorage)
        return opened.count_rows(EntityType.NODE)
    finally:
        opened.close()


def test_dry_run_writes_nothing(storage: EntityStorage) -> None:
    """--dry-run says what would be added and leaves every table as it was."""
    before = counts(storage)
    dry = invoke('archive', 'import', str(SIMPLE), '--dry-run')
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f'Dry run: {SIMPLE} would be imported: added user 1,')
    assert dry.stdout.rstrip().endswith('Nothing was written.')
    assert counts(storage) == before


def test_refusals_exit_1_and_usage_exit_2(storage: EntityStorage, tmp_path: Path) -> None:
    """A file that is not an archive: exit 1 and one line naming it; -G with --no-import-group: exit 2."""
    bad = tmp_path / 'bad.aiida'
    bad.write_bytes(b'not a zip at all')
    before = counts(storage)
    refused = invoke('archive', 'import', str(bad))
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [f'Error: {bad}: not a zip file, so not a sqlite_zip archive']
    assert counts(storage) == before
    both = invoke('archive', 'import', str(SIMPLE), '-G', 'x', '--no-import-group')
    assert both.exit_code == 2
    assert 'either -G LABEL or --no-import-group' in both.output
    assert invoke('archive', 'import').exit_code == 2
    assert invoke('archive', 'import', str(SIMPLE), '--comment-mode', 'newer').exit_code == 2
