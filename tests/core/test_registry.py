"""The plugin registry: discovery through real entry points, guarded loading, validation and look-ups."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from core_helpers import archive_plugin

from provstore import hookimpl
from provstore.archive import ArchiveFormat, ArchiveMetadata
from provstore.exceptions import ArchiveError, PluginError, PluginNotFoundError
from provstore.registry import (
    IN_PROCESS,
    Kind,
    PluginRegistry,
    PluginStatus,
    RegistrySettings,
    get_archive_format,
    get_registry,
    using_registry,
)
from provstore.storage import StorageBackend

LENIENT = RegistrySettings(strict=False)

BROKEN_IMPORT = """
    import provstore_this_module_does_not_exist
"""


class AbstractFormat(ArchiveFormat):
    """Misses read_metadata and open."""

    name = 'test.abstract'

    @classmethod
    def version_head(cls) -> str:
        return '1'

    @classmethod
    def versions_readable(cls) -> tuple[str, ...]:
        return ('1',)


class GoodFormat(AbstractFormat):
    """A good in-process test format."""

    name = 'test.good'

    @classmethod
    def read_metadata(cls, path: Path) -> ArchiveMetadata:
        return ArchiveMetadata(cls.name, '1', 'sha256')

    @classmethod
    def open(cls, path: Path) -> StorageBackend:
        raise ArchiveError(f'{path}: test.good holds nothing to open')


def plugin_returning(result: Any) -> SimpleNamespace:
    """Return an in-process plugin whose register_archive_formats() returns ``result``."""

    @hookimpl
    def register_archive_formats() -> Any:
        return result

    return SimpleNamespace(register_archive_formats=register_archive_formats)


def test_discovers_a_real_distribution(fake_site: Callable[..., str]) -> None:
    """A plugin installed as a dist-info folder is loaded, with its distribution, version and what it provides."""
    module = fake_site('acme-formats', archive_plugin('acme.zip', 'acme.tar'), entry_point='acme', version='2.3')
    registry = PluginRegistry(LENIENT)
    record = registry.get_plugin('acme')
    assert record.status is PluginStatus.LOADED
    assert (record.distribution, record.version, record.value) == ('acme-formats', '2.3', module)
    assert record.hooks == ('register_archive_formats',)
    assert record.provides == {Kind.ARCHIVE: ('acme.tar', 'acme.zip')}
    assert record.error is None
    assert registry.get_archive_format('acme.zip').__doc__ == 'The acme.zip test format.'
    assert registry.provider_of(Kind.ARCHIVE, 'acme.tar') == record


def test_broken_plugin_is_recorded_and_others_keep_working(
    fake_site: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin that cannot be imported is listed as failed at import, with one warning; the rest still load."""
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good')
    fake_site('broken-formats', BROKEN_IMPORT, entry_point='broken', version='0.9')
    with caplog.at_level(logging.WARNING, logger='provstore.registry'):
        registry = PluginRegistry(LENIENT)
    broken = registry.get_plugin('broken')
    assert broken.status is PluginStatus.FAILED
    assert broken.error is not None
    assert (broken.error.stage, broken.error.type) == ('import', 'ModuleNotFoundError')
    assert 'provstore_this_module_does_not_exist' in broken.error.message
    assert broken.provides == {}
    warnings = [r.getMessage() for r in caplog.records if 'broken' in r.getMessage()]
    assert len(warnings) == 1
    assert "plugin 'broken' (distribution broken-formats 0.9) failed" in warnings[0]
    assert registry.get_plugin('good').status is PluginStatus.LOADED
    assert registry.get_archive_format('good.fmt').name == 'good.fmt'


def test_lookup_of_a_missing_name_lists_installed_and_failed_plugins(fake_site: Callable[..., str]) -> None:
    """Asking for an unknown name lists what is installed and names each failed plugin with its cause."""
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good')
    fake_site('broken-formats', BROKEN_IMPORT, entry_point='broken')
    registry = PluginRegistry(LENIENT)
    with pytest.raises(
        PluginNotFoundError, match=r"No archive format named 'broken.fmt'; installed: .*good\.fmt"
    ) as info:
        registry.get_archive_format('broken.fmt')
    message = str(info.value)
    assert "plugin 'broken' (distribution broken-formats 1.0): ModuleNotFoundError at import" in message
    assert '\n' not in message


def test_duplicate_plugin_names_are_reported_not_dropped(fake_site: Callable[..., str]) -> None:
    """Two distributions declaring the same plugin name both end up 'duplicate', naming each other; none loads."""
    fake_site('first-dist', archive_plugin('first.fmt'), entry_point='twin')
    fake_site('second-dist', archive_plugin('second.fmt'), entry_point='twin')
    registry = PluginRegistry(LENIENT)
    record = registry.get_plugin('twin')
    assert record.status is PluginStatus.DUPLICATE
    assert record.error is not None
    assert record.error.stage == 'duplicate'
    assert 'first-dist 1.0' in record.error.message
    assert 'second-dist 1.0' in record.error.message
    assert 'first.fmt' not in registry.list_names(Kind.ARCHIVE)
    assert 'second.fmt' not in registry.list_names(Kind.ARCHIVE)


def test_name_clash_between_plugins_fails_both(fake_site: Callable[..., str]) -> None:
    """Two plugins providing the same backend name both fail, each naming the other; order decides nothing."""
    fake_site('alpha-dist', archive_plugin('shared.fmt', 'alpha.only'), entry_point='alpha')
    fake_site('beta-dist', archive_plugin('shared.fmt'), entry_point='beta')
    registry = PluginRegistry(LENIENT)
    alpha, beta = registry.get_plugin('alpha'), registry.get_plugin('beta')
    assert alpha.status is beta.status is PluginStatus.FAILED
    assert alpha.error is not None
    assert beta.error is not None
    assert "'shared.fmt' is also provided by plugin 'beta' (distribution beta-dist 1.0)" in alpha.error.message
    assert "'shared.fmt' is also provided by plugin 'alpha' (distribution alpha-dist 1.0)" in beta.error.message
    assert alpha.provides == {}
    with pytest.raises(PluginNotFoundError, match=r"Archive format 'shared.fmt' is unavailable: plugin 'alpha'.*beta"):
        registry.get_archive_format('shared.fmt')
    with pytest.raises(PluginNotFoundError, match=r'alpha\.only'):
        registry.get_archive_format('alpha.only')


@pytest.mark.parametrize(
    ('result', 'stage', 'match'),
    [
        ((GoodFormat,), 'validate', 'must return a list of classes, got tuple'),
        ([GoodFormat()], 'validate', 'is not a class'),
        ([int], 'validate', 'int is not a subclass of provstore.archive.format.ArchiveFormat'),
        ([AbstractFormat], 'validate', 'AbstractFormat is abstract; it does not implement open, read_metadata'),
        ([type('Nameless', (GoodFormat,), {'name': 'Bad Name'})], 'validate', 'lower-case words joined by dots'),
        ([type('NoName', (GoodFormat,), {'name': None})], 'validate', 'got None'),
        ([GoodFormat, type('Again', (GoodFormat,), {})], 'validate', "two archive formats named 'test.good'"),
    ],
)
def test_invalid_registrations_fail_only_that_plugin(result: Any, stage: str, match: str) -> None:
    """Each kind of bad hook result marks its plugin failed at validation and drops its contribution only."""
    registry = PluginRegistry(
        LENIENT, entry_points_group=None, in_process=[('bad', plugin_returning(result)), ('fine', GoodPlugin)]
    )
    record = registry.get_plugin('bad')
    assert record.status is PluginStatus.FAILED
    assert record.error is not None
    assert record.error.stage == stage
    assert match in record.error.message
    assert registry.list_names(Kind.ARCHIVE) == ['test.good']
    assert registry.provider_of(Kind.ARCHIVE, 'test.good').name == 'fine'


class GoodPlugin:
    """An in-process plugin providing GoodFormat."""

    @staticmethod
    @hookimpl
    def register_archive_formats() -> list[type[ArchiveFormat]]:
        return [GoodFormat]


def test_hook_that_raises_fails_at_call() -> None:
    """An exception inside a registration hook is recorded with stage 'call' and its type."""

    @hookimpl
    def register_archive_formats() -> Any:
        raise RuntimeError('database of formats is on fire')

    plugin = SimpleNamespace(register_archive_formats=register_archive_formats)
    registry = PluginRegistry(LENIENT, entry_points_group=None, in_process=[('fire', plugin)])
    error = registry.get_plugin('fire').error
    assert error is not None
    assert (error.stage, error.type, error.message) == ('call', 'RuntimeError', 'database of formats is on fire')


def test_unknown_hook_fails_at_register() -> None:
    """A plugin implementing a hook provstore does not declare fails at registration, naming the hook."""

    @hookimpl
    def register_time_machines() -> list[Any]:
        return []

    plugin = SimpleNamespace(register_time_machines=register_time_machines)
    registry = PluginRegistry(LENIENT, entry_points_group=None, in_process=[('odd', plugin)])
    record = registry.get_plugin('odd')
    assert record.status is PluginStatus.FAILED
    assert record.error is not None
    assert record.error.stage == 'register'
    assert "'register_time_machines', which is not a provstore hook" in record.error.message


def test_wrapper_implementation_is_refused() -> None:
    """A registration hook implemented as a wrapper is refused: registration hooks are plain calls."""

    @hookimpl(wrapper=True)
    def register_archive_formats() -> Any:
        return (yield)

    plugin = SimpleNamespace(register_archive_formats=register_archive_formats)
    registry = PluginRegistry(LENIENT, entry_points_group=None, in_process=[('wrap', plugin)])
    error = registry.get_plugin('wrap').error
    assert error is not None
    assert 'registration hooks must not be wrappers' in error.message


def test_strict_mode_raises_at_first_failure(fake_site: Callable[..., str]) -> None:
    """In strict mode a failing plugin raises PluginError naming the plugin, chained to the cause."""
    fake_site('broken-formats', BROKEN_IMPORT, entry_point='broken')
    with pytest.raises(PluginError, match=r"plugin 'broken' \(distribution broken-formats 1.0\) failed") as info:
        PluginRegistry(RegistrySettings(strict=True))
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_block_list_and_allow_list(fake_site: Callable[..., str]) -> None:
    """Blocked plugins are recorded but never imported; an allow list loads only what it names."""
    fake_site('broken-formats', BROKEN_IMPORT, entry_point='broken')
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good')
    registry = PluginRegistry(RegistrySettings(strict=True, block=frozenset({'broken'})))
    assert registry.get_plugin('broken').status is PluginStatus.BLOCKED
    assert registry.get_plugin('good').status is PluginStatus.LOADED

    only_good = PluginRegistry(RegistrySettings(strict=True, allow=frozenset({'good'})))
    assert only_good.get_plugin('broken').status is PluginStatus.BLOCKED
    assert only_good.list_names(Kind.ARCHIVE) == ['good.fmt']
    with pytest.raises(PluginNotFoundError, match='Blocked plugins: broken'):
        only_good.get_archive_format('broken.fmt')


def test_empty_allow_list_loads_nothing(fake_site: Callable[..., str]) -> None:
    """``PROVSTORE_PLUGINS_ALLOW=`` (set but empty) is the rescue recipe: every plugin is blocked."""
    fake_site('broken-formats', BROKEN_IMPORT, entry_point='broken')
    settings = RegistrySettings.from_environment({'PROVSTORE_PLUGINS_ALLOW': ''})
    registry = PluginRegistry(settings)
    assert registry.plugins
    assert {record.status for record in registry.plugins} == {PluginStatus.BLOCKED}


def test_settings_from_environment() -> None:
    """The PROVSTORE_PLUGINS_* variables are parsed into settings; unset means lenient, no lists, no trace."""
    assert RegistrySettings.from_environment({}) == RegistrySettings()
    settings = RegistrySettings.from_environment(
        {
            'PROVSTORE_PLUGINS_STRICT': 'yes',
            'PROVSTORE_PLUGINS_ALLOW': 'a, b,',
            'PROVSTORE_PLUGINS_BLOCK': 'c',
            'PROVSTORE_PLUGINS_TRACE': '1',
        }
    )
    assert settings == RegistrySettings(strict=True, allow=frozenset({'a', 'b'}), block=frozenset({'c'}), trace=True)


def test_trace_prints_each_step(fake_site: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    """With tracing on, loading and each hook's result are printed to stderr."""
    fake_site('good-formats', archive_plugin('good.fmt'), entry_point='good')
    PluginRegistry(RegistrySettings(trace=True))
    err = capsys.readouterr().err
    assert "loading plugin 'good' from good-formats" in err
    assert "plugin 'good' register_archive_formats() -> ['good.fmt']" in err


def test_in_process_plugins_and_the_process_registry() -> None:
    """In-process plugins are recorded as such; the module-level look-ups use the process registry."""
    registry = PluginRegistry(entry_points_group=None, in_process=[('mine', GoodPlugin)])
    record = registry.get_plugin('mine')
    assert (record.distribution, record.status) == (IN_PROCESS, PluginStatus.LOADED)
    with using_registry(registry):
        assert get_registry() is registry
        assert get_archive_format('test.good') is GoodFormat
    assert get_registry() is not registry


def test_register_plugin_fixture(register_plugin: Callable[..., PluginRegistry]) -> None:
    """The testing fixture installs an in-process plugin for one test, alongside the installed ones."""
    registry = register_plugin(GoodPlugin, name='fixture_plugin')
    assert get_registry() is registry
    assert get_archive_format('test.good') is GoodFormat
    assert registry.get_plugin('fixture_plugin').distribution == IN_PROCESS


def test_register_plugin_fixture_is_undone() -> None:
    """After the test that registered it, the in-process plugin is gone from the process registry."""
    with pytest.raises(PluginNotFoundError, match="No plugin named 'fixture_plugin'"):
        get_registry().get_plugin('fixture_plugin')


def test_unknown_plugin_name() -> None:
    """Asking for a plugin record by an unknown name lists the installed plugins."""
    registry = PluginRegistry(entry_points_group=None, in_process=[('mine', GoodPlugin)])
    with pytest.raises(PluginNotFoundError, match="No plugin named 'nope'; installed plugins: mine"):
        registry.get_plugin('nope')


def test_as_json_is_stable() -> None:
    """The JSON record carries every documented key, with every kind listed under provides."""
    registry = PluginRegistry(entry_points_group=None, in_process=[('mine', GoodPlugin)])
    assert registry.get_plugin('mine').as_json() == {
        'name': 'mine',
        'distribution': IN_PROCESS,
        'version': '',
        'value': 'GoodPlugin',
        'status': 'loaded',
        'hooks': ['register_archive_formats'],
        'provides': {'storage': [], 'repository': [], 'archive': ['test.good']},
        'error': None,
    }
