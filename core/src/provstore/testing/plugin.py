"""The pytest plugin of provstore, registered through the ``pytest11`` entry point.

Fixtures for plugin authors:

``plugin_registry``
    A registry built afresh from the installed entry points, installed as the registry of this process for
    one test; the previous one is restored afterwards.
``register_plugin``
    A function ``register_plugin(plugin, name='...')`` that adds an in-process plugin (a module, class or
    object with :data:`provstore.hookimpl` functions) to the registry of this process for one test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from provstore import registry as registry_module
from provstore.registry import PluginRegistry

__all__ = ['plugin_registry', 'register_plugin']


@pytest.fixture
def plugin_registry() -> Iterator[PluginRegistry]:
    """Return a fresh registry of the installed plugins, used by this process for the duration of the test."""
    previous = registry_module._REGISTRY
    fresh = PluginRegistry()
    registry_module.reset_registry(fresh)
    try:
        yield fresh
    finally:
        registry_module.reset_registry(previous)


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., PluginRegistry]]:
    """Return ``register_plugin(plugin, name='in_process')``, which rebuilds this process's registry with it.

    Plugins registered in one test are gone in the next; every call adds to those already registered.
    """
    previous = registry_module._REGISTRY
    registered: list[tuple[str, object]] = []

    def register(plugin: object, name: str = 'in_process') -> PluginRegistry:
        registered.append((name, plugin))
        fresh = PluginRegistry(in_process=registered)
        registry_module.reset_registry(fresh)
        return fresh

    try:
        yield register
    finally:
        registry_module.reset_registry(previous)
