"""The ``disk_objectstore`` backend passes provstore's repository backend contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provstore.testing import ContentAddressedContract
from provstore_disk_objectstore.backend import DiskObjectStoreRepositoryBackend


class TestDiskObjectStoreContract(ContentAddressedContract):
    """Run the contract against a container in a fresh folder, with small packs so that several get made."""

    backend_class = DiskObjectStoreRepositoryBackend

    @pytest.fixture
    def backend_options(self, tmp_path: Path) -> dict[str, Any]:
        """A container folder that does not exist yet, with 1 MiB packs."""
        return {'filepath': str(tmp_path / 'container'), 'pack_size_target': 1024 * 1024}
