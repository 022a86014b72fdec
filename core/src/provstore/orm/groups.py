"""Groups of nodes. A group is unique by (label, type_string); adding or removing many nodes is one statement."""

from __future__ import annotations

import copy
import datetime
import uuid as uuid_module
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from provstore.orm.entities import (
    BATCH_SIZE,
    Collection,
    CollectionDescriptor,
    Entity,
    SavedField,
    check_writable,
    clean_json,
    clean_json_key,
    utc_now,
)
from provstore.orm.exceptions import ModificationNotAllowedError, UniquenessError, UnstoredEntityError
from provstore.orm.node_classes import nodes_from_rows
from provstore.orm.nodes.attributes import JsonColumn
from provstore.orm.nodes.node import Node
from provstore.orm.users import User, get_default_user
from provstore.storage import EntityStorage, EntityType, Row

__all__ = ['Group', 'GroupBase', 'GroupCollection', 'GroupExtras']


class GroupCollection(Collection['Group']):
    """The groups of a storage."""

    def get_or_create(self, label: str, type_string: str = 'core') -> tuple[Group, bool]:
        """Return the group with ``label`` and ``type_string`` and whether it was created just now."""
        found = self.find(label=label, type_string=type_string)
        if found:
            return found[0], False
        return Group(label, type_string=type_string, storage=self.storage).store(), True

    def _delete(self, entity: Group) -> None:
        assert entity.pk is not None
        members = self.storage.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', [entity.pk])
        self.storage.remove_group_nodes(entity.pk, [row['dbnode_id'] for row in members])
        self.storage.delete_rows(EntityType.GROUP, [entity.pk])


class GroupExtras(JsonColumn):
    """The extras of a group, as a node's (``get``, ``set``, ``set_many``, ``delete``, ``all``...).

    NOTE: the storage interface has no atomic patch for groups: each change writes the whole column back.
    """

    _column = 'extras'
    _what = 'extra'

    def _data(self) -> dict[str, Any]:
        group: Group = self._node
        return group._extras

    def _write(self, set_keys: dict[str, Any], delete_keys: list[str]) -> None:
        group: Group = self._node
        extras = {key: value for key, value in {**group._extras, **set_keys}.items() if key not in delete_keys}
        group._save(extras=extras)
        group._extras = extras


class GroupBase:
    """What a group has beside its fields, as aiida-core's ``group.base``: its ``extras``."""

    def __init__(self, group: Group) -> None:
        self._group = group

    @property
    def extras(self) -> GroupExtras:
        """The group's extras."""
        return GroupExtras(self._group)


class Group(Entity):
    """A named set of nodes. ``type_string`` says what kind of group it is (``core`` for plain groups)."""

    _entity_type = EntityType.GROUP
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id', 'user': 'user_id'}
    collection = CollectionDescriptor(GroupCollection)

    def __init__(  # noqa: PLR0917 - aiida-core's signature, positional arguments included
        self,
        label: str | None = None,
        user: User | None = None,
        description: str = '',
        type_string: str | None = None,
        time: datetime.datetime | None = None,
        extras: Mapping[str, Any] | None = None,
        backend: EntityStorage | None = None,
        *,
        storage: EntityStorage | None = None,
    ) -> None:
        """Arguments in aiida-core's order.

        :param label: the group's name, unique together with ``type_string``.
        :param user: its owner; default: the profile's default user, when it is stored.
        :param type_string: what kind of group it is; default ``core`` (aiida-core takes it from the class).
        :param time: when it was made (timezone-aware); default: when it is stored.
        :param extras: its first extras.
        :param backend: aiida-core's name for ``storage``.
        """
        super().__init__(storage if storage is not None else backend)
        if not isinstance(label, str) or not label:
            raise ValueError(f'a group label must be a non-empty string, got {label!r}')
        if user is not None and not isinstance(user, User):
            raise TypeError(f'a group owner must be a User, got {type(user).__name__}')
        if time is not None and (not isinstance(time, datetime.datetime) or time.tzinfo is None):
            raise ValueError(f'a group time must be a timezone-aware datetime, got {time!r}')
        self._uuid = str(uuid_module.uuid4())
        self._label = label
        self._type_string = 'core' if type_string is None else type_string
        self._description = description
        self._time: datetime.datetime | None = time
        self._extras: dict[str, Any] = {}
        if extras is not None:
            self.base.extras.set_many(extras)
        self._user = user
        self._user_id: int | None = None

    def _load_row(self, row: Row) -> None:
        self._uuid = row['uuid']
        self._label = row['label']
        self._type_string = row['type_string']
        self._description = row['description']
        self._time = row['time']
        self._extras = row['extras'] or {}
        self._user, self._user_id = None, row['user_id']

    def _to_row(self, storage: EntityStorage) -> Row:
        user = self._user if self._user is not None else get_default_user(storage)
        return {
            'uuid': self._uuid,
            'label': self._label,
            'type_string': self._type_string,
            'time': self._time if self._time is not None else utc_now(),
            'description': self._description,
            'extras': self._extras,
            'user_id': self._require_stored_reference(user, 'user', storage),
        }

    def _after_insert(self, row: Row) -> None:
        self._time = row['time']
        self._user_id = row['user_id']

    def _check_before_insert(self, storage: EntityStorage, row: Row) -> None:
        for other in storage.get_rows(EntityType.GROUP, 'label', [row['label']]):
            if other['type_string'] == row['type_string'] and other['id'] != self._id:
                raise UniquenessError(
                    f'A group labelled {row["label"]!r} of type {row["type_string"]!r} exists already'
                )

    def _identity(self) -> object:
        return self._uuid

    def _label_for_messages(self) -> str:
        return f'{self._label!r} [{self._type_string}] ({super()._label_for_messages()})'

    # -- fields -----------------------------------------------------------------------------------------------

    @property
    def uuid(self) -> str:
        """The group's uuid."""
        return self._uuid

    def _checked_label(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f'a group label must be a non-empty string, got {value!r}')
        if self._id is not None and value != self._label:
            self._check_before_insert(self.storage, {'label': value, 'type_string': self._type_string})
        return value

    label = SavedField[str](
        'The label, unique together with the type string (saved at once when the group is stored).',
        check=_checked_label,
    )

    @property
    def type_string(self) -> str:
        """What kind of group this is: ``core``, ``core.auto``, ``core.import``, ..."""
        return self._type_string

    description = SavedField[str]('A description (saved at once when the group is stored).')

    @property
    def time(self) -> datetime.datetime | None:
        """When the group was made: as given, else when it was stored."""
        return self._time

    def is_user_defined(self) -> bool:
        """Whether a user made the group by hand, as aiida-core tells it: its ``type_string`` is empty."""
        return not self._type_string

    @property
    def base(self) -> GroupBase:
        """The group's extras, as aiida-core's ``group.base.extras``."""
        return GroupBase(self)

    @property
    def user(self) -> User:
        """The group's owner (settable; saved at once when the group is stored)."""
        if self._user is None:
            if self._user_id is not None:
                self._user = User.collection(self.storage).get(pk=self._user_id)
            else:
                self._user = get_default_user(self.storage)
        return self._user

    @user.setter
    def user(self, value: User) -> None:
        if not isinstance(value, User):
            raise TypeError(f'the user of a group must be a User, got {type(value).__name__}')
        if self._id is not None:
            self._save(user_id=self._require_stored_reference(value, 'user', self.storage))
            self._user_id = value.pk
        self._user = value

    @property
    def extras(self) -> dict[str, Any]:
        """A copy of the group's extras."""
        return copy.deepcopy(self._extras)

    def set_extra(self, key: str, value: Any) -> None:
        """Set one extra of the group (saved at once when the group is stored).

        NOTE: the storage interface has no atomic patch for groups: the whole column is written back.
        """
        extras = {**self._extras, clean_json_key(key, 'extra'): clean_json(value, f'extra {key!r}')}
        self._save(extras=extras)
        self._extras = extras

    def delete_extra(self, key: str) -> None:
        """Delete one extra of the group.

        :raises AttributeError: if there is no such extra.
        """
        if key not in self._extras:
            raise AttributeError(f'{self!r} has no extra {key!r}')
        extras = {name: value for name, value in self._extras.items() if name != key}
        self._save(extras=extras)
        self._extras = extras

    # -- members ----------------------------------------------------------------------------------------------

    def _stored_pks(self, nodes: Node | Iterable[Node]) -> list[int]:
        if self._id is None:
            raise ModificationNotAllowedError(f'{self!r} is not stored: store the group before changing its nodes')
        pks = []
        for node in [nodes] if isinstance(nodes, Node) else nodes:
            if not isinstance(node, Node):
                raise TypeError(f'groups hold nodes, got {type(node).__name__}')
            if node.pk is None:
                raise UnstoredEntityError(f'{node!r} is not stored: store it before adding it to a group')
            if node.storage is not self.storage:
                raise ModificationNotAllowedError(f'{node!r} is stored in another storage than {self!r}')
            pks.append(node.pk)
        return pks

    def add_nodes(self, nodes: Node | Iterable[Node]) -> None:
        """Add stored nodes to the group in one statement; nodes already in it are skipped."""
        pks = self._stored_pks(nodes)
        assert self._id is not None
        check_writable(self.storage)
        with self.storage.transaction():
            self.storage.add_group_nodes(self._id, pks)

    def remove_nodes(self, nodes: Node | Iterable[Node]) -> None:
        """Remove nodes from the group in one statement; nodes not in it are ignored."""
        pks = self._stored_pks(nodes)
        assert self._id is not None
        check_writable(self.storage)
        with self.storage.transaction():
            self.storage.remove_group_nodes(self._id, pks)

    def clear(self) -> None:
        """Remove every node from the group."""
        if self._id is None:
            return
        check_writable(self.storage)
        with self.storage.transaction():
            self.storage.remove_group_nodes(self._id, self._member_pks())

    def _member_pks(self) -> list[int]:
        if self._id is None:
            return []
        rows = self.storage.get_rows(EntityType.GROUP_NODE, 'dbgroup_id', [self._id])
        return sorted(int(row['dbnode_id']) for row in rows)

    def iter_nodes(self, batch_size: int = BATCH_SIZE) -> Iterator[Node]:
        """Iterate over the group's nodes by ascending pk, loading them in batches."""
        pks = self._member_pks()
        for start in range(0, len(pks), batch_size):
            rows = self.storage.get_rows(EntityType.NODE, 'id', pks[start : start + batch_size])
            yield from sorted(nodes_from_rows(self.storage, rows), key=lambda node: node.pk or 0)

    @property
    def nodes(self) -> list[Node]:
        """The group's nodes, by ascending pk."""
        return list(self.iter_nodes())

    def count(self) -> int:
        """Return the number of nodes in the group."""
        return len(self._member_pks())

    @property
    def is_empty(self) -> bool:
        """Whether the group has no node."""
        return not self._member_pks()
