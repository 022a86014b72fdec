"""Log records of stored nodes (written for process nodes as they run). Immutable once stored."""

from __future__ import annotations

import copy
import datetime
import uuid as uuid_module
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from provstore.orm.comments import load_stored_node, stored_node_pk
from provstore.orm.entities import Collection, CollectionDescriptor, Entity, clean_json, utc_now
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node

__all__ = ['Log', 'LogCollection']


class LogCollection(Collection['Log']):
    """The log records of a storage."""

    def for_node(self, node: Node) -> list[Log]:
        """Return the log records of ``node``, oldest first."""
        return self.find(node=node)


class Log(Entity):
    """A log record of a stored node (usually a process node). Immutable once stored."""

    _entity_type = EntityType.LOG
    _fields: ClassVar[Mapping[str, str]] = {'pk': 'id', 'node': 'dbnode_id'}
    collection = CollectionDescriptor(LogCollection)

    def __init__(
        self,
        node: Node,
        loggername: str,
        levelname: str,
        message: str = '',
        *,
        metadata: dict[str, Any] | None = None,
        time: datetime.datetime | None = None,
    ) -> None:
        """:param node: a stored node; :param time: when it happened (default: now, UTC)."""
        super().__init__(node.storage)
        self._node: Node | None = node
        self._node_id: int | None = None
        self._uuid = str(uuid_module.uuid4())
        self._loggername = loggername
        self._levelname = levelname
        self._message = message
        self._metadata: dict[str, Any] = clean_json(metadata or {}, 'log metadata')
        if time is not None and time.tzinfo is None:
            raise ValueError('the time of a log record must be timezone-aware')
        self._time = time

    def _load_row(self, row: Row) -> None:
        self._uuid = row['uuid']
        self._node, self._node_id = None, row['dbnode_id']
        self._loggername = row['loggername']
        self._levelname = row['levelname']
        self._message = row['message']
        self._metadata = row['metadata'] or {}
        self._time = row['time']

    def _to_row(self, storage: EntityStorage) -> Row:
        assert self._node is not None
        return {
            'uuid': self._uuid,
            'time': self._time or utc_now(),
            'loggername': self._loggername,
            'levelname': self._levelname,
            'dbnode_id': stored_node_pk(self._node, 'log record'),
            'message': self._message,
            'metadata': self._metadata,
        }

    def _after_insert(self, row: Row) -> None:
        self._time = row['time']

    def _identity(self) -> object:
        return self._uuid

    @property
    def uuid(self) -> str:
        """The record's uuid."""
        return self._uuid

    @property
    def node(self) -> Node:
        """The node the record is about."""
        if self._node is None:
            assert self._node_id is not None
            self._node = load_stored_node(self.storage, self._node_id)
        return self._node

    @property
    def loggername(self) -> str:
        """The name of the logger."""
        return self._loggername

    @property
    def levelname(self) -> str:
        """The level: ``DEBUG``, ``INFO``, ``REPORT``, ``WARNING``, ``ERROR``, ``CRITICAL``."""
        return self._levelname

    @property
    def message(self) -> str:
        """The message."""
        return self._message

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the record's metadata."""
        return copy.deepcopy(self._metadata)

    @property
    def time(self) -> datetime.datetime | None:
        """When it happened."""
        return self._time
