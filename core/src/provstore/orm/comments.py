"""Comments users write on stored nodes; their content stays editable."""

from __future__ import annotations

import datetime
import uuid as uuid_module
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from provstore.orm.entities import Collection, CollectionDescriptor, Entity, SavedField, utc_now
from provstore.orm.exceptions import ModificationNotAllowedError
from provstore.orm.node_classes import nodes_from_rows
from provstore.orm.users import User, get_default_user
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node

__all__ = ['Comment', 'CommentCollection', 'NodeComments', 'load_stored_node', 'stored_node_pk']


def stored_node_pk(node: Node, what: str) -> int:
    """Return the pk of ``node``, which must be stored to carry a ``what``."""
    if node.pk is None:
        raise ModificationNotAllowedError(f'{node!r} is not stored: store it before adding a {what} to it')
    return node.pk


def load_stored_node(storage: EntityStorage, pk: int) -> Node:
    """Return the stored node ``pk`` of ``storage``."""
    (node,) = nodes_from_rows(storage, storage.get_rows(EntityType.NODE, 'id', [pk]))
    return node


class CommentCollection(Collection['Comment']):
    """The comments of a storage."""

    def for_node(self, node: Node) -> list[Comment]:
        """Return the comments on ``node``, oldest first."""
        return self.find(node=node)


class Comment(Entity):
    """A comment a user wrote on a stored node."""

    _entity_type = EntityType.COMMENT
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id', 'node': 'dbnode_id', 'user': 'user_id'}
    collection = CollectionDescriptor(CommentCollection)

    def __init__(self, node: Node, content: str, user: User | None = None) -> None:
        """:param node: a stored node; :param user: the author (default: the profile's default user)."""
        super().__init__(node.storage)
        self._node: Node | None = node
        self._node_id: int | None = None
        self._content = content
        self._user = user
        self._user_id: int | None = None
        self._uuid = str(uuid_module.uuid4())
        self._ctime: datetime.datetime | None = None
        self._mtime: datetime.datetime | None = None

    def _load_row(self, row: Row) -> None:
        self._uuid = row['uuid']
        self._node, self._node_id = None, row['dbnode_id']
        self._user, self._user_id = None, row['user_id']
        self._content = row['content']
        self._ctime = row['ctime']
        self._mtime = row['mtime']

    def _to_row(self, storage: EntityStorage) -> Row:
        assert self._node is not None
        now = utc_now()
        user = self._user if self._user is not None else get_default_user(storage)
        return {
            'uuid': self._uuid,
            'dbnode_id': stored_node_pk(self._node, 'comment'),
            'ctime': now,
            'mtime': now,
            'user_id': self._require_stored_reference(user, 'user', storage),
            'content': self._content,
        }

    def _after_insert(self, row: Row) -> None:
        self._ctime, self._mtime, self._user_id = row['ctime'], row['mtime'], row['user_id']

    def _identity(self) -> object:
        return self._uuid

    @property
    def uuid(self) -> str:
        """The comment's uuid."""
        return self._uuid

    @property
    def node(self) -> Node:
        """The node commented on."""
        if self._node is None:
            assert self._node_id is not None
            self._node = load_stored_node(self.storage, self._node_id)
        return self._node

    @property
    def user(self) -> User:
        """The author."""
        if self._user is None:
            self._user = (
                User.collection(self.storage).get(pk=self._user_id)
                if self._user_id is not None
                else get_default_user(self.storage)
            )
        return self._user

    content = SavedField[str]('The text (saved at once when the comment is stored).', stamps_mtime=True)

    @property
    def ctime(self) -> datetime.datetime | None:
        """When the comment was stored."""
        return self._ctime

    @property
    def mtime(self) -> datetime.datetime | None:
        """When the comment was last changed."""
        return self._mtime


class NodeComments:
    """The comments on one node (``node.base.comments``)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def add(self, content: str, user: User | None = None) -> Comment:
        """Store a new comment on the (stored) node and return it."""
        return Comment(self._node, content, user).store()

    def all(self) -> list[Comment]:
        """Return the comments on the node, oldest first."""
        if self._node.pk is None:
            return []
        return Comment.collection(self._node.storage).for_node(self._node)

    def remove(self, pk: int) -> None:
        """Delete the comment ``pk`` of this node."""
        comment = Comment.collection(self._node.storage).get(pk=pk)
        if comment._node_id != self._node.pk:
            raise ModificationNotAllowedError(f'comment {pk} is not a comment on {self._node!r}')
        Comment.collection(self._node.storage).delete(pk)
