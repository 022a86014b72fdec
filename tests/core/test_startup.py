"""Start-up stays light: the CLI imports no plugin, no database driver and no disk-objectstore until needed."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ('sqlalchemy', 'disk_objectstore', 'psycopg', 'sqlite3')

PROBE = """
import json, sys
from provstore.cli import cli
try:
    cli.main({args!r}, prog_name='provstore')
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(*args: str) -> list[str]:
    """Run the CLI with ``args`` in a fresh interpreter and return the modules it imported."""
    command = [sys.executable, '-c', PROBE.format(args=list(args))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_loads_no_plugin_and_no_heavy_module() -> None:
    """``provstore --help`` imports no plugin module, no SQLAlchemy, no disk-objectstore."""
    modules = modules_after('--help')
    assert 'provstore.cli' in modules
    assert not [m for m in modules if m.startswith('provstore_')], 'a plugin module was imported'
    assert not [m for m in modules if m.split('.')[0] in HEAVY]


def test_plugin_listing_imports_no_backend_driver() -> None:
    """``provstore plugins list`` loads the plugins' hook modules but not their heavy dependencies."""
    modules = modules_after('plugins', 'list')
    assert not [m for m in modules if m.split('.')[0] in HEAVY]


def test_import_provstore_builds_no_registry() -> None:
    """Importing provstore (and its CLI) builds no registry and imports no plugin."""
    code = (
        'import sys, provstore, provstore.cli, provstore.registry as r; print(r._REGISTRY is None, '
        "any(m.startswith('provstore_') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ['True', 'False']
