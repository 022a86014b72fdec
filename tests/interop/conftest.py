"""Fixtures of the interoperability tests: a provstore profile and an aiida-core profile, side by side.

These tests need aiida-core installed beside provstore: they run in the tox env ``aiida-interop`` only, which sets
``PROVSTORE_AIIDA_INTEROP=1`` (``tests/conftest.py`` leaves this folder out of every other run). aiida-core is
driven in this process, through its public API, on a ``core.sqlite_dos`` profile without a broker; provstore's
profiles are on ``sqlite_dos`` and ``psql_dos``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from interop_helpers import EMAIL, empty_aiida_profile

from provstore.manager import get_manager
from provstore.storage import EntityStorage


@pytest.fixture(scope='session')
def aiida_session_profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Create and load, once per process, an aiida-core profile on ``core.sqlite_dos`` with no broker; yield its name.

    One profile per process, emptied after each test (:func:`aiida_profile`), as aiida-core's own test fixtures do:
    aiida-core keeps global state (its configuration, its loaded profile) that is not made to be swapped per test.
    """
    folder = tmp_path_factory.mktemp('aiida')
    # aiida-core makes and announces (a warning: an error here) its configuration folder when first imported: it
    # finds this one, empty, outside the user's home.
    (folder / '.aiida').mkdir()
    previous = os.environ.get('AIIDA_PATH')
    os.environ['AIIDA_PATH'] = str(folder)
    from aiida.manage import get_manager as get_aiida_manager
    from aiida.manage.configuration import create_profile, get_config

    try:
        profile = create_profile(
            get_config(create=True),
            storage_backend='core.sqlite_dos',
            storage_config={'filepath': str(folder / 'storage')},
            name='interop',
            email=EMAIL,
        )
        get_aiida_manager().load_profile(profile.name)
        yield profile.name
    finally:
        get_aiida_manager().unload_profile()
        if previous is None:
            del os.environ['AIIDA_PATH']
        else:
            os.environ['AIIDA_PATH'] = previous


@pytest.fixture
def aiida_profile(aiida_session_profile: str) -> Iterator[str]:
    """Yield the name of the loaded aiida-core profile, empty but for its default user :data:`EMAIL`; empty it after."""
    from aiida import orm

    assert orm.QueryBuilder().append(orm.Node).count() == 0
    try:
        yield aiida_session_profile
    finally:
        empty_aiida_profile()


@pytest.fixture(params=['sqlite_dos', 'psql_dos'])
def provstore_storage(request: pytest.FixtureRequest) -> Iterator[EntityStorage]:
    """Create and load a new provstore profile on each of ``sqlite_dos`` and ``psql_dos`` (a database of the test's
    own on the test server, see ``tests/conftest.py``), default user :data:`EMAIL`; yield its storage.
    """
    from provstore.cli.profile import create_profile

    options = request.getfixturevalue('psql_options') if request.param == 'psql_dos' else {}
    create_profile('interop', request.param, options, email=EMAIL, set_default=True)
    manager = get_manager()
    try:
        manager.load_profile('interop')
        storage = manager.get_profile_storage()
        assert isinstance(storage, EntityStorage)
        yield storage
    finally:
        manager.unload_profile()
