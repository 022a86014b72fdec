"""Users: the authors of nodes, groups and comments, identified by their email (unique)."""

from __future__ import annotations

import weakref
from typing import Any

from provstore.exceptions import ConfigError
from provstore.orm.entities import Collection, CollectionDescriptor, Entity, SavedField, get_entity_storage
from provstore.orm.exceptions import UniquenessError
from provstore.storage import EntityStorage, EntityType, Row, StorageBackend

__all__ = ['User', 'UserCollection', 'get_default_user', 'normalize_email']

_DEFAULT_USERS: weakref.WeakKeyDictionary[EntityStorage, User] = weakref.WeakKeyDictionary()
"""The default user of each open storage, once looked up."""


def normalize_email(email: str) -> str:
    """Return ``email`` without surrounding spaces and with its domain in lower case.

    :raises ValueError: if ``email`` is not a non-empty string.
    """
    if not isinstance(email, str) or not email.strip():
        raise ValueError(f'a user email must be a non-empty string, got {email!r}')
    email = email.strip()
    if '@' in email:
        name, domain = email.rsplit('@', 1)
        email = f'{name}@{domain.lower()}'
    return email


class UserCollection(Collection['User']):
    """The users of a storage."""

    def get_default(self) -> User:
        """Return the default user: the one whose email is the profile's ``default_user_email``.

        The user is created the first time it is asked for; concurrent first uses create it once.

        :raises ConfigError: if the storage belongs to no profile, or the profile names no default user.
        """
        storage = self.storage
        cached = _DEFAULT_USERS.get(storage)
        if cached is not None:
            return cached
        profile = storage.profile if isinstance(storage, StorageBackend) else None
        email = profile.default_user_email if profile is not None else None
        if not email:
            if profile is None:
                raise ConfigError('this storage has no default user email: give a user explicitly')
            raise ConfigError(
                f'profile {profile.name!r} has no default user email: set one with `provstore profile set '
                f'{profile.name} default_user_email EMAIL`, or give a user explicitly'
            )
        user = self.get_or_create(email)
        # NOTE: a user created (or first seen) inside an open transaction may never be committed: caching it would
        # hand other threads a row id that does not exist for them (a foreign-key error in their stores).
        if not storage.in_transaction:
            _DEFAULT_USERS[storage] = user
        return user

    def get_or_create(self, email: str, **fields: Any) -> User:
        """Return the user with ``email``, storing a new one (with ``fields``) when there is none.

        Safe against another process creating the same user at the same moment.
        """
        email = normalize_email(email)
        found = self.find(email=email)
        if found:
            return found[0]
        user = User(email, storage=self.storage, **fields)
        try:
            return user.store()
        # NOTE: any error of the insert: the backend's unique-violation type is not part of the storage interface.
        except Exception:
            found = self.find(email=email)
            if found:
                return found[0]
            raise

    def _check_deletable(self, entity: User) -> None:
        self._refuse_if_referenced(
            entity,
            [
                (EntityType.NODE, 'user_id', 'nodes'),
                (EntityType.GROUP, 'user_id', 'groups'),
                (EntityType.COMMENT, 'user_id', 'comments'),
            ],
        )


class User(Entity):
    """A user: the author of nodes, groups and comments. Two users never share an email."""

    _entity_type = EntityType.USER
    collection = CollectionDescriptor(UserCollection)

    def __init__(
        self,
        email: str,
        first_name: str = '',
        last_name: str = '',
        institution: str = '',
        storage: EntityStorage | None = None,
    ) -> None:
        """:param email: the user's email, unique in a storage (its domain is lower-cased)."""
        super().__init__(storage)
        self._email = normalize_email(email)
        self._first_name = first_name
        self._last_name = last_name
        self._institution = institution

    def _load_row(self, row: Row) -> None:
        self._email = row['email']
        self._first_name = row['first_name']
        self._last_name = row['last_name']
        self._institution = row['institution']

    def _to_row(self, storage: EntityStorage) -> Row:
        return {
            'email': self._email,
            'first_name': self._first_name,
            'last_name': self._last_name,
            'institution': self._institution,
        }

    def _check_before_insert(self, storage: EntityStorage, row: Row) -> None:
        if storage.get_rows(EntityType.USER, 'email', [row['email']]):
            raise UniquenessError(f'A user with email {row["email"]!r} exists already')

    def _identity(self) -> object:
        return self._email

    def _label_for_messages(self) -> str:
        return f'{self._email} ({super()._label_for_messages()})'

    @property
    def email(self) -> str:
        """The user's email: what identifies the user across storages."""
        return self._email

    first_name = SavedField[str]('The first name (saved at once when the user is stored).')
    last_name = SavedField[str]('The last name (saved at once when the user is stored).')
    institution = SavedField[str]('The institution (saved at once when the user is stored).')

    def get_full_name(self) -> str:
        """Return ``First Last (email)``, or the email alone when no name is set."""
        name = f'{self._first_name} {self._last_name}'.strip()
        return f'{name} ({self._email})' if name else self._email


def get_default_user(storage: EntityStorage | None = None) -> User:
    """Return the default user of ``storage`` (default: the loaded profile's), creating it on first use."""
    return User.collection(get_entity_storage(storage)).get_default()
