"""Test helpers for provstore and its plugins: fixtures and contract suites.

Installed as a pytest plugin (entry point ``pytest11``), so the fixtures are available in any test suite
that has provstore installed. Contract suites are base classes to subclass in a plugin's tests
(``ContentAddressedContract`` for backends with sha256 keys, ``RepositoryBackendContract`` for the others)::

    from provstore.testing import RepositoryBackendContract

    class TestMyBackend(RepositoryBackendContract):
        backend_class = MyBackend

        @pytest.fixture
        def backend_options(self, tmp_path):
            return {'filepath': str(tmp_path / 'repo')}

Storage backends run ``StorageBackendContract`` the same way (see :mod:`provstore.testing.storage`).
"""

from provstore.testing.repository_contract import ContentAddressedContract, RepositoryBackendContract
from provstore.testing.storage import JsonStorageBackend, StorageBackendContract

__all__ = ['ContentAddressedContract', 'JsonStorageBackend', 'RepositoryBackendContract', 'StorageBackendContract']
