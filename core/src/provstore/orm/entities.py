"""What every entity of the ORM shares: its storage, its row, its collection.

An entity is created unstored (``pk`` is ``None``); :meth:`Entity.store` writes its row and binds it to a
storage. The storage is the one given as ``storage=`` when the entity was made, else the storage of the profile
loaded by the manager (:func:`provstore.manager.get_manager`), looked up only when it is first needed.

Each entity class has a ``collection``: the stored entities of that kind, in the default storage
(``User.collection.get(email=...)``) or in a given one (``User.collection(storage).all()``).
"""

from __future__ import annotations

import copy
import datetime
import decimal
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

from provstore.exceptions import StorageError, ValidationError
from provstore.orm.exceptions import (
    ModificationNotAllowedError,
    MultipleObjectsError,
    NotExistentError,
    StoringNotAllowedError,
)
from provstore.orm.validation import check_rows
from provstore.storage import EntityStorage, EntityType, Row, StorageBackend

__all__ = [
    'Collection',
    'CollectionDescriptor',
    'Entity',
    'SavedField',
    'check_writable',
    'clean_json',
    'clean_json_key',
    'clean_json_object',
    'get_entity_storage',
    'utc_now',
]

EntityT = TypeVar('EntityT', bound='Entity')
CollectionT = TypeVar('CollectionT', bound='Collection[Any]')
ValueT = TypeVar('ValueT')

BATCH_SIZE = 1000
"""Rows per call when the ORM reads or writes many rows."""


def utc_now() -> datetime.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


def get_entity_storage(storage: EntityStorage | None = None) -> EntityStorage:
    """Return ``storage``, or the storage of the profile loaded by this process's manager when it is ``None``.

    :raises StorageError: if the profile's storage backend does not store entities.
    :raises TypeError: if ``storage`` is not an :class:`~provstore.storage.EntityStorage`.
    """
    if storage is None:
        from provstore.manager import get_manager  # noqa: PLC0415 - the manager pulls in config and registry

        backend = get_manager().get_profile_storage()
        if not isinstance(backend, EntityStorage):
            raise StorageError(
                f'The storage of profile {backend.profile.name!r} ({backend.name}) does not store nodes, groups '
                'or users: choose a profile with a storage backend such as sqlite_dos or psql_dos'
            )
        return backend
    if not isinstance(storage, EntityStorage):
        raise TypeError(f'storage must be an EntityStorage, got {type(storage).__name__}')
    return storage


def check_writable(storage: EntityStorage) -> None:
    """Raise :class:`~provstore.exceptions.ReadOnlyStorageError` if ``storage`` is a read-only (or closed) backend."""
    if isinstance(storage, StorageBackend):
        storage.check_writable()


def clean_json_key(key: object, what: str) -> str:
    """Return ``key`` if it is a valid top-level key of attributes or extras: a non-empty string without ``.``.

    :raises ValueError: naming ``what`` (``'attribute'`` or ``'extra'``) and the key; a key with ``.`` raises
        :class:`~provstore.exceptions.ValidationError` (a ``ValueError``), as aiida-core does.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f'{what} key must be a non-empty string, got {key!r}')
    if '.' in key:
        raise ValidationError(f'{what} key {key!r} contains ".", which separates nested keys in queries')
    return key


def clean_json(value: Any, where: str) -> Any:
    """Return a copy of ``value`` made only of JSON types, or raise naming ``where`` and the offending value.

    Accepted: ``None``, ``bool``, ``int``, finite ``float``, ``str``, lists and tuples (become lists) and mappings with
    string keys (become dicts), nested; other integers (numpy's) become ``int``, other real numbers and ``Decimal``
    become ``float``.

    :raises ValueError: for NaN or infinity.
    :raises TypeError: for any other type, or a mapping key that is not a string.
    """
    try:
        return _clean_plain(value)
    except _NotPlainJsonError:
        return _clean_any(value, where)


def clean_json_object(values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Return a JSON copy of the mapping ``values`` of top-level keys of attributes or extras (``what``).

    :raises ValueError: for a key that :func:`clean_json_key` refuses, or NaN or infinity.
    :raises TypeError: for a value :func:`clean_json` refuses.
    """
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if type(key) is not str or not key or '.' in key:
            clean_json_key(key, what)
        if type(value) in _PLAIN_SCALARS:
            cleaned[key] = value  # NOTE: most values: no call (storing many nodes spends its time here)
            continue
        try:
            cleaned[key] = _clean_plain(value)
        except _NotPlainJsonError:
            cleaned[key] = _clean_any(value, f'{what} {key!r}')
    return cleaned


class _NotPlainJsonError(Exception):
    """A value that the fast path of :func:`clean_json` does not take as it is."""


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _clean_plain(value: Any) -> Any:
    """Copy values made of exactly the built-in JSON types, fast; raise for anything else."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        raise _NotPlainJsonError
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise _NotPlainJsonError
        return {key: _clean_plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN_SCALARS else _clean_plain(item) for item in value]
    raise _NotPlainJsonError


def _clean_any(value: Any, where: str) -> Any:
    """The thorough path of :func:`clean_json`: subclasses of the JSON types, and errors that name the place."""
    if value is None or isinstance(value, (bool, str)):
        return value
    # NOTE: as aiida-core: other integers (numpy's) become int, other real numbers and Decimal become float.
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (numbers.Real, decimal.Decimal)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f'{where}: {value!r} cannot be stored (NaN and infinity are not JSON)')
        return number
    if isinstance(value, Mapping):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f'{where}: keys must be strings, got {key!r} ({type(key).__name__})')
            cleaned[str(key)] = _clean_any(item, f'{where}.{key}')
        return cleaned
    if isinstance(value, (list, tuple)):
        return [_clean_any(item, f'{where}[{index}]') for index, item in enumerate(value)]
    raise TypeError(
        f'{where}: a {type(value).__name__} cannot be stored; use None, bool, int, float, str, lists and '
        'dicts with string keys'
    )


class Entity:
    """An object of the ORM: unstored, or stored as one row of its table in one storage."""

    _entity_type: ClassVar[EntityType]
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id'}
    """Names a collection's ``get()`` accepts, mapped to columns; column names are accepted as they are."""

    def __init__(self, storage: EntityStorage | None = None) -> None:
        """:param storage: where the entity will be stored; default: the storage of the loaded profile."""
        self._storage = None if storage is None else get_entity_storage(storage)
        self._id: int | None = None

    @classmethod
    def _from_row(cls: type[EntityT], storage: EntityStorage, row: Row) -> EntityT:
        """Return the stored entity of ``row`` (a row of this entity's table in ``storage``)."""
        entity = cls.__new__(cls)
        entity._storage = storage
        entity._id = int(row['id'])
        entity._load_row(row)
        return entity

    def _load_row(self, row: Row) -> None:
        """Set the entity's fields from a stored row."""
        raise NotImplementedError

    def _to_row(self, storage: EntityStorage) -> Row:
        """Return the row to insert (without ``id``) into ``storage``."""
        raise NotImplementedError

    # -- identity ---------------------------------------------------------------------------------------------

    @property
    def pk(self) -> int | None:
        """The primary key of the stored entity; ``None`` while it is unstored."""
        return self._id

    @property
    def is_stored(self) -> bool:
        """Whether the entity has been stored."""
        return self._id is not None

    @property
    def storage(self) -> EntityStorage:
        """The storage the entity is stored in (or will be): the loaded profile's unless one was given."""
        if self._storage is None:
            self._storage = get_entity_storage()
        return self._storage

    def _label_for_messages(self) -> str:
        return f'pk={self._id}' if self._id is not None else 'unstored'

    def __repr__(self) -> str:
        return f'<{type(self).__name__}: {self._label_for_messages()}>'

    def _identity(self) -> object:
        """What makes two objects the same entity: by default the storage and pk, or the object while unstored."""
        if self._id is None:
            return (id(self),)
        return (id(self._storage), self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity) or other._entity_type is not self._entity_type:
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self._entity_type, self._identity()))

    # -- writing ----------------------------------------------------------------------------------------------

    def store(self: EntityT) -> EntityT:
        """Store the entity (nothing happens if it is stored already) and return it."""
        if self._id is not None:
            return self
        storage = self.storage
        check_writable(storage)
        row = self._to_row(storage)
        check_rows(self._entity_type, [row])
        self._check_before_insert(storage, row)
        with storage.transaction():
            (pk,) = storage.insert_rows(self._entity_type, [row])
        self._id = pk
        self._storage = storage
        self._after_insert(row)
        return self

    def _after_insert(self, row: Row) -> None:
        """Take what was decided while inserting (times, default references) from the inserted ``row``."""

    def _check_before_insert(self, storage: EntityStorage, row: Row) -> None:
        """Raise a clear error for a row that would break a unique constraint (checked by the database too)."""

    def _save(self, **columns: Any) -> None:
        """Write ``columns`` of the stored entity at once (nothing to do while it is unstored)."""
        if self._id is None:
            return
        check_writable(self.storage)
        row = {'id': self._id, **columns}
        check_rows(self._entity_type, [row])
        with self.storage.transaction():
            self.storage.update_rows(self._entity_type, [row])

    def _require_stored_reference(self, entity: Entity | None, what: str, storage: EntityStorage) -> int | None:
        """Return the pk of ``entity``, which must be stored in ``storage``; ``None`` passes through."""
        if entity is None:
            return None
        if entity._id is None:
            raise StoringNotAllowedError(f'{self!r}: its {what} {entity!r} is not stored; store it first')
        if entity._storage is not storage:
            raise StoringNotAllowedError(f'{self!r}: its {what} {entity!r} is stored in another storage')
        return entity._id


class SavedField(Generic[ValueT]):
    """A field of an entity that is written to its row at once when set on a stored entity.

    Declared in the class body (``label = SavedField[str]('The label.')``), it reads and writes the instance attribute
    ``_<name>`` and the column ``<name>``; while the entity is unstored, setting only changes the object.

    :param doc: the field's docstring.
    :param check: ``check(entity, value)`` returns the value to keep (converted, cleaned) or raises; it runs first.
    :param copied: reading returns a deep copy (for dicts: changing the copy must not change the entity unsaved).
    :param stamps_mtime: a save also sets the column ``mtime`` (and ``_mtime``) to now.
    """

    def __init__(
        self,
        doc: str,
        *,
        check: Callable[[Any, Any], ValueT] | None = None,
        copied: bool = False,
        stamps_mtime: bool = False,
    ) -> None:
        self.__doc__ = doc
        self._check = check
        self._copied = copied
        self._stamps_mtime = stamps_mtime
        self._column = ''
        self._attribute = ''

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._column = name
        self._attribute = f'_{name}'

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> SavedField[ValueT]: ...

    @overload
    def __get__(self, instance: Entity, owner: type[Any]) -> ValueT: ...

    def __get__(self, instance: Entity | None, owner: type[Any]) -> SavedField[ValueT] | ValueT:
        if instance is None:
            return self
        value: ValueT = getattr(instance, self._attribute)
        return copy.deepcopy(value) if self._copied else value

    def __set__(self, instance: Entity, value: ValueT) -> None:
        if self._check is not None:
            value = self._check(instance, value)
        if instance.pk is not None:
            if self._stamps_mtime:
                now = utc_now()
                instance._save(**{self._column: value, 'mtime': now})
                instance._mtime = now  # type: ignore[attr-defined]  # NOTE: only entities with an mtime stamp it
            else:
                instance._save(**{self._column: value})
        setattr(instance, self._attribute, value)


def reference_pk(value: Any) -> Any:
    """Return the pk of an entity given as a filter value (which must be stored); other values pass through."""
    if isinstance(value, Entity):
        if value.pk is None:
            raise ValueError(f'cannot look up by the unstored {value!r}')
        return value.pk
    return value


class Collection(Generic[EntityT]):
    """The stored entities of one kind in one storage.

    Get one bound to a given storage by calling it: ``Node.collection(storage)``.
    """

    def __init__(self, entity_class: type[EntityT], storage: EntityStorage | None = None) -> None:
        self._entity_class = entity_class
        self._storage = None if storage is None else get_entity_storage(storage)

    def __call__(self: CollectionT, storage: EntityStorage) -> CollectionT:
        """Return this collection bound to ``storage``."""
        return type(self)(self._entity_class, storage)

    def __repr__(self) -> str:
        return f'<{type(self).__name__} of {self._entity_class.__name__}>'

    @property
    def entity_class(self) -> type[EntityT]:
        """The class of the entities of this collection."""
        return self._entity_class

    @property
    def storage(self) -> EntityStorage:
        """The storage this collection reads: the loaded profile's unless one was given."""
        if self._storage is None:
            self._storage = get_entity_storage()
        return self._storage

    @property
    def _entity_type(self) -> EntityType:
        return self._entity_class._entity_type

    def _load(self, row: Row) -> EntityT:
        return self._entity_class._from_row(self.storage, row)

    def _matches(self, row: Row) -> bool:
        """Whether a row belongs to this collection (subclasses narrow it, nodes by ``node_type``)."""
        return True

    def _describe(self) -> str:
        return self._entity_class.__name__

    # -- reading ----------------------------------------------------------------------------------------------

    def _columns(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._entity_class._fields
        return {fields.get(name, name): reference_pk(value) for name, value in filters.items()}

    def find(self, **filters: Any) -> list[EntityT]:
        """Return every entity whose fields equal the given values (``pk=``, ``uuid=``, a column name, ...).

        :raises TypeError: if no filter is given.
        """
        if not filters:
            raise TypeError(f'{type(self).__name__}.find() needs at least one filter; use all() for every entity')
        columns = self._columns(filters)
        # NOTE: the most selective column goes to the database; the others are checked here.
        first = next((name for name in ('id', 'uuid', 'email', 'label') if name in columns), next(iter(columns)))
        rows = self.storage.get_rows(self._entity_type, first, [columns[first]])
        matches = [
            row
            for row in rows
            if all(row.get(column) == value for column, value in columns.items() if column != first)
            and self._matches(row)
        ]
        matches.sort(key=lambda row: int(row['id']))
        return [self._load(row) for row in matches]

    def get(self, **filters: Any) -> EntityT:
        """Return the one entity whose fields equal the given values, e.g. ``get(pk=1)`` or ``get(uuid=...)``.

        :raises NotExistentError: if there is none.
        :raises MultipleObjectsError: if there is more than one.
        """
        found = self.find(**filters)
        described = ', '.join(f'{name}={value!r}' for name, value in filters.items())
        if not found:
            raise NotExistentError(f'No {self._describe()} with {described}')
        if len(found) > 1:
            raise MultipleObjectsError(f'{len(found)} {self._describe()} entities have {described}')
        return found[0]

    def iter_all(self, batch_size: int = BATCH_SIZE) -> Iterator[EntityT]:
        """Iterate over every entity of this collection by ascending pk, reading rows in batches."""
        for row in self.storage.iter_rows(self._entity_type, batch_size):
            if self._matches(row):
                yield self._load(row)

    def all(self) -> list[EntityT]:
        """Return every entity of this collection, by ascending pk."""
        return list(self.iter_all())

    def count(self) -> int:
        """Return the number of entities of this collection."""
        return self.storage.count_rows(self._entity_type)

    # -- deleting ---------------------------------------------------------------------------------------------

    def delete(self, pk: int) -> None:
        """Delete the stored entity with ``pk``.

        :raises NotExistentError: if there is none.
        :raises ModificationNotAllowedError: if other entities still refer to it.
        """
        entity = self.get(pk=pk)
        check_writable(self.storage)
        with self.storage.transaction():
            self._check_deletable(entity)
            self._delete(entity)

    def _check_deletable(self, entity: EntityT) -> None:
        """Raise :class:`ModificationNotAllowedError` when something still refers to ``entity``."""

    def _delete(self, entity: EntityT) -> None:
        assert entity.pk is not None
        self.storage.delete_rows(self._entity_type, [entity.pk])

    def _refuse_if_referenced(self, entity: EntityT, references: Sequence[tuple[EntityType, str, str]]) -> None:
        """Refuse to delete ``entity`` while rows of the given ``(table, column, what)`` refer to it."""
        assert entity.pk is not None
        for table, column, what in references:
            count = len(self.storage.get_rows(table, column, [entity.pk]))
            if count:
                raise ModificationNotAllowedError(
                    f'Cannot delete {entity!r}: {count} {what} refer to it; delete or reassign them first'
                )


class CollectionDescriptor(Generic[CollectionT]):
    """Class attribute giving the collection of an entity class: ``User.collection``, ``Int.collection``."""

    def __init__(self, factory: Callable[[type[Any]], CollectionT]) -> None:
        self._factory = factory

    def __get__(self, instance: object, owner: type[Any]) -> CollectionT:
        return self._factory(owner)
