"""The attributes and extras of a node: two JSON objects of top-level keys.

Attributes describe what a node *is*: they are frozen once the node is stored (a process node may still
change its state keys until it is sealed). Extras are annotations, always mutable: on a stored node each change
is one atomic update on the server (:meth:`~provstore.storage.EntityStorage.patch_node_json`), so two processes
setting different keys of the same node both keep theirs.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from provstore.orm.entities import check_writable, clean_json_object
from provstore.orm.validation import check_rows

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node

__all__ = ['NO_DEFAULT', 'NodeAttributes', 'NodeExtras']


class _NoDefault(enum.Enum):
    NO_DEFAULT = enum.auto()


NO_DEFAULT = _NoDefault.NO_DEFAULT
"""Marks "no default given": ``get()`` then raises ``AttributeError`` for a missing key."""


class JsonColumn:
    """A view of one JSON column of a node (or a group's extras); the entity keeps the values."""

    _column: ClassVar[Literal['attributes', 'extras']]
    _what: ClassVar[str]

    def __init__(self, node: Any) -> None:
        self._node = node

    def __repr__(self) -> str:
        return f'<{type(self).__name__} of {self._node!r}: {sorted(self._data())}>'

    def _data(self) -> dict[str, Any]:
        raise NotImplementedError

    def _check_mutable(self, keys: Iterable[str]) -> None:
        """Raise :class:`~provstore.orm.exceptions.ModificationNotAllowedError` if ``keys`` may not change."""

    # -- reading ----------------------------------------------------------------------------------------------

    def get(self, key: str, default: Any = NO_DEFAULT) -> Any:
        """Return (a copy of) the value of ``key``, or ``default`` when it is missing.

        :raises AttributeError: if ``key`` is missing and no default is given.
        """
        data = self._data()
        if key not in data:
            if default is NO_DEFAULT:
                raise AttributeError(f'{self._node!r} has no {self._what} {key!r}')
            return default
        value = data[key]
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value

    def get_many(self, keys: Iterable[str]) -> list[Any]:
        """Return the values of ``keys``, in order.

        :raises AttributeError: naming the first missing key.
        """
        return [self.get(key) for key in keys]

    @property
    def all(self) -> dict[str, Any]:
        """A copy of every key and value."""
        return copy.deepcopy(self._data())

    def keys(self) -> list[str]:
        """Return the keys."""
        return list(self._data())

    def items(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, value)`` pairs (values are copies)."""
        for key in list(self._data()):
            yield key, self.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data()

    def __len__(self) -> int:
        return len(self._data())

    # -- writing ----------------------------------------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to (a JSON copy of) ``value``; on a stored node it is saved at once."""
        self.set_many({key: value})

    def set_many(self, values: Mapping[str, Any]) -> None:
        """Set several keys at once: on a stored node, in one atomic update."""
        cleaned = clean_json_object(values, self._what)
        self._check_mutable(cleaned)
        self._write(cleaned, [])

    def delete(self, key: str) -> None:
        """Delete ``key``.

        :raises AttributeError: if there is no such key.
        """
        self.delete_many([key])

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys at once: on a stored node, in one atomic update.

        :raises AttributeError: naming the missing keys; nothing is deleted then.
        """
        keys = list(dict.fromkeys(keys))
        missing = [key for key in keys if key not in self._data()]
        if missing:
            raise AttributeError(f'{self._node!r} has no {self._what} {", ".join(map(repr, missing))}')
        self._check_mutable(keys)
        self._write({}, keys)

    def reset(self, values: Mapping[str, Any]) -> None:
        """Replace every key and value by ``values``."""
        cleaned = clean_json_object(values, self._what)
        self._check_mutable(set(cleaned) | set(self._data()))
        node = self._node
        if node.pk is not None:
            storage = node.storage
            check_writable(storage)
            row = {'id': node.pk, self._column: cleaned}
            check_rows(node._entity_type, [row])
            with storage.transaction():
                storage.update_rows(node._entity_type, [row])
        data = self._data()
        data.clear()
        data.update(cleaned)

    def clear(self) -> None:
        """Delete every key."""
        self.reset({})

    def _write(self, set_keys: dict[str, Any], delete_keys: list[str]) -> None:
        node = self._node
        if node.pk is not None:
            storage = node.storage
            check_writable(storage)
            check_rows(node._entity_type, [{'id': node.pk, self._column: set_keys}])
            with storage.transaction():
                storage.patch_node_json(node.pk, self._column, set_keys, delete_keys)
        data = self._data()
        data.update(set_keys)
        for key in delete_keys:
            data.pop(key, None)


class NodeAttributes(JsonColumn):
    """The attributes of a node: frozen once it is stored (except a process node's state keys, until sealed)."""

    _column = 'attributes'
    _what = 'attribute'

    def _data(self) -> dict[str, Any]:
        node: Node = self._node
        return node._attributes

    def _check_mutable(self, keys: Iterable[str]) -> None:
        self._node._check_attributes_mutable(list(keys))


class NodeExtras(JsonColumn):
    """The extras of a node: always mutable; each change of a stored node is one atomic update on the server."""

    _column = 'extras'
    _what = 'extra'

    def _data(self) -> dict[str, Any]:
        node: Node = self._node
        return node._extras
