"""The configuration file: profiles by name and the default one.

The file is ``config.json`` in ``$PROVSTORE_PATH``, or ``~/.provstore`` when that is unset. It is JSON with a
``version``; files written by an older provstore are upgraded when read, and the original is kept beside the
new one (``config.json.v<N>.bak``) the first time an upgraded file is written. Every write goes to a temporary
file that is flushed, synced and renamed over the old one, under a lock, so concurrent writers never lose each
other's changes and a crash never leaves half a file. The folder is readable by its owner only (0700), and so
is the file (0600): profiles hold database passwords.

Layout of version 1::

    {"version": 1,
     "default_profile": "scratch",
     "profiles": {"scratch": {"uuid": "<hex>",
                              "storage": {"backend": "sqlite_dos", "config": {...}},
                              "default_user_email": "me@example.org",
                              "options": {}}}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provstore.exceptions import ConfigError, ProfileNotFoundError
from provstore.files import write_atomically

__all__ = [
    'CONFIG_FILENAME',
    'CONFIG_VERSION',
    'Config',
    'Profile',
    'edit_config',
    'get_config_dir',
    'load_config',
]

CONFIG_VERSION = 1
"""The version of the layout this code writes."""

CONFIG_FILENAME = 'config.json'

PROFILE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
"""Profile names double as folder names: letters, digits, ``_``, ``.`` and ``-``, not starting with a symbol."""

LOCK_TIMEOUT = 60.0
"""Seconds a writer waits for another writer of the same config file before giving up."""


def get_config_dir() -> Path:
    """Return the configuration folder: ``$PROVSTORE_PATH``, else ``~/.provstore``."""
    configured = os.environ.get('PROVSTORE_PATH')
    return Path(configured).expanduser().absolute() if configured else Path.home() / '.provstore'


@dataclass(frozen=True)
class Profile:
    """A named storage: which backend, its options, and what else a user works with.

    ``storage_config`` holds the backend's options as declared by the backend class; for backends with a file
    repository that includes the repository backend's name and options. ``folder`` is the profile's own
    folder inside the configuration folder: its lock file lives there, and so does the data of embedded
    backends.
    """

    name: str
    storage_backend: str
    storage_config: Mapping[str, Any] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: uuid_module.uuid4().hex)
    default_user_email: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    folder: Path = field(default=Path(), compare=False)

    def __post_init__(self) -> None:
        if not PROFILE_NAME.fullmatch(self.name):
            raise ConfigError(
                f'invalid profile name {self.name!r}: use up to 64 letters, digits, "_", "." or "-", '
                'starting with a letter or digit'
            )

    def as_json(self) -> dict[str, Any]:
        """Return the profile as stored in the config file (without its name, which is the key)."""
        return {
            'uuid': self.uuid,
            'storage': {'backend': self.storage_backend, 'config': dict(self.storage_config)},
            'default_user_email': self.default_user_email,
            'options': dict(self.options),
        }


@dataclass
class Config:
    """The parsed configuration file. Change it only inside :func:`edit_config`, which writes it back."""

    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)
    default_profile: str | None = None
    read_version: int = CONFIG_VERSION
    """The version of the file as it was on disk (lower than :data:`CONFIG_VERSION` when upgraded on read)."""

    @property
    def folder(self) -> Path:
        """The configuration folder."""
        return self.path.parent

    def profile_folder(self, name: str) -> Path:
        """Return the folder of the profile called ``name``."""
        return self.folder / 'profiles' / name

    def get_profile(self, name: str | None = None) -> Profile:
        """Return the profile called ``name``, or the default profile when ``name`` is ``None``.

        :raises ProfileNotFoundError: naming the profiles that exist.
        """
        if name is None:
            if self.default_profile is None:
                raise ProfileNotFoundError(
                    f'No default profile in {self.path}; create one with `provstore quickstart` or '
                    '`provstore profile setup`'
                )
            name = self.default_profile
        try:
            return self.profiles[name]
        except KeyError:
            known = ', '.join(sorted(self.profiles)) or 'none'
            raise ProfileNotFoundError(f'No profile named {name!r} in {self.path}; profiles: {known}') from None

    def add_profile(self, profile: Profile, set_default: bool = False) -> Profile:
        """Add ``profile`` (its folder set from this config); it becomes the default if asked or if it is the first.

        :raises ConfigError: if a profile of that name exists.
        """
        if profile.name in self.profiles:
            raise ConfigError(f'A profile named {profile.name!r} already exists in {self.path}')
        profile = dataclasses.replace(profile, folder=self.profile_folder(profile.name))
        self.profiles[profile.name] = profile
        if set_default or self.default_profile is None:
            self.default_profile = profile.name
        return profile

    def remove_profile(self, name: str) -> Profile:
        """Remove and return the profile called ``name``; if it was the default, no profile is default any more."""
        profile = self.get_profile(name)
        del self.profiles[name]
        if self.default_profile == name:
            self.default_profile = None
        return profile

    def set_default_profile(self, name: str) -> None:
        """Make the existing profile ``name`` the default."""
        self.get_profile(name)
        self.default_profile = name

    def as_json(self) -> dict[str, Any]:
        """Return the file's content, in the current layout."""
        return {
            'version': CONFIG_VERSION,
            'default_profile': self.default_profile,
            'profiles': {name: self.profiles[name].as_json() for name in sorted(self.profiles)},
        }


def load_config(folder: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the configuration file in ``folder`` (default :func:`get_config_dir`).

    A missing file is an empty configuration. Nothing is written.

    :raises ConfigError: naming the file and the problem, for unreadable, malformed or newer files.
    """
    path = Path(folder).absolute() if folder is not None else get_config_dir()
    path = path / CONFIG_FILENAME
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return Config(path)
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read the configuration file: {exc.strerror or exc}') from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f'{path}: not a configuration file: byte {exc.start} is not UTF-8 text') from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f'{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})') from None
    except RecursionError:
        raise ConfigError(f'{path}: not a configuration file: JSON nested too deeply') from None
    return _parse(path, data)


@contextlib.contextmanager
def edit_config(folder: str | os.PathLike[str] | None = None, timeout: float = LOCK_TIMEOUT) -> Iterator[Config]:
    """Lock the configuration file, read it, let the block change it, and write it back atomically.

    Concurrent editors (threads or processes) take turns, so none loses another's changes. If the block
    raises, nothing is written.
    """
    config_dir = Path(folder).absolute() if folder is not None else get_config_dir()
    _make_private_folder(config_dir)
    with _locked(config_dir / f'{CONFIG_FILENAME}.lock', timeout):
        config = load_config(config_dir)
        yield config
        if config.read_version < CONFIG_VERSION and config.path.exists():
            backup = config.path.with_name(f'{CONFIG_FILENAME}.v{config.read_version}.bak')
            if not backup.exists():
                write_atomically(backup, config.path.read_bytes())
        write_atomically(config.path, (json.dumps(config.as_json(), indent=2) + '\n').encode())
        config.read_version = CONFIG_VERSION


# -- parsing and upgrading ------------------------------------------------------------------------------------


def _upgrade_from_0(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the pre-release layout) had no ``version`` and flat ``storage_backend``/``storage_config`` keys."""
    profiles = {}
    for name, entry in _expect(data.get('profiles', {}), dict, 'profiles').items():
        profile = _expect(entry, dict, f'profiles.{name}')
        profiles[name] = {
            'uuid': profile.get('uuid') or uuid_module.uuid4().hex,
            'storage': {'backend': profile.get('storage_backend'), 'config': profile.get('storage_config', {})},
            'default_user_email': profile.get('default_user_email'),
            'options': profile.get('options', {}),
        }
    return {'version': 1, 'default_profile': data.get('default_profile'), 'profiles': profiles}


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _upgrade_from_0}
"""``UPGRADES[n]`` turns a version ``n`` layout into version ``n + 1``."""


def _parse(path: Path, data: Any) -> Config:
    try:
        data = _expect(data, dict, 'the top level')
        version = data.get('version', 0)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise _InvalidContentError(f'version must be a non-negative integer, got {version!r}')
        if version > CONFIG_VERSION:
            raise _InvalidContentError(
                f'written by a newer provstore (config version {version}); this one reads up to {CONFIG_VERSION}. '
                'Upgrade provstore; the file was left as it is'
            )
        read_version = version
        while version < CONFIG_VERSION:
            data = UPGRADES[version](data)
            version += 1
        unknown = set(data) - {'version', 'default_profile', 'profiles'}
        if unknown:
            raise _InvalidContentError(f'unknown top-level key(s) {", ".join(sorted(unknown))}')
        config = Config(path, read_version=read_version)
        for name, entry in _expect(data.get('profiles', {}), dict, 'profiles').items():
            config.profiles[name] = _parse_profile(name, entry, config.profile_folder(name))
        default = data.get('default_profile')
        if default is not None and default not in config.profiles:
            raise _InvalidContentError(f'default_profile {default!r} is not one of the profiles')
        config.default_profile = default
    except _InvalidContentError as exc:
        raise ConfigError(f'{path}: {exc}') from None
    except ConfigError as exc:
        raise ConfigError(f'{path}: {exc}') from None
    return config


def _parse_profile(name: str, entry: Any, folder: Path) -> Profile:
    where = f'profiles.{name}'
    entry = _expect(entry, dict, where)
    unknown = set(entry) - {'uuid', 'storage', 'default_user_email', 'options'}
    if unknown:
        raise _InvalidContentError(f'{where}: unknown key(s) {", ".join(sorted(unknown))}')
    storage = _expect(entry.get('storage'), dict, f'{where}.storage')
    email = entry.get('default_user_email')
    if email is not None:
        _expect(email, str, f'{where}.default_user_email')
    return Profile(
        name=name,
        storage_backend=_expect(storage.get('backend'), str, f'{where}.storage.backend'),
        storage_config=_expect(storage.get('config', {}), dict, f'{where}.storage.config'),
        uuid=_expect(entry.get('uuid'), str, f'{where}.uuid'),
        default_user_email=email,
        options=_expect(entry.get('options', {}), dict, f'{where}.options'),
        folder=folder,
    )


class _InvalidContentError(Exception):
    """A problem in the file's content; turned into a ConfigError naming the file."""


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {dict: 'an object', str: 'a string', int: 'an integer', list: 'a list'}
        raise _InvalidContentError(f'{where} must be {names.get(kind, kind.__name__)}, got {json.dumps(value)}')
    return value


# -- files ----------------------------------------------------------------------------------------------------


def _make_private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` for the block, waiting up to ``timeout`` seconds for it."""
    import fcntl  # noqa: PLC0415 - POSIX only; imported where needed

    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(f'{path}: another process has held the config lock for {timeout:.0f} s') from None
                time.sleep(0.01)
        yield
    finally:
        os.close(descriptor)
