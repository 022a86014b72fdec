"""The SQL schema: SQLAlchemy models of the tables of aiida-core 2.x, for PostgreSQL and SQLite alike.

One :class:`~sqlalchemy.MetaData` serves both dialects. Tables, columns, nullability, foreign keys (with their
``ON DELETE`` actions, all ``DEFERRABLE INITIALLY DEFERRED``), unique constraints, indexes and every name mirror
aiida-core's ``psql_dos`` schema at its head ``main_0002`` and its SQLite variant, so that databases and archives
move between the two systems. Types follow the dialect:

============  =========================  ====================================================
column        PostgreSQL                 SQLite
============  =========================  ====================================================
uuid          ``uuid``                   ``VARCHAR(32)`` holding the dashed 36-character form
JSON          ``jsonb``                  ``JSON``
time          ``timestamp with time zone``  ``DATETIME``, naive UTC
============  =========================  ====================================================

The ``ix_pat_*`` indexes (``varchar_pattern_ops``, for ``LIKE 'prefix%'``) exist on PostgreSQL only. Defaults are
applied by SQLAlchemy, never by the server, as in aiida-core.

Beside aiida-core's tables is one of provstore's own, whose name says so: ``provstore_node_file``
(:class:`DbNodeFile`), the files of every stored node as rows (node, path, object key), kept in step with
``repository_metadata`` by every statement that writes nodes (:mod:`provstore_psql_dos.nodefiles`), so that "which
objects are referenced" is one query. Archives never hold it.

This module imports SQLAlchemy: import it only where a database is used.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

__all__ = [
    'ENTITY_TABLES',
    'JSON_TYPE',
    'NAMING_CONVENTION',
    'OWN_TABLES',
    'Base',
    'DbAuthInfo',
    'DbComment',
    'DbComputer',
    'DbGroup',
    'DbGroupNode',
    'DbLink',
    'DbLog',
    'DbNode',
    'DbNodeFile',
    'DbSetting',
    'DbUser',
    'TZDateTime',
    'UUIDString',
    'get_new_uuid',
    'pattern_index',
    'utc_now',
]

NAMING_CONVENTION: dict[str, str] = {
    'pk': '%(table_name)s_pkey',
    # NOTE: ``column_0_N_label`` is ``<table>_<column>``, hence names like ``ix_db_dbnode_db_dbnode_ctime``: aiida's.
    'ix': 'ix_%(table_name)s_%(column_0_N_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_N_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s',
}
"""Constraint and index names, as aiida-core makes them."""


def get_new_uuid() -> str:
    """Return a new random uuid in its dashed string form, the form every uuid column holds."""
    return str(uuid.uuid4())


def utc_now() -> datetime.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.datetime.now(datetime.timezone.utc)


class UUIDString(TypeDecorator[str]):
    """A uuid as a dashed lower-case string: ``uuid`` on PostgreSQL, ``VARCHAR(32)`` on SQLite (as aiida-core has it).

    :class:`uuid.UUID` values are accepted and written as strings; values read are always strings.
    """

    impl = String(32)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use the native ``uuid`` type on PostgreSQL."""
        if dialect.name == 'postgresql':
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(String(32))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Write :class:`uuid.UUID` values in their dashed string form."""
        if isinstance(value, uuid.UUID):
            return str(value)
        return value  # type: ignore[no-any-return]

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Read every value as a string."""
        return None if value is None else str(value)


class TZDateTime(TypeDecorator[datetime.datetime]):
    """A point in time: ``timestamp with time zone`` on PostgreSQL, naive UTC ``DATETIME`` on SQLite.

    Values read are timezone-aware, in UTC. A naive value written is taken to be UTC on both dialects.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use a naive ``DATETIME`` on SQLite, which has no time zones."""
        if dialect.name == 'sqlite':
            return dialect.type_descriptor(DateTime())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        """Write UTC: naive on SQLite, aware elsewhere."""
        if value is None:
            return None
        value = value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value
        value = value.astimezone(datetime.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == 'sqlite' else value

    def process_result_value(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        """Read a timezone-aware value in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)


JSON_TYPE: TypeEngine[Any] = JSON().with_variant(postgresql.JSONB(), 'postgresql')
"""A JSON document: ``jsonb`` on PostgreSQL, ``JSON`` on SQLite."""


def pattern_index(table: str, column: str) -> Index:
    """Return the ``ix_pat_<table>_<column>`` index (``varchar_pattern_ops``), created on PostgreSQL only."""
    return Index(
        f'ix_pat_{table}_{column}',
        column,
        postgresql_using='btree',
        postgresql_ops={column: 'varchar_pattern_ops'},
    ).ddl_if(dialect='postgresql')


def _fk(target: str, ondelete: str | None = None) -> ForeignKey:
    """Return a foreign key to ``target``, deferred to commit time like every foreign key of aiida-core."""
    return ForeignKey(target, ondelete=ondelete, deferrable=True, initially='DEFERRED')


class Base(DeclarativeBase):
    """The declarative base of every model; its ``metadata`` is the whole schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DbUser(Base):
    """A user: the author of nodes, groups and comments, identified by email."""

    __tablename__ = 'db_dbuser'
    __table_args__ = (pattern_index('db_dbuser', 'email'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    first_name: Mapped[str] = mapped_column(String(254), nullable=False, default='')
    last_name: Mapped[str] = mapped_column(String(254), nullable=False, default='')
    institution: Mapped[str] = mapped_column(String(254), nullable=False, default='')


class DbComputer(Base):
    """A computer that codes run on, identified by its unique label."""

    __tablename__ = 'db_dbcomputer'
    __table_args__ = (pattern_index('db_dbcomputer', 'label'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(UUIDString(), nullable=False, unique=True, default=get_new_uuid)
    label: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False, default='')
    description: Mapped[str] = mapped_column(Text, nullable=False, default='')
    scheduler_type: Mapped[str] = mapped_column(String(255), nullable=False, default='')
    transport_type: Mapped[str] = mapped_column(String(255), nullable=False, default='')
    _metadata: Mapped[dict[str, Any]] = mapped_column('metadata', JSON_TYPE, nullable=False, default=dict)


class DbAuthInfo(Base):
    """How one user reaches one computer."""

    __tablename__ = 'db_dbauthinfo'
    __table_args__ = (UniqueConstraint('aiidauser_id', 'dbcomputer_id'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aiidauser_id: Mapped[int] = mapped_column(
        Integer, _fk('db_dbuser.id', ondelete='CASCADE'), nullable=False, index=True
    )
    dbcomputer_id: Mapped[int] = mapped_column(
        Integer, _fk('db_dbcomputer.id', ondelete='CASCADE'), nullable=False, index=True
    )
    _metadata: Mapped[dict[str, Any]] = mapped_column('metadata', JSON_TYPE, nullable=False, default=dict)
    auth_params: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE, nullable=False, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class DbNode(Base):
    """A node of the provenance graph: a piece of data or a step of a computation."""

    __tablename__ = 'db_dbnode'
    __table_args__ = (
        pattern_index('db_dbnode', 'label'),
        pattern_index('db_dbnode', 'node_type'),
        pattern_index('db_dbnode', 'process_type'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(UUIDString(), nullable=False, unique=True, default=get_new_uuid)
    node_type: Mapped[str] = mapped_column(String(255), nullable=False, index=True, default='')
    process_type: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    label: Mapped[str] = mapped_column(String(255), nullable=False, index=True, default='')
    description: Mapped[str] = mapped_column(Text, nullable=False, default='')
    ctime: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, index=True, default=utc_now)
    mtime: Mapped[datetime.datetime] = mapped_column(
        TZDateTime(), nullable=False, index=True, default=utc_now, onupdate=utc_now
    )
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE, nullable=True, default=dict)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JSON_TYPE, nullable=True, default=dict)
    repository_metadata: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE, nullable=False, default=dict)
    dbcomputer_id: Mapped[int | None] = mapped_column(
        Integer, _fk('db_dbcomputer.id', ondelete='RESTRICT'), nullable=True, index=True
    )
    user_id: Mapped[int] = mapped_column(Integer, _fk('db_dbuser.id', ondelete='RESTRICT'), nullable=False, index=True)


class DbLink(Base):
    """A typed, labelled link from an input node to an output node."""

    __tablename__ = 'db_dblink'
    __table_args__ = (pattern_index('db_dblink', 'label'), pattern_index('db_dblink', 'type'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # NOTE: deleting an input node is not cascaded to its links, deleting an output node is: as in aiida-core.
    input_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id'), nullable=False, index=True)
    output_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id', ondelete='CASCADE'), nullable=False, index=True)
    label: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(255), nullable=False, index=True)


class DbGroup(Base):
    """A group of nodes, unique by label and type string."""

    __tablename__ = 'db_dbgroup'
    __table_args__ = (
        UniqueConstraint('label', 'type_string'),
        pattern_index('db_dbgroup', 'label'),
        pattern_index('db_dbgroup', 'type_string'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(UUIDString(), nullable=False, unique=True, default=get_new_uuid)
    label: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    type_string: Mapped[str] = mapped_column(String(255), nullable=False, index=True, default='')
    time: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, default=utc_now)
    description: Mapped[str] = mapped_column(Text, nullable=False, default='')
    extras: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE, nullable=False, default=dict)
    user_id: Mapped[int] = mapped_column(Integer, _fk('db_dbuser.id', ondelete='CASCADE'), nullable=False, index=True)


class DbGroupNode(Base):
    """The membership of a node in a group."""

    __tablename__ = 'db_dbgroup_dbnodes'
    __table_args__ = (UniqueConstraint('dbgroup_id', 'dbnode_id'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dbnode_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id'), nullable=False, index=True)
    dbgroup_id: Mapped[int] = mapped_column(Integer, _fk('db_dbgroup.id'), nullable=False, index=True)


class DbComment(Base):
    """A comment a user wrote on a node."""

    __tablename__ = 'db_dbcomment'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(UUIDString(), nullable=False, unique=True, default=get_new_uuid)
    dbnode_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id', ondelete='CASCADE'), nullable=False, index=True)
    ctime: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, default=utc_now)
    mtime: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, default=utc_now, onupdate=utc_now)
    user_id: Mapped[int] = mapped_column(Integer, _fk('db_dbuser.id', ondelete='CASCADE'), nullable=False, index=True)
    content: Mapped[str] = mapped_column(Text, nullable=False, default='')


class DbLog(Base):
    """A log record of a process node."""

    __tablename__ = 'db_dblog'
    __table_args__ = (pattern_index('db_dblog', 'loggername'), pattern_index('db_dblog', 'levelname'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(UUIDString(), nullable=False, unique=True, default=get_new_uuid)
    time: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, default=utc_now)
    loggername: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    levelname: Mapped[str] = mapped_column(String(50), nullable=False, index=True)
    dbnode_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id', ondelete='CASCADE'), nullable=False, index=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default='')
    _metadata: Mapped[dict[str, Any]] = mapped_column('metadata', JSON_TYPE, nullable=False, default=dict)


class DbSetting(Base):
    """A global setting of the storage: a unique key and a JSON value (``repository|uuid``, for one)."""

    __tablename__ = 'db_dbsetting'
    __table_args__ = (pattern_index('db_dbsetting', 'key'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), nullable=False, unique=True)
    val: Mapped[Any] = mapped_column(JSON_TYPE, nullable=True, default=dict)
    description: Mapped[str] = mapped_column(Text, nullable=False, default='')
    time: Mapped[datetime.datetime] = mapped_column(TZDateTime(), nullable=False, default=utc_now, onupdate=utc_now)


class DbNodeFile(Base):
    """A file of a stored node: its path in the node's tree and the key of its content in the repository (provstore's
    own table; a node's rows go with it)."""

    __tablename__ = 'provstore_node_file'
    __table_args__ = (Index('ix_provstore_node_file_key', 'key'),)

    node_id: Mapped[int] = mapped_column(Integer, _fk('db_dbnode.id', ondelete='CASCADE'), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, nullable=False)


OWN_TABLES = (DbNodeFile.__tablename__,)
"""The tables of provstore's own, beside aiida-core's."""


ENTITY_TABLES: dict[str, str] = {
    'users': DbUser.__tablename__,
    'computers': DbComputer.__tablename__,
    'authinfos': DbAuthInfo.__tablename__,
    'nodes': DbNode.__tablename__,
    'links': DbLink.__tablename__,
    'groups': DbGroup.__tablename__,
    'group_nodes': DbGroupNode.__tablename__,
    'comments': DbComment.__tablename__,
    'logs': DbLog.__tablename__,
}
"""The entity tables by the name of their entities, as :meth:`get_info` counts them."""
