"""Settings for the whole test suite.

Plugin failures raise (strict mode) unless a test turns it off, and every test gets its own configuration
folder, so nothing ever touches the user's real ``~/.provstore``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from provstore.manager import reset_manager

os.environ.setdefault('PROVSTORE_PLUGINS_STRICT', '1')

# The core-only tox env installs no plugin; its own checks live in tests/core_only and run only there.
collect_ignore = [] if os.environ.get('PROVSTORE_CORE_ONLY') else ['core_only']


@pytest.fixture(autouse=True)
def config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point $PROVSTORE_PATH at a fresh folder for each test, with no profile preselected."""
    folder = tmp_path_factory.mktemp('provstore-config')
    monkeypatch.setenv('PROVSTORE_PATH', str(folder))
    monkeypatch.delenv('PROVSTORE_PROFILE', raising=False)
    yield folder
    reset_manager()
