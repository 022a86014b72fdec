"""Options declared as data: what a backend can be configured with, checked once, shown by the CLI.

A storage backend lists its :class:`Option` objects in ``options``; ``provstore profile setup`` builds its
command-line flags from them and :func:`validate_options` checks a profile's values against them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provstore.exceptions import ConfigError

__all__ = ['REQUIRED', 'SECRET_MASK', 'Option', 'mask_secrets', 'validate_options']

REQUIRED: Any = type('Required', (), {'__repr__': lambda self: 'REQUIRED'})()
"""The default of an option that has none: a value must be given."""

SECRET_MASK = '********'
"""What is printed in place of a secret value."""

_TYPES: dict[type, str] = {str: 'text', int: 'integer', float: 'number', bool: 'true/false', dict: 'JSON object'}


@dataclass(frozen=True)
class Option:
    """One setting of a backend: its name, type, default, help and whether it is secret.

    ``name`` is the key in the configuration file and, with dashes, the command-line flag
    (``database_port`` → ``--database-port``).
    """

    name: str
    type: type = str
    default: Any = REQUIRED
    help: str = ''
    secret: bool = False
    choices: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f'option {self.name!r}: type must be one of {sorted(t.__name__ for t in _TYPES)}')

    @property
    def required(self) -> bool:
        """Whether a value must be given."""
        return self.default is REQUIRED

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--database-port``."""
        return '--' + self.name.replace('_', '-')

    def convert(self, value: Any, where: str) -> Any:
        """Return ``value`` as this option's type, or raise :class:`ConfigError` naming ``where`` and the option.

        Strings are accepted for every type (they come from the command line or the environment).
        """
        try:
            converted = self._convert(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f'{where}: option {self.name!r} must be {_TYPES[self.type]}, got {value!r} ({exc})'
            ) from None
        if self.choices and converted not in self.choices:
            raise ConfigError(f'{where}: option {self.name!r} must be one of {", ".join(self.choices)}, got {value!r}')
        return converted

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ('1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'):
                return value.lower() in ('1', 'true', 'yes', 'on')
            raise ValueError('not a boolean')
        if self.type is dict:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError('not an object')
            return parsed
        if self.type is int and (isinstance(value, bool) or isinstance(value, float)):
            raise ValueError('not an integer')
        if self.type is str and not isinstance(value, str):
            raise ValueError('not text')
        return self.type(value)


def validate_options(options: Sequence[Option], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check ``values`` against ``options`` and return them converted, with defaults filled in.

    :param where: what the values belong to, for messages (``"profile 'x' in /path/config.json"``).
    :raises ConfigError: for an unknown key, a missing required option or a value of the wrong type.
    """
    declared = {option.name: option for option in options}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        known = ', '.join(sorted(declared)) or 'none'
        raise ConfigError(f'{where}: unknown option(s) {", ".join(unknown)}; known options: {known}')
    result: dict[str, Any] = {}
    for option in options:
        if option.name in values and values[option.name] is not None:
            result[option.name] = option.convert(values[option.name], where)
        elif option.required:
            raise ConfigError(f'{where}: option {option.name!r} is required ({option.help or option.flag})')
        else:
            result[option.name] = option.default
    return result


def mask_secrets(options: Sequence[Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``values`` with every secret option's value replaced by :data:`SECRET_MASK`.

    Keys that are not declared but look like secrets (``password``, ``secret``, ``token``) are masked too.
    """
    secret = {option.name for option in options if option.secret}

    def is_secret(key: str) -> bool:
        return key in secret or any(word in key.lower() for word in ('password', 'secret', 'token'))

    return {key: SECRET_MASK if is_secret(key) and value not in (None, '') else value for key, value in values.items()}
