"""The base class of every node, and the collection of nodes.

A node is made unstored, filled (attributes, files, incoming links) and stored, after which its attributes and
files are frozen. What may change on a stored node: its label and description (saved at once), its extras (one
atomic update each), and the state keys of a process node until it is sealed.

``node.base`` groups the parts of a node as in aiida-core: ``node.base.attributes``, ``node.base.extras``,
``node.base.repository`` (files) and ``node.base.links``.
"""

from __future__ import annotations

import copy
import datetime
import functools
import uuid as uuid_module
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from provstore.orm.comments import NodeComments
from provstore.orm.computers import Computer
from provstore.orm.entities import Collection, CollectionDescriptor, Entity, SavedField
from provstore.orm.exceptions import (
    InvalidOperationError,
    ModificationNotAllowedError,
    NotExistentError,
    StoringNotAllowedError,
)
from provstore.orm.links import LinkType, NodeKind, node_kind
from provstore.orm.node_classes import load_node_class, node_type_path, register_node_class
from provstore.orm.nodes.attributes import NodeAttributes, NodeExtras
from provstore.orm.nodes.links import NodeLinks
from provstore.orm.nodes.repository import NodeRepository, make_sandbox
from provstore.orm.nodes.store import store_nodes
from provstore.orm.users import User, get_default_user
from provstore.repository import Repository
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.repository import AbstractRepositoryBackend

__all__ = ['Node', 'NodeBase', 'NodeCollection']

NodeT = TypeVar('NodeT', bound='Node')


class NodeCollection(Collection['Node']):
    """The stored nodes of a storage; for a subclass, only nodes of that class or its subclasses.

    "Subclasses" follows ``node_type``, as in aiida-core: ``Data.collection`` holds every node whose ``node_type``
    starts with ``data.``, including kinds no installed class knows.
    """

    def _prefix(self) -> str | None:
        path = node_type_path(self._entity_class.NODE_TYPE)
        return f'{path}.' if path else None

    def _matches(self, row: Row) -> bool:
        prefix = self._prefix()
        return prefix is None or str(row['node_type']).startswith(prefix)

    def _load(self, row: Row) -> Node:
        return load_node_class(row['node_type'])._from_row(self.storage, row)

    def count(self) -> int:
        """Return the number of nodes of this collection."""
        if self._prefix() is None:
            return self.storage.count_rows(EntityType.NODE)
        # NOTE: reads every row until the QueryBuilder gives a node_type filter to the database.
        return sum(1 for row in self.storage.iter_rows(EntityType.NODE) if self._matches(row))

    def store_many(self, nodes: Iterable[Node]) -> list[Node]:
        """Store many nodes with their links and files in one transaction (see :func:`store_nodes`)."""
        return store_nodes(nodes, self.storage)

    def _check_deletable(self, entity: Node) -> None:
        assert entity.pk is not None
        for direction in ('incoming', 'outgoing'):
            links = self.storage.get_links([entity.pk], direction)
            if links:
                raise ModificationNotAllowedError(
                    f'Cannot delete {entity!r}: it has {len(links)} {direction} link(s); delete it with '
                    'provstore.orm.delete_nodes, which follows the provenance rules'
                )

    def _delete(self, entity: Node) -> None:
        assert entity.pk is not None
        self.storage.delete_nodes([entity.pk])


class NodeBase:
    """The parts of a node: ``attributes``, ``extras``, ``repository`` (files), ``links`` and ``comments``."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @cached_property
    def attributes(self) -> NodeAttributes:
        """The attributes: frozen once the node is stored."""
        return NodeAttributes(self._node)

    @cached_property
    def extras(self) -> NodeExtras:
        """The extras: always mutable, each change atomic on the server."""
        return NodeExtras(self._node)

    @cached_property
    def repository(self) -> NodeRepository:
        """The files: writable only while the node is unstored."""
        return NodeRepository(self._node)

    @cached_property
    def links(self) -> NodeLinks:
        """The links: add incoming ones, list incoming and outgoing ones."""
        return NodeLinks(self._node)

    @cached_property
    def comments(self) -> NodeComments:
        """The comments on the node (it must be stored to get one)."""
        return NodeComments(self._node)


class Node(Entity):
    """A node of the provenance graph. Store subclasses (:class:`Data`, calculations, workflows), not this class.

    Subclasses set ``NODE_TYPE`` to aiida-core's type string and are registered when defined, so that stored
    nodes load as their class (see :mod:`provstore.orm.node_classes`).
    """

    NODE_TYPE: ClassVar[str] = ''
    """aiida-core's ``node_type`` string of the class: ``data.core.int.Int.``; the base node has ``''``."""

    _entity_type = EntityType.NODE
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id', 'user': 'user_id', 'computer': 'dbcomputer_id'}
    collection = CollectionDescriptor(NodeCollection)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if 'NODE_TYPE' in cls.__dict__:
            register_node_class(cls)

    def __init__(
        self,
        *,
        label: str = '',
        description: str = '',
        user: User | None = None,
        computer: Computer | None = None,
        storage: EntityStorage | None = None,
        ctime: datetime.datetime | None = None,
        mtime: datetime.datetime | None = None,
    ) -> None:
        """Make an unstored node.

        :param user: its author; default: the profile's default user, when the node is stored.
        :param ctime: when it was made (timezone-aware), kept when it is stored; default: when it is stored.
        :param mtime: when it was last changed (timezone-aware); default: when it is stored.
        :param computer: the computer it ran on, if any.
        :param storage: where it will be stored; default: the storage of the loaded profile.
        """
        super().__init__(storage)
        self._uuid = str(uuid_module.uuid4())
        self._node_type = type(self).NODE_TYPE
        self._process_type: str | None = None
        self._label = _check_text(label, 'label')
        self._description = _check_text(description, 'description')
        self._ctime: datetime.datetime | None = _check_time(ctime, 'ctime')
        self._mtime: datetime.datetime | None = _check_time(mtime, 'mtime')
        self._attributes: dict[str, Any] = {}
        self._extras: dict[str, Any] = {}
        self._user = _check_instance(user, User, 'user')
        self._user_id: int | None = None
        self._computer = _check_instance(computer, Computer, 'computer')
        self._computer_id: int | None = None
        self._repository: Repository | None = None
        self._sandbox: AbstractRepositoryBackend | None = None
        self._repository_metadata: dict[str, Any] = {}
        self._pending_links: list[tuple[Node, LinkType, str]] = []
        self._uuid_from_row = False

    def _load_row(self, row: Row) -> None:
        self._uuid = row['uuid']
        self._node_type = row['node_type']
        self._process_type = row['process_type']
        self._label = row['label']
        self._description = row['description']
        self._ctime = row['ctime']
        self._mtime = row['mtime']
        self._attributes = row['attributes'] or {}
        self._extras = row['extras'] or {}
        self._user, self._user_id = None, row['user_id']
        self._computer, self._computer_id = None, row['dbcomputer_id']
        self._repository = None
        self._sandbox = None
        self._repository_metadata = row['repository_metadata'] or {}
        self._pending_links = []
        self._uuid_from_row = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any], repository: Repository | None = None) -> Node:
        """Return an unstored node made from a ``db_dbnode`` row of another storage (an archive, say).

        The node is of the class its ``node_type`` loads as, and keeps ``uuid``, ``node_type``, ``process_type``,
        ``label``, ``description``, ``ctime``, ``mtime``, attributes and extras verbatim. Its user and computer
        are not taken from the row (their ids belong to the other storage): set them before storing.

        :param repository: the node's files; their objects are copied into the target storage when it is stored.
        """
        node_class = load_node_class(row.get('node_type', ''))
        node = node_class.__new__(node_class)
        Node.__init__(node)
        node._uuid = str(row['uuid'])
        node._uuid_from_row = True
        node._node_type = row.get('node_type', '')
        node._process_type = row.get('process_type')
        node._label = row.get('label') or ''
        node._description = row.get('description') or ''
        node._ctime = row.get('ctime')
        node._mtime = row.get('mtime')
        node._attributes = copy.deepcopy(dict(row.get('attributes') or {}))
        node._extras = copy.deepcopy(dict(row.get('extras') or {}))
        node._repository = repository
        return node

    # -- identity ---------------------------------------------------------------------------------------------

    def _identity(self) -> object:
        return self._uuid

    def _label_for_messages(self) -> str:
        return f'uuid={self._uuid} ({super()._label_for_messages()})'

    @property
    def uuid(self) -> str:
        """The node's uuid, made when the node is created and kept forever (also across storages)."""
        return self._uuid

    @property
    def node_type(self) -> str:
        """aiida-core's type string, verbatim (also for kinds no installed class knows)."""
        return self._node_type

    @property
    def process_type(self) -> str | None:
        """For process nodes: what ran (an entry point string or a class path); verbatim."""
        return self._process_type

    @process_type.setter
    def process_type(self, value: str | None) -> None:
        self._check_unstored('process_type')
        if value is not None and not isinstance(value, str):
            raise TypeError(f'process_type must be a string or None, got {type(value).__name__}')
        self._process_type = value

    label = SavedField[str](
        'A short label (saved at once when the node is stored).',
        check=lambda node, value: _check_text(value, 'label'),
        stamps_mtime=True,
    )
    description = SavedField[str](
        'A description (saved at once when the node is stored).',
        check=lambda node, value: _check_text(value, 'description'),
        stamps_mtime=True,
    )

    @property
    def ctime(self) -> datetime.datetime | None:
        """When the node was stored (``None`` before, unless it was made from a row)."""
        return self._ctime

    @property
    def mtime(self) -> datetime.datetime | None:
        """When the node's row was last changed, as far as this object knows."""
        return self._mtime

    @property
    def user(self) -> User:
        """The node's author (for an unstored node without one: the profile's default user)."""
        if self._user is None:
            if self._user_id is not None:
                self._user = User.collection(self.storage).get(pk=self._user_id)
            else:
                self._user = get_default_user(self.storage)
        return self._user

    @user.setter
    def user(self, value: User) -> None:
        self._check_unstored('user')
        self._user = _check_instance(value, User, 'user')

    @property
    def computer(self) -> Computer | None:
        """The computer the node ran on, if any."""
        if self._computer is None and self._computer_id is not None:
            self._computer = Computer.collection(self.storage).get(pk=self._computer_id)
        return self._computer

    @computer.setter
    def computer(self, value: Computer | None) -> None:
        self._check_unstored('computer')
        self._computer = _check_instance(value, Computer, 'computer')

    @cached_property
    def base(self) -> NodeBase:
        """The parts of the node: ``attributes``, ``extras``, ``repository`` and ``links``."""
        return NodeBase(self)

    def __copy__(self) -> Node:
        raise InvalidOperationError(f'{self!r}: a node cannot be copied; copy.deepcopy (or clone()) of data makes one')

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        raise InvalidOperationError(f'{self!r}: only data nodes can be deep-copied (into an unstored clone)')

    # -- rules ------------------------------------------------------------------------------------------------

    def _check_unstored(self, what: str) -> None:
        if self._id is not None:
            raise ModificationNotAllowedError(f'{self!r}: the {what} of a stored node cannot change')

    def _check_storable(self) -> None:
        """Raise :class:`StoringNotAllowedError` if this node may not be stored."""
        if _kind_of(self._node_type) is None:
            raise StoringNotAllowedError(
                f'{self!r}: only data, calculation and workflow nodes can be stored, not node_type '
                f'{self._node_type!r}; use Data, CalculationNode, WorkflowNode or a subclass'
            )

    def _check_attributes_mutable(self, keys: Sequence[str]) -> None:
        """Raise :class:`ModificationNotAllowedError` if the attributes ``keys`` may not change now."""
        if self._id is not None:
            raise ModificationNotAllowedError(
                f'{self!r}: the attributes of a stored node are immutable (tried to change {sorted(keys)})'
            )

    def _validate_incoming_link(self, source: Node, link_type: LinkType) -> None:
        """Raise if this node refuses an incoming link (process nodes do once stored or sealed)."""

    def _validate_outgoing_link(self, target: Node, link_type: LinkType) -> None:
        """Raise if this node refuses an outgoing link (sealed process nodes do)."""

    # -- files ------------------------------------------------------------------------------------------------

    def _get_repository_or_none(self) -> Repository | None:
        if self._repository is None and self._id is not None:
            self._repository = Repository.from_serialized(self.storage.get_repository(), self._repository_metadata)
        return self._repository

    def _get_repository_tree(self) -> Repository:
        repository = self._get_repository_or_none()
        if repository is None:
            self._sandbox = make_sandbox()
            repository = self._repository = Repository(self._sandbox)
        return repository

    # -- storing ----------------------------------------------------------------------------------------------

    def store(self: NodeT) -> NodeT:
        """Store the node with its files and pending incoming links, in one transaction; return it.

        The sources of its pending links must be stored already (use :func:`store_nodes` to store several
        related nodes at once). Nothing happens if the node is stored already.

        :raises StoringNotAllowedError: if the node, its user, computer or a link source cannot be stored.
        :raises LinkValidationError: if a pending link breaks a rule of the provenance graph.
        """
        if self._id is None:
            store_nodes([self], self._storage)
        return self

    def refresh(self) -> None:
        """Read the stored node's row again (changes other processes made: extras, process state, ...)."""
        if self._id is None:
            return
        rows = self.storage.get_rows(EntityType.NODE, 'id', [self._id])
        if not rows:
            raise NotExistentError(f'{self!r} is no longer stored')
        self._load_row(rows[0])

    def _row_to_insert(
        self, user_id: int, computer_id: int | None, now: datetime.datetime, repository_metadata: dict[str, Any]
    ) -> Row:
        return {
            'uuid': self._uuid,
            'node_type': self._node_type,
            'process_type': self._process_type,
            'label': self._label,
            'description': self._description,
            'ctime': self._ctime or now,
            'mtime': self._mtime or now,
            'attributes': self._attributes,
            'extras': self._extras,
            'repository_metadata': repository_metadata,
            'dbcomputer_id': computer_id,
            'user_id': user_id,
        }

    def _mark_stored(self, storage: EntityStorage, row: Row, pk: int, backend: AbstractRepositoryBackend) -> None:
        """Make this object the stored node ``pk`` whose inserted row was ``row``."""
        self._storage = storage
        self._id = pk
        self._ctime = row['ctime']
        self._mtime = row['mtime']
        self._user_id = row['user_id']
        self._computer_id = row['dbcomputer_id']
        self._repository_metadata = row['repository_metadata']
        metadata = self._repository_metadata
        self._repository = Repository.from_serialized(backend, metadata) if metadata else None
        self._pending_links = []
        if self._sandbox is not None:
            self._sandbox.erase()
            self._sandbox = None


@functools.lru_cache(maxsize=1024)
def _kind_of(node_type: str) -> NodeKind | None:
    return node_kind(node_type)


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f'a node {what} must be a string, got {type(value).__name__}')
    return value


def _check_time(value: object, what: str) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise TypeError(f'the {what} of a node must be a datetime, got {type(value).__name__}')
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f'the {what} of a node must be timezone-aware, got {value!r}')
    return value


_T = TypeVar('_T')


def _check_instance(value: _T | None, kind: type[_T], what: str) -> _T | None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f'the {what} of a node must be a {kind.__name__}, got {type(value).__name__}')
    return value


register_node_class(Node)
