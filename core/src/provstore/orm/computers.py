"""Computers that calculations run on (label unique), and how each user reaches each of them (:class:`AuthInfo`)."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Mapping
from typing import Any, ClassVar

from provstore.orm.entities import Collection, CollectionDescriptor, Entity, SavedField, clean_json
from provstore.orm.exceptions import UniquenessError
from provstore.orm.users import User
from provstore.storage import EntityStorage, EntityType, Row

__all__ = ['AuthInfo', 'AuthInfoCollection', 'Computer', 'ComputerCollection']


class ComputerCollection(Collection['Computer']):
    """The computers of a storage."""

    def _check_deletable(self, entity: Computer) -> None:
        self._refuse_if_referenced(entity, [(EntityType.NODE, 'dbcomputer_id', 'nodes')])

    def _delete(self, entity: Computer) -> None:
        assert entity.pk is not None
        authinfos = self.storage.get_rows(EntityType.AUTHINFO, 'dbcomputer_id', [entity.pk])
        self.storage.delete_rows(EntityType.AUTHINFO, [row['id'] for row in authinfos])
        self.storage.delete_rows(EntityType.COMPUTER, [entity.pk])


class Computer(Entity):
    """A computer: where calculation jobs run. Its label is unique in a storage."""

    _entity_type = EntityType.COMPUTER
    collection = CollectionDescriptor(ComputerCollection)

    def __init__(
        self,
        label: str,
        hostname: str = '',
        *,
        description: str = '',
        scheduler_type: str = '',
        transport_type: str = '',
        metadata: dict[str, Any] | None = None,
        storage: EntityStorage | None = None,
    ) -> None:
        """:param label: the computer's name, unique in a storage."""
        super().__init__(storage)
        if not isinstance(label, str) or not label:
            raise ValueError(f'a computer label must be a non-empty string, got {label!r}')
        self._uuid = str(uuid_module.uuid4())
        self._label = label
        self._hostname = hostname
        self._description = description
        self._scheduler_type = scheduler_type
        self._transport_type = transport_type
        self._metadata: dict[str, Any] = clean_json(metadata or {}, 'computer metadata')

    def _load_row(self, row: Row) -> None:
        self._uuid = row['uuid']
        self._label = row['label']
        self._hostname = row['hostname']
        self._description = row['description']
        self._scheduler_type = row['scheduler_type']
        self._transport_type = row['transport_type']
        self._metadata = row['metadata'] or {}

    def _to_row(self, storage: EntityStorage) -> Row:
        return {
            'uuid': self._uuid,
            'label': self._label,
            'hostname': self._hostname,
            'description': self._description,
            'scheduler_type': self._scheduler_type,
            'transport_type': self._transport_type,
            'metadata': self._metadata,
        }

    def _check_before_insert(self, storage: EntityStorage, row: Row) -> None:
        if storage.get_rows(EntityType.COMPUTER, 'label', [row['label']]):
            raise UniquenessError(f'A computer labelled {row["label"]!r} exists already')

    def _identity(self) -> object:
        return self._uuid

    def _label_for_messages(self) -> str:
        return f'{self._label} ({super()._label_for_messages()})'

    @property
    def uuid(self) -> str:
        """The computer's uuid."""
        return self._uuid

    def _checked_label(self, value: str) -> str:
        if self._id is not None and value != self._label:
            self._check_before_insert(self.storage, {'label': value})
        return value

    label = SavedField[str](
        "The computer's unique label (saved at once when the computer is stored).", check=_checked_label
    )
    hostname = SavedField[str]('The host name (saved at once when the computer is stored).')
    description = SavedField[str]('A description (saved at once when the computer is stored).')

    @property
    def scheduler_type(self) -> str:
        """The name of the scheduler plugin."""
        return self._scheduler_type

    @property
    def transport_type(self) -> str:
        """The name of the transport plugin."""
        return self._transport_type

    metadata = SavedField[dict[str, Any]](
        "A copy of the computer's metadata (saved at once when set on a stored computer).",
        check=lambda computer, value: clean_json(value, 'computer metadata'),
        copied=True,
    )


class AuthInfoCollection(Collection['AuthInfo']):
    """How users reach computers, in a storage."""

    def get_for(self, user: User, computer: Computer) -> AuthInfo:
        """Return the authinfo of ``user`` on ``computer``.

        :raises NotExistentError: if there is none.
        """
        return self.get(aiidauser_id=user, dbcomputer_id=computer)


class AuthInfo(Entity):
    """How one user reaches one computer: at most one per (user, computer)."""

    _entity_type = EntityType.AUTHINFO
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id', 'user': 'aiidauser_id', 'computer': 'dbcomputer_id'}
    collection = CollectionDescriptor(AuthInfoCollection)

    def __init__(
        self,
        computer: Computer,
        user: User,
        *,
        enabled: bool = True,
        auth_params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        storage: EntityStorage | None = None,
    ) -> None:
        """:param computer: a stored computer; :param user: a stored user."""
        super().__init__(storage if storage is not None else computer._storage)
        self._computer: Computer | None = computer
        self._user: User | None = user
        self._computer_id: int | None = None
        self._user_id: int | None = None
        self._enabled = enabled
        self._auth_params: dict[str, Any] = clean_json(auth_params or {}, 'authinfo auth_params')
        self._metadata: dict[str, Any] = clean_json(metadata or {}, 'authinfo metadata')

    def _load_row(self, row: Row) -> None:
        self._user, self._user_id = None, row['aiidauser_id']
        self._computer, self._computer_id = None, row['dbcomputer_id']
        self._enabled = bool(row['enabled'])
        self._auth_params = row['auth_params'] or {}
        self._metadata = row['metadata'] or {}

    def _to_row(self, storage: EntityStorage) -> Row:
        return {
            'aiidauser_id': self._require_stored_reference(self.user, 'user', storage),
            'dbcomputer_id': self._require_stored_reference(self.computer, 'computer', storage),
            'enabled': self._enabled,
            'auth_params': self._auth_params,
            'metadata': self._metadata,
        }

    def _check_before_insert(self, storage: EntityStorage, row: Row) -> None:
        existing = storage.get_rows(EntityType.AUTHINFO, 'aiidauser_id', [row['aiidauser_id']])
        if any(other['dbcomputer_id'] == row['dbcomputer_id'] for other in existing):
            raise UniquenessError(
                f'User {self.user.email!r} already has an authinfo for computer {self.computer.label!r}'
            )

    @property
    def computer(self) -> Computer:
        """The computer."""
        if self._computer is None:
            self._computer = Computer.collection(self.storage).get(pk=self._computer_id)
        return self._computer

    @property
    def user(self) -> User:
        """The user."""
        if self._user is None:
            self._user = User.collection(self.storage).get(pk=self._user_id)
        return self._user

    enabled = SavedField[bool](
        'Whether the computer is enabled for this user (saved at once when stored).',
        check=lambda authinfo, value: bool(value),
    )
    auth_params = SavedField[dict[str, Any]](
        'A copy of the authentication parameters (saved at once when set on a stored authinfo).',
        check=lambda authinfo, value: clean_json(value, 'authinfo auth_params'),
        copied=True,
    )
    metadata = SavedField[dict[str, Any]](
        'A copy of the metadata (saved at once when set on a stored authinfo).',
        check=lambda authinfo, value: clean_json(value, 'authinfo metadata'),
        copied=True,
    )
