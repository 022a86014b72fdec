"""Test helpers for provstore and its plugins: fixtures and contract suites.

Installed as a pytest plugin (entry point ``pytest11``, extra ``provstore[testing]``), so the fixtures are available
in any test suite that has provstore installed. Contract suites are base classes to subclass in a plugin's tests:

- repository backends: ``ContentAddressedContract`` (sha256 keys) or ``RepositoryBackendContract`` (any keys),
  parameterised by the fixture ``backend_options``::

      from provstore.testing import RepositoryBackendContract

      class TestMyBackend(RepositoryBackendContract):
          backend_class = MyBackend

          @pytest.fixture
          def backend_options(self, tmp_path):
              return {'filepath': str(tmp_path / 'repo')}

- storage backends: ``StorageBackendContract`` (the lifecycle, :mod:`provstore.testing.storage_contract`),
  ``EntityStorageContract`` (the entity interface, :mod:`provstore.testing.entity_contract`) and
  ``QueryConformanceContract`` / ``ReadOnlyQueryConformanceContract`` (the QueryBuilder on a fixed graph,
  :mod:`provstore.testing.query_contract`), each parameterised by ``backend_class`` and a ``profile`` fixture.
- archive formats: ``ArchiveFormatContract`` (:mod:`provstore.testing.archive_contract`), parameterised by
  ``format_class``, ``backend_class`` (its read-only storage) and ``storage_class`` (a writable one).
"""

from provstore.testing.archive_contract import ArchiveFormatContract
from provstore.testing.entity_contract import EntityStorageContract
from provstore.testing.json_storage import JsonStorageBackend
from provstore.testing.profiles import CONTRACT_EMAIL, new_profile, opened_storage
from provstore.testing.query_contract import QueryConformanceContract, ReadOnlyQueryConformanceContract
from provstore.testing.repository_contract import ContentAddressedContract, RepositoryBackendContract
from provstore.testing.storage_contract import StorageBackendContract

__all__ = [
    'CONTRACT_EMAIL',
    'ArchiveFormatContract',
    'ContentAddressedContract',
    'EntityStorageContract',
    'JsonStorageBackend',
    'QueryConformanceContract',
    'ReadOnlyQueryConformanceContract',
    'RepositoryBackendContract',
    'StorageBackendContract',
    'new_profile',
    'opened_storage',
]
