"""The contracts of ``provstore.testing`` keep their cases, and every first-party backend and the example run them.

A contract nobody subclasses, or a backend that quietly stops running one, would pass unnoticed: these tests load the
modules that run the contracts and check who subclasses what.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
from pathlib import Path
from types import ModuleType

import pytest

from provstore.testing import (
    ArchiveFormatContract,
    ContentAddressedContract,
    EntityStorageContract,
    QueryConformanceContract,
    ReadOnlyQueryConformanceContract,
    RepositoryBackendContract,
    StorageBackendContract,
)
from provstore.testing.query_cases import CASES

ROOT = Path(__file__).resolve().parents[2]

RUNNERS = [
    'tests/core/test_storage_contract.py',
    'tests/plugins/sandbox/test_sandbox.py',
    'tests/plugins/disk_objectstore/test_disk_objectstore_contract.py',
    'tests/plugins/psql_dos/test_psql_dos_contract.py',
    'tests/plugins/psql_dos/test_contracts.py',
    'tests/plugins/sqlite_zip/test_sqlite_zip_contracts.py',
    'examples/plainfolder/tests/test_plainfolder_contract.py',
    'examples/plainfolder/tests/test_plainfolder_storage_contracts.py',
]
"""The test modules that run contracts (relative to the repository's root)."""

MINIMUM_CASES = {
    RepositoryBackendContract: 40,
    StorageBackendContract: 15,
    EntityStorageContract: 30,
    QueryConformanceContract: 7,
    ReadOnlyQueryConformanceContract: 8,
    ArchiveFormatContract: 14,
}
"""The fewest test methods each contract may have: dropping cases by mistake shows here."""

_COUNTER = itertools.count()


def load(relative: str) -> ModuleType:
    """Import the test module at ``relative`` under a name of its own (pytest imports it under another)."""
    spec = importlib.util.spec_from_file_location(f'contract_runner_{next(_COUNTER)}', ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = 'examples/plainfolder/'
"""Where the example plugin's runners are: they need the example installed (tox env ``examples`` runs this file)."""


@pytest.fixture(scope='module')
def runners() -> list[tuple[str, type]]:
    """Every test class of :data:`RUNNERS` whose plugin is installed, with the module it is in.

    Skipped where no first-party plugin is installed (tox ``core-only``); the example's runners are loaded only where
    the example plugin is installed (tox ``examples``).
    """
    for plugin in ('provstore_sandbox', 'provstore_disk_objectstore', 'provstore_psql_dos', 'provstore_sqlite_zip'):
        pytest.importorskip(plugin, reason='the core-only environment installs no plugin')
    with_example = importlib.util.find_spec('provstore_plainfolder') is not None
    found = []
    for relative in RUNNERS:
        if relative.startswith(EXAMPLE) and not with_example:
            continue
        module = load(relative)
        found += [
            (relative, cls) for _, cls in inspect.getmembers(module, inspect.isclass) if cls.__name__[:4] == 'Test'
        ]
    return found


def backends(runners: list[tuple[str, type]], contract: type, where: str = '') -> set[str]:
    """Return the names of the backends that test classes of modules under ``where`` run ``contract`` on."""
    return {
        cls.backend_class.name for relative, cls in runners if issubclass(cls, contract) and relative.startswith(where)
    }


@pytest.mark.parametrize('contract', list(MINIMUM_CASES), ids=lambda contract: contract.__name__)
def test_each_contract_has_its_cases(contract: type) -> None:
    """Each contract has at least its known number of test methods, each documented by a docstring."""
    tests = [name for name, _ in inspect.getmembers(contract, inspect.isfunction) if name.startswith('test_')]
    assert len(tests) >= MINIMUM_CASES[contract], tests
    undocumented = [name for name in tests if not (getattr(contract, name).__doc__ or '').strip()]
    assert not undocumented


def test_the_query_table_is_well_formed() -> None:
    """The query table has at least 170 cases with unique ids, each expecting a result or an exception."""
    ids = [case.id for case in CASES]
    assert len(ids) >= 170
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    for case in CASES:
        assert case.raises is None or case.expect is None, case.id
        assert case.raises is not None or case.match is None, case.id


def test_first_party_backends_run_every_contract(runners: list[tuple[str, type]]) -> None:
    """sqlite_dos and psql_dos run the three storage contracts, the archive format sqlite_zip the archive-format
    contract (with the read-only query contract); every repository backend runs its contract."""
    sql = {'sqlite_dos', 'psql_dos'}
    assert backends(runners, StorageBackendContract, 'tests/') >= {*sql, 'test.json', 'test.json_readonly'}
    assert backends(runners, EntityStorageContract, 'tests/') == sql
    assert backends(runners, QueryConformanceContract, 'tests/') == sql
    indexed = {
        cls.backend_class.name
        for _, cls in runners
        if issubclass(cls, QueryConformanceContract) and cls.index_json_paths
    }
    assert indexed == sql
    assert 'sqlite_zip' in backends(runners, ReadOnlyQueryConformanceContract, 'tests/')
    assert 'sqlite_zip' in backends(runners, ArchiveFormatContract, 'tests/')
    assert backends(runners, RepositoryBackendContract, 'tests/') == {'sandbox', 'disk_objectstore'}
    assert backends(runners, ContentAddressedContract, 'tests/') == {'disk_objectstore'}


def test_the_example_plugin_runs_every_contract(runners: list[tuple[str, type]]) -> None:
    """The example plugin runs the repository contract and the three storage contracts, importing only provstore."""
    pytest.importorskip('provstore_plainfolder', reason='the example plugin is installed in tox env examples only')
    where = EXAMPLE
    assert backends(runners, ContentAddressedContract, where) == {'example.plainfolder'}
    for contract in (StorageBackendContract, EntityStorageContract, QueryConformanceContract):
        assert backends(runners, contract, where), contract.__name__
    for relative in RUNNERS:
        if relative.startswith(where):
            imports = [
                line.split()[1]
                for line in (ROOT / relative).read_text().splitlines()
                if line.startswith(('import ', 'from '))
            ]
            foreign = [name for name in imports if name.split('.')[0].startswith('provstore_')]
            assert foreign in ([], ['provstore_plainfolder.backend']), (relative, foreign)
