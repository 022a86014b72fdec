"""The plugin registry: finds plugins through entry points, loads each one on its own and checks what it provides.

Every entry point of the ``provstore`` group is one plugin. The registry keeps a frozen :class:`PluginRecord`
for each, whatever happened to it, so that a plugin that cannot be imported still shows up with its error.
A broken plugin costs one WARNING line and its own contribution, never the rest of the process.

Environment switches, read when the registry is built:

``PROVSTORE_PLUGINS_STRICT``
    ``1``: raise :class:`~provstore.exceptions.PluginError` at the first plugin failure (tests and CI).
``PROVSTORE_PLUGINS_ALLOW``
    Comma-separated plugin names; when set, only these load. Set but empty, none load (the rescue recipe).
``PROVSTORE_PLUGINS_BLOCK``
    Comma-separated plugin names that never load.
``PROVSTORE_PLUGINS_TRACE``
    ``1``: print each step of discovery and loading to stderr.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, cast

import pluggy

from provstore import hookspecs
from provstore.exceptions import PluginError, PluginNotFoundError

if TYPE_CHECKING:
    from provstore.archive import ArchiveFormat
    from provstore.repository import AbstractRepositoryBackend
    from provstore.storage import StorageBackend

__all__ = [
    'IN_PROCESS',
    'Kind',
    'PluginFailure',
    'PluginRecord',
    'PluginRegistry',
    'PluginStatus',
    'RegistrySettings',
    'get_archive_format',
    'get_registry',
    'get_repository_backend',
    'get_storage_backend',
    'reset_registry',
    'using_registry',
]

LOGGER = logging.getLogger(__name__)

IN_PROCESS = '<in-process>'
"""The distribution name recorded for plugins registered from code rather than found through entry points."""

NAME_PATTERN = re.compile(r'[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*')
"""Valid backend and format names: lower-case words joined by dots, e.g. ``disk_objectstore`` or ``acme.s3``."""

FIRST_PARTY_PREFIX = 'provstore-'
"""Distributions whose name starts with this (and ``provstore`` itself) are first-party: their backend and format
names need no dotted prefix. Every other plugin should name what it provides ``<prefix>.<name>`` (``acme.s3``), so
that its names never clash with first-party ones; an undotted name is a WARNING, not a failure."""


class Kind(str, enum.Enum):
    """The kinds of thing a plugin can provide, each with its registration hook and base class."""

    STORAGE = 'storage'
    REPOSITORY = 'repository'
    ARCHIVE = 'archive'

    @property
    def hook_name(self) -> str:
        """The name of the registration hook for this kind."""
        return _HOOK_NAMES[self]

    @property
    def label(self) -> str:
        """What one item of this kind is called in messages."""
        return _LABELS[self]

    @property
    def base_class(self) -> type[Any]:
        """The abstract class every item of this kind subclasses (imported on demand)."""
        module_name, class_name = _BASE_CLASSES[self].split(':')
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


_HOOK_NAMES = {
    Kind.STORAGE: 'register_storage_backends',
    Kind.REPOSITORY: 'register_repository_backends',
    Kind.ARCHIVE: 'register_archive_formats',
}
_LABELS = {Kind.STORAGE: 'storage backend', Kind.REPOSITORY: 'repository backend', Kind.ARCHIVE: 'archive format'}
_BASE_CLASSES = {
    Kind.STORAGE: 'provstore.storage:StorageBackend',
    Kind.REPOSITORY: 'provstore.repository:AbstractRepositoryBackend',
    Kind.ARCHIVE: 'provstore.archive:ArchiveFormat',
}


class PluginStatus(str, enum.Enum):
    """What became of a plugin."""

    LOADED = 'loaded'
    FAILED = 'failed'
    BLOCKED = 'blocked'
    DUPLICATE = 'duplicate'


@dataclass(frozen=True)
class PluginFailure:
    """Why a plugin failed: the stage (import, register, call, validate or duplicate), the error type and message."""

    stage: str
    type: str
    message: str

    def __str__(self) -> str:
        return f'{self.type} at {self.stage}: {self.message}'


@dataclass(frozen=True)
class PluginRecord:
    """Everything known about one plugin. ``provides`` maps each kind to the names it contributes."""

    name: str
    distribution: str
    version: str
    value: str
    status: PluginStatus
    hooks: tuple[str, ...] = ()
    provides: Mapping[Kind, tuple[str, ...]] = field(default_factory=dict)
    error: PluginFailure | None = None

    @property
    def origin(self) -> str:
        """``plugin 'name' (distribution dist version)``, for messages."""
        return f'plugin {self.name!r} (distribution {self.distribution} {self.version})'

    def as_json(self) -> dict[str, Any]:
        """Return the stable JSON form used by ``provstore plugins list --json``."""
        return {
            'name': self.name,
            'distribution': self.distribution,
            'version': self.version,
            'value': self.value,
            'status': self.status.value,
            'hooks': list(self.hooks),
            'provides': {kind.value: list(self.provides.get(kind, ())) for kind in Kind},
            'error': None if self.error is None else vars(self.error),
        }


@dataclass(frozen=True)
class RegistrySettings:
    """The switches of :mod:`provstore.registry`, normally read from the environment."""

    strict: bool = False
    allow: frozenset[str] | None = None
    block: frozenset[str] = frozenset()
    trace: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RegistrySettings:
        """Read the ``PROVSTORE_PLUGINS_*`` variables."""
        environ = os.environ if environ is None else environ
        allow = environ.get('PROVSTORE_PLUGINS_ALLOW')
        return cls(
            strict=_is_true(environ.get('PROVSTORE_PLUGINS_STRICT', '')),
            allow=None if allow is None else _name_set(allow),
            block=_name_set(environ.get('PROVSTORE_PLUGINS_BLOCK', '')),
            trace=_is_true(environ.get('PROVSTORE_PLUGINS_TRACE', '')),
        )


@dataclass(frozen=True)
class _Candidate:
    """A plugin to load: from an entry point, or an object registered in-process."""

    name: str
    distribution: str
    version: str
    value: str
    load: Callable[[], object]


class PluginRegistry:
    """The plugins of this process and what they provide, keyed by kind and name."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        *,
        entry_points_group: str | None = hookspecs.PROJECT_NAME,
        in_process: Iterable[tuple[str, object]] = (),
    ) -> None:
        """Discover and load plugins.

        :param settings: the switches; read from the environment when ``None``.
        :param entry_points_group: the entry-point group to read; ``None`` reads none (only ``in_process``).
        :param in_process: ``(name, plugin)`` pairs registered as if found through entry points (tests).
        """
        self.settings = RegistrySettings.from_environment() if settings is None else settings
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self._records: dict[str, PluginRecord] = {}
        self._provided: dict[Kind, dict[str, tuple[type[Any], str]]] = {kind: {} for kind in Kind}
        self._claimed: dict[Kind, dict[str, list[str]]] = {kind: {} for kind in Kind}

        candidates = list(_discover(entry_points_group)) if entry_points_group else []
        candidates.extend(_in_process_candidate(name, plugin) for name, plugin in in_process)
        self._load_all(candidates)

    # -- queries ----------------------------------------------------------------------------------------------

    @property
    def plugins(self) -> tuple[PluginRecord, ...]:
        """Every plugin found, whatever its status, sorted by name."""
        return tuple(self._records[name] for name in sorted(self._records))

    def get_plugin(self, name: str) -> PluginRecord:
        """Return the record of the plugin called ``name``.

        :raises PluginNotFoundError: if there is no such plugin.
        """
        try:
            return self._records[name]
        except KeyError:
            known = ', '.join(sorted(self._records)) or 'none'
            raise PluginNotFoundError(f'No plugin named {name!r}; installed plugins: {known}') from None

    def list_names(self, kind: Kind) -> list[str]:
        """Return the sorted names of every available item of ``kind``."""
        return sorted(self._provided[kind])

    def provider_of(self, kind: Kind, name: str) -> PluginRecord:
        """Return the record of the plugin that provides ``name`` of ``kind``."""
        self.get(kind, name)
        return self._records[self._provided[kind][name][1]]

    def get(self, kind: Kind, name: str) -> type[Any]:
        """Return the class registered as ``name`` for ``kind``.

        :raises PluginNotFoundError: naming what is installed, or the plugin that failed to provide it and why.
        """
        if name in self._provided[kind]:
            return self._provided[kind][name][0]
        raise PluginNotFoundError(self._explain_missing(kind, name))

    def get_storage_backend(self, name: str) -> type[StorageBackend]:
        """Return the storage backend class called ``name``."""
        return cast('type[StorageBackend]', self.get(Kind.STORAGE, name))

    def get_repository_backend(self, name: str) -> type[AbstractRepositoryBackend]:
        """Return the repository backend class called ``name``."""
        return cast('type[AbstractRepositoryBackend]', self.get(Kind.REPOSITORY, name))

    def get_archive_format(self, name: str) -> type[ArchiveFormat]:
        """Return the archive format class called ``name``."""
        return cast('type[ArchiveFormat]', self.get(Kind.ARCHIVE, name))

    def _explain_missing(self, kind: Kind, name: str) -> str:
        claimants = [self._records[plugin] for plugin in self._claimed[kind].get(name, ())]
        if claimants:
            reasons = '; '.join(f'{record.origin} {record.status.value}: {record.error}' for record in claimants)
            return f'{kind.label.capitalize()} {name!r} is unavailable: {reasons}'
        installed = ', '.join(self.list_names(kind)) or 'none'
        message = f'No {kind.label} named {name!r}; installed: {installed}'
        broken = [record for record in self.plugins if record.status in (PluginStatus.FAILED, PluginStatus.DUPLICATE)]
        if broken:
            message += '. Plugins that failed and may provide it: ' + '; '.join(
                f'{record.origin}: {record.error}' for record in broken
            )
        blocked = [record.name for record in self.plugins if record.status is PluginStatus.BLOCKED]
        if blocked:
            message += f'. Blocked plugins: {", ".join(blocked)}'
        return message

    # -- loading ----------------------------------------------------------------------------------------------

    def _load_all(self, candidates: list[_Candidate]) -> None:
        by_name: dict[str, list[_Candidate]] = {}
        for candidate in candidates:
            by_name.setdefault(candidate.name, []).append(candidate)

        contributions: dict[str, dict[Kind, list[type[Any]]]] = {}
        for name in sorted(by_name):
            group = by_name[name]
            if len(group) > 1:
                self._record_duplicates(group)
            elif self._is_blocked(name):
                self._trace(f'plugin {name!r} is blocked')
                self._records[name] = _record(group[0], PluginStatus.BLOCKED)
            else:
                provided = self._load_one(group[0])
                if provided is not None:
                    contributions[name] = provided

        self._settle_clashes(contributions)
        self._manager.check_pending()

    def _is_blocked(self, name: str) -> bool:
        allow = self.settings.allow
        return name in self.settings.block or (allow is not None and name not in allow)

    def _record_duplicates(self, group: list[_Candidate]) -> None:
        sources = ' and '.join(f'{c.distribution} {c.version} ({c.value})' for c in group)
        message = f'plugin name {group[0].name!r} is declared by {sources}'
        failure = PluginFailure('duplicate', 'DuplicatePlugin', message)
        for candidate in group:
            self._fail(_record(candidate, PluginStatus.DUPLICATE, error=failure), None)

    def _load_one(self, candidate: _Candidate) -> dict[Kind, list[type[Any]]] | None:
        """Import, register and call one plugin; return its validated contributions, or None when it failed."""
        self._trace(f'loading plugin {candidate.name!r} from {candidate.distribution} ({candidate.value})')
        stage = 'import'
        try:
            plugin = candidate.load()
            stage = 'register'
            hooks = self._register(candidate.name, plugin)
            provided: dict[Kind, list[type[Any]]] = {}
            for kind in Kind:
                if kind.hook_name not in hooks:
                    continue
                stage = 'call'
                result = self._hook_function(kind, plugin)()
                stage = 'validate'
                provided[kind] = _validate(kind, result)
                self._trace(f'plugin {candidate.name!r} {kind.hook_name}() -> {[c.name for c in provided[kind]]}')
        except Exception as exc:
            if stage != 'import':
                self._unregister(candidate.name)
            failure = PluginFailure(stage, type(exc).__name__, _one_line(exc))
            self._fail(_record(candidate, PluginStatus.FAILED, error=failure), exc)
            return None
        self._warn_undotted_names(candidate, provided)
        self._records[candidate.name] = _record(
            candidate,
            PluginStatus.LOADED,
            hooks=tuple(sorted(hooks)),
            provides={kind: tuple(sorted(cls.name for cls in classes)) for kind, classes in provided.items()},
        )
        return provided

    def _warn_undotted_names(self, candidate: _Candidate, provided: dict[Kind, list[type[Any]]]) -> None:
        """Log one WARNING when a third-party plugin provides a name without a dotted prefix."""
        if _is_first_party(candidate.distribution):
            return
        undotted = [(kind, cls.name) for kind, classes in provided.items() for cls in classes if '.' not in cls.name]
        if undotted:
            named = ', '.join(f'{kind.label} {name!r}' for kind, name in undotted)
            LOGGER.warning(
                'provstore: plugin %r (distribution %s) provides %s without a dotted prefix; third-party names '
                "read <prefix>.<name> (like %r) so that they never clash with provstore's own",
                candidate.name,
                candidate.distribution,
                named,
                f'{candidate.name}.{undotted[0][1]}',
            )

    def _register(self, name: str, plugin: object) -> set[str]:
        """Register ``plugin`` with pluggy and return the names of the hooks it implements."""
        self._manager.register(plugin, name=name)
        hooks = set()
        for caller in self._manager.get_hookcallers(plugin) or ():
            if not caller.has_spec():
                raise PluginError(f'implements {caller.name!r}, which is not a provstore hook')
            hooks.add(caller.name)
        for impl in self._impls(plugin):
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f'{impl.function.__name__} is a wrapper; registration hooks must not be wrappers')
        return hooks

    def _impls(self, plugin: object) -> list[pluggy.HookImpl]:
        callers = self._manager.get_hookcallers(plugin) or []
        return [impl for caller in callers for impl in caller.get_hookimpls() if impl.plugin is plugin]

    def _hook_function(self, kind: Kind, plugin: object) -> Callable[[], object]:
        # NOTE: each implementation is called on its own, not through pluggy's 1:N hook call, so that a
        # result or an exception is always tied to the plugin that produced it.
        caller = getattr(self._manager.hook, kind.hook_name)
        (impl,) = (impl for impl in caller.get_hookimpls() if impl.plugin is plugin)
        return impl.function  # type: ignore[no-any-return]

    def _unregister(self, name: str) -> None:
        if self._manager.get_plugin(name) is not None:
            self._manager.unregister(name=name)

    def _settle_clashes(self, contributions: dict[str, dict[Kind, list[type[Any]]]]) -> None:
        """Make every provided name available, except names two plugins both claim: those plugins fail."""
        for plugin, provided in contributions.items():
            for kind, classes in provided.items():
                for cls in classes:
                    self._claimed[kind].setdefault(cls.name, []).append(plugin)
        clashing: dict[str, list[str]] = {}
        for kind in Kind:
            for name, plugins in self._claimed[kind].items():
                if len(plugins) > 1:
                    for plugin in plugins:
                        others = ' and '.join(self._records[other].origin for other in plugins if other != plugin)
                        clashing.setdefault(plugin, []).append(f'{kind.label} {name!r} is also provided by {others}')
        for plugin, provided in contributions.items():
            if plugin in clashing:
                self._unregister(plugin)
                failure = PluginFailure('validate', 'NameClash', '; '.join(clashing[plugin]))
                record = self._records[plugin]
                self._fail(dataclasses.replace(record, status=PluginStatus.FAILED, provides={}, error=failure), None)
                continue
            for kind, classes in provided.items():
                for cls in classes:
                    self._provided[kind][cls.name] = (cls, plugin)

    def _fail(self, record: PluginRecord, exc: BaseException | None) -> None:
        self._records[record.name] = record
        message = f'provstore: {record.origin} {record.status.value}: {record.error}'
        if self.settings.strict:
            raise PluginError(message) from exc
        LOGGER.warning('%s (see `provstore plugins show %s`)', message, record.name)

    def _trace(self, message: str) -> None:
        if self.settings.trace:
            print(f'provstore.registry: {message}', file=sys.stderr)


def _discover(group: str) -> Iterable[_Candidate]:
    """Yield a candidate for each entry point of ``group`` (distributions deduplicated as Python imports them)."""
    for entry_point in entry_points(group=group):
        dist = entry_point.dist
        yield _Candidate(
            name=entry_point.name,
            distribution=dist.name if dist is not None else '<unknown>',
            version=dist.version if dist is not None else '<unknown>',
            value=entry_point.value,
            load=entry_point.load,
        )


def _in_process_candidate(name: str, plugin: object) -> _Candidate:
    value = getattr(plugin, '__name__', type(plugin).__qualname__)
    return _Candidate(name=name, distribution=IN_PROCESS, version='', value=value, load=lambda: plugin)


def _validate(kind: Kind, result: object) -> list[type[Any]]:
    """Check one registration hook's result and return it as a list of classes."""
    if not isinstance(result, list):
        raise PluginError(f'{kind.hook_name}() must return a list of classes, got {type(result).__name__}')
    base = kind.base_class
    seen: set[str] = set()
    for item in result:
        if not inspect.isclass(item):
            raise PluginError(f'{kind.hook_name}() returned {item!r}, which is not a class')
        if not issubclass(item, base):
            raise PluginError(f'{item.__qualname__} is not a subclass of {base.__module__}.{base.__qualname__}')
        if inspect.isabstract(item):
            missing = ', '.join(sorted(getattr(item, '__abstractmethods__', ())))
            raise PluginError(f'{item.__qualname__} is abstract; it does not implement {missing}')
        name = getattr(item, 'name', None)
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise PluginError(
                f'{item.__qualname__}.name must be lower-case words joined by dots (like acme.s3), got {name!r}'
            )
        if name in seen:
            raise PluginError(f'{kind.hook_name}() returned two {kind.label}s named {name!r}')
        seen.add(name)
    return list(result)


def _is_first_party(distribution: str) -> bool:
    """Whether ``distribution`` is provstore's own (``provstore`` or ``provstore-<name>``, any spelling)."""
    normalized = re.sub(r'[-_.]+', '-', distribution).lower()
    return normalized == 'provstore' or normalized.startswith(FIRST_PARTY_PREFIX)


def _record(candidate: _Candidate, status: PluginStatus, **fields: Any) -> PluginRecord:
    return PluginRecord(
        name=candidate.name,
        distribution=candidate.distribution,
        version=candidate.version,
        value=candidate.value,
        status=status,
        **fields,
    )


def _one_line(exc: BaseException) -> str:
    return ' '.join(str(exc).split()) or repr(exc)


def _is_true(value: str) -> bool:
    return value.strip().lower() in ('1', 'true', 'yes', 'on')


def _name_set(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(',') if part.strip())


# -- the registry of this process -----------------------------------------------------------------------------

_REGISTRY: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """Return the registry of this process, building it on first use."""
    global _REGISTRY  # noqa: PLW0603 - one registry per process, built lazily
    if _REGISTRY is None:
        _REGISTRY = PluginRegistry()
    return _REGISTRY


def reset_registry(registry: PluginRegistry | None = None) -> None:
    """Forget the registry of this process (it is rebuilt on next use), or install ``registry`` instead."""
    global _REGISTRY  # noqa: PLW0603
    _REGISTRY = registry


@contextmanager
def using_registry(registry: PluginRegistry) -> Iterator[PluginRegistry]:
    """Make ``registry`` the registry of this process inside the block, and restore the previous one after."""
    global _REGISTRY  # noqa: PLW0603
    previous, _REGISTRY = _REGISTRY, registry
    try:
        yield registry
    finally:
        _REGISTRY = previous


def get_storage_backend(name: str) -> type[StorageBackend]:
    """Return the storage backend class called ``name`` from the registry of this process."""
    return get_registry().get_storage_backend(name)


def get_repository_backend(name: str) -> type[AbstractRepositoryBackend]:
    """Return the repository backend class called ``name`` from the registry of this process."""
    return get_registry().get_repository_backend(name)


def get_archive_format(name: str) -> type[ArchiveFormat]:
    """Return the archive format class called ``name`` from the registry of this process."""
    return get_registry().get_archive_format(name)
