"""The core with no plugin installed (tox env ``core-only``): it still works and lists none."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provstore.exceptions import PluginNotFoundError
from provstore.registry import Kind, PluginRegistry, get_repository_backend


def test_registry_is_empty() -> None:
    """No entry point of the provstore group is installed, so nothing is provided."""
    registry = PluginRegistry()
    assert registry.plugins == ()
    assert all(registry.list_names(kind) == [] for kind in Kind)


def test_lookup_says_nothing_is_installed(plugin_registry: PluginRegistry) -> None:
    """Asking for a backend says clearly that none is installed."""
    with pytest.raises(PluginNotFoundError, match="No repository backend named 'sandbox'; installed: none"):
        get_repository_backend('sandbox')


def test_cli_lists_no_plugins_and_checks_clean() -> None:
    """``plugins list --json`` prints an empty list and ``plugins check`` exits 0."""
    listing = subprocess.run(
        [sys.executable, '-m', 'provstore.cli', 'plugins', 'list', '--json'],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(listing.stdout) == []
    command = [sys.executable, '-m', 'provstore.cli', 'plugins', 'check']
    check = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0
    assert 'All plugins are healthy: 0 loaded, 0 blocked.' in check.stdout
