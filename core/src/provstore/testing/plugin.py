"""The pytest plugin of provstore, registered through the ``pytest11`` entry point.

Fixtures for plugin authors:

``plugin_registry``
    A registry built afresh from the installed entry points, used as the registry of this process for one
    test; the previous one is restored afterwards.
``register_plugin``
    A function ``register_plugin(plugin, name='in_process')`` that adds an in-process plugin (a module, class
    or object carrying :data:`provstore.hookimpl` functions) to the registry of this process for one test.
``test_storage_backend``
    Registers the in-process test storage backends ``test.json`` and ``test.json_readonly``
    (:mod:`provstore.testing.json_storage`) for one test and returns :class:`~provstore.testing.JsonStorageBackend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from provstore.registry import PluginRegistry, reset_registry, using_registry
from provstore.testing.json_storage import TEST_STORAGE_PLUGIN, JsonStorageBackend

__all__ = ['plugin_registry', 'pytest_configure', 'register_plugin', 'test_storage_backend']


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` marker the contract suites use, so that ``--strict-markers`` accepts it anywhere."""
    config.addinivalue_line('markers', 'slow: large-object, many-object and many-process tests')


@pytest.fixture
def plugin_registry() -> Iterator[PluginRegistry]:
    """Return a fresh registry of the installed plugins, used by this process for the duration of the test."""
    with using_registry(PluginRegistry()) as registry:
        yield registry


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., PluginRegistry]]:
    """Return ``register_plugin(plugin, name='in_process')``, which rebuilds this process's registry with it.

    Each call adds to the plugins registered before it in the same test; all are gone in the next test.
    """
    registered: list[tuple[str, object]] = []

    def register(plugin: object, name: str = 'in_process') -> PluginRegistry:
        registered.append((name, plugin))
        fresh = PluginRegistry(in_process=registered)
        reset_registry(fresh)
        return fresh

    # NOTE: using_registry restores the registry found on entry, whatever register() installed meanwhile.
    with using_registry(PluginRegistry()):
        yield register


@pytest.fixture
def test_storage_backend(register_plugin: Callable[..., PluginRegistry]) -> type[JsonStorageBackend]:
    """Register the test storage backends (plugin ``test_storage``) for this test; return ``JsonStorageBackend``."""
    register_plugin(TEST_STORAGE_PLUGIN, name='test_storage')
    return JsonStorageBackend
