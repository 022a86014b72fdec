"""provstore's repository backend contract, run against the ``example.plainfolder`` backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provstore.testing import ContentAddressedContract
from provstore_plainfolder.backend import PlainFolderRepositoryBackend


class TestPlainFolderContract(ContentAddressedContract):
    """Every test of the contract, with a fresh repository folder under ``tmp_path``."""

    backend_class = PlainFolderRepositoryBackend

    @pytest.fixture
    def backend_options(self, tmp_path: Path) -> dict[str, Any]:
        """Return the options the contract builds the backend with."""
        return {'filepath': str(tmp_path / 'plainfolder')}
