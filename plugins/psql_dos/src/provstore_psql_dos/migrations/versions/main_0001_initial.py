"""The initial schema, from an empty database: the tables of aiida-core 2.x as they are at its head ``main_0002``.

Both dialects: uuid, JSON and time columns take their dialect's type (see :mod:`provstore_psql_dos.models`), and
the ``ix_pat_*`` pattern indexes are created on PostgreSQL only.

Revision ID: main_0001
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# NOTE: the three dialect-dependent types are imported rather than copied: a change to them is a schema change
# and needs a migration of its own anyway.
from provstore_psql_dos.models import JSON_TYPE, TZDateTime, UUIDString

revision = 'main_0001'
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

PATTERN_INDEXES = (
    ('db_dbuser', 'email'),
    ('db_dbcomputer', 'label'),
    ('db_dbnode', 'label'),
    ('db_dbnode', 'node_type'),
    ('db_dbnode', 'process_type'),
    ('db_dblink', 'label'),
    ('db_dblink', 'type'),
    ('db_dbgroup', 'label'),
    ('db_dbgroup', 'type_string'),
    ('db_dblog', 'loggername'),
    ('db_dblog', 'levelname'),
    ('db_dbsetting', 'key'),
)
"""The ``(table, column)`` of every ``ix_pat_<table>_<column>`` index (``varchar_pattern_ops``, PostgreSQL only)."""

INDEXED = (
    ('db_dbauthinfo', 'aiidauser_id'),
    ('db_dbauthinfo', 'dbcomputer_id'),
    ('db_dbnode', 'node_type'),
    ('db_dbnode', 'process_type'),
    ('db_dbnode', 'label'),
    ('db_dbnode', 'ctime'),
    ('db_dbnode', 'mtime'),
    ('db_dbnode', 'dbcomputer_id'),
    ('db_dbnode', 'user_id'),
    ('db_dblink', 'input_id'),
    ('db_dblink', 'output_id'),
    ('db_dblink', 'label'),
    ('db_dblink', 'type'),
    ('db_dbgroup', 'label'),
    ('db_dbgroup', 'type_string'),
    ('db_dbgroup', 'user_id'),
    ('db_dbgroup_dbnodes', 'dbnode_id'),
    ('db_dbgroup_dbnodes', 'dbgroup_id'),
    ('db_dbcomment', 'dbnode_id'),
    ('db_dbcomment', 'user_id'),
    ('db_dblog', 'loggername'),
    ('db_dblog', 'levelname'),
    ('db_dblog', 'dbnode_id'),
)
"""The ``(table, column)`` of every plain index ``ix_<table>_<table>_<column>``."""

TABLES = (
    'db_dbuser',
    'db_dbcomputer',
    'db_dbauthinfo',
    'db_dbnode',
    'db_dblink',
    'db_dbgroup',
    'db_dbgroup_dbnodes',
    'db_dbcomment',
    'db_dblog',
    'db_dbsetting',
)
"""Every table, in an order where each refers only to tables before it."""


def _id() -> sa.Column[int]:
    return sa.Column('id', sa.Integer(), nullable=False)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint('id', name=f'{table}_pkey')


def _fk(table: str, column: str, referred: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    """Return the foreign key ``fk_<table>_<column>_<referred>`` to ``<referred>.id``, deferred to commit time."""
    return sa.ForeignKeyConstraint(
        [column],
        [f'{referred}.id'],
        name=f'fk_{table}_{column}_{referred}',
        ondelete=ondelete,
        deferrable=True,
        initially='DEFERRED',
    )


def _uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=f'uq_{table}_{"_".join(columns)}')


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        'db_dbuser',
        _id(),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('first_name', sa.String(254), nullable=False),
        sa.Column('last_name', sa.String(254), nullable=False),
        sa.Column('institution', sa.String(254), nullable=False),
        _pk('db_dbuser'),
        _uq('db_dbuser', 'email'),
    )
    op.create_table(
        'db_dbcomputer',
        _id(),
        sa.Column('uuid', UUIDString(), nullable=False),
        sa.Column('label', sa.String(255), nullable=False),
        sa.Column('hostname', sa.String(255), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('scheduler_type', sa.String(255), nullable=False),
        sa.Column('transport_type', sa.String(255), nullable=False),
        sa.Column('metadata', JSON_TYPE, nullable=False),
        _pk('db_dbcomputer'),
        _uq('db_dbcomputer', 'label'),
        _uq('db_dbcomputer', 'uuid'),
    )
    op.create_table(
        'db_dbauthinfo',
        _id(),
        sa.Column('aiidauser_id', sa.Integer(), nullable=False),
        sa.Column('dbcomputer_id', sa.Integer(), nullable=False),
        sa.Column('metadata', JSON_TYPE, nullable=False),
        sa.Column('auth_params', JSON_TYPE, nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        _pk('db_dbauthinfo'),
        _fk('db_dbauthinfo', 'aiidauser_id', 'db_dbuser', ondelete='CASCADE'),
        _fk('db_dbauthinfo', 'dbcomputer_id', 'db_dbcomputer', ondelete='CASCADE'),
        _uq('db_dbauthinfo', 'aiidauser_id', 'dbcomputer_id'),
    )
    op.create_table(
        'db_dbnode',
        _id(),
        sa.Column('uuid', UUIDString(), nullable=False),
        sa.Column('node_type', sa.String(255), nullable=False),
        sa.Column('process_type', sa.String(255), nullable=True),
        sa.Column('label', sa.String(255), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('ctime', TZDateTime(), nullable=False),
        sa.Column('mtime', TZDateTime(), nullable=False),
        sa.Column('attributes', JSON_TYPE, nullable=True),
        sa.Column('extras', JSON_TYPE, nullable=True),
        sa.Column('repository_metadata', JSON_TYPE, nullable=False),
        sa.Column('dbcomputer_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=False),
        _pk('db_dbnode'),
        _fk('db_dbnode', 'dbcomputer_id', 'db_dbcomputer', ondelete='RESTRICT'),
        _fk('db_dbnode', 'user_id', 'db_dbuser', ondelete='RESTRICT'),
        _uq('db_dbnode', 'uuid'),
    )
    op.create_table(
        'db_dblink',
        _id(),
        sa.Column('input_id', sa.Integer(), nullable=False),
        sa.Column('output_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(255), nullable=False),
        sa.Column('type', sa.String(255), nullable=False),
        _pk('db_dblink'),
        _fk('db_dblink', 'input_id', 'db_dbnode'),
        _fk('db_dblink', 'output_id', 'db_dbnode', ondelete='CASCADE'),
    )
    op.create_table(
        'db_dbgroup',
        _id(),
        sa.Column('uuid', UUIDString(), nullable=False),
        sa.Column('label', sa.String(255), nullable=False),
        sa.Column('type_string', sa.String(255), nullable=False),
        sa.Column('time', TZDateTime(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('extras', JSON_TYPE, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        _pk('db_dbgroup'),
        _fk('db_dbgroup', 'user_id', 'db_dbuser', ondelete='CASCADE'),
        _uq('db_dbgroup', 'label', 'type_string'),
        _uq('db_dbgroup', 'uuid'),
    )
    op.create_table(
        'db_dbgroup_dbnodes',
        _id(),
        sa.Column('dbnode_id', sa.Integer(), nullable=False),
        sa.Column('dbgroup_id', sa.Integer(), nullable=False),
        _pk('db_dbgroup_dbnodes'),
        _fk('db_dbgroup_dbnodes', 'dbgroup_id', 'db_dbgroup'),
        _fk('db_dbgroup_dbnodes', 'dbnode_id', 'db_dbnode'),
        _uq('db_dbgroup_dbnodes', 'dbgroup_id', 'dbnode_id'),
    )
    op.create_table(
        'db_dbcomment',
        _id(),
        sa.Column('uuid', UUIDString(), nullable=False),
        sa.Column('dbnode_id', sa.Integer(), nullable=False),
        sa.Column('ctime', TZDateTime(), nullable=False),
        sa.Column('mtime', TZDateTime(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        _pk('db_dbcomment'),
        _fk('db_dbcomment', 'dbnode_id', 'db_dbnode', ondelete='CASCADE'),
        _fk('db_dbcomment', 'user_id', 'db_dbuser', ondelete='CASCADE'),
        _uq('db_dbcomment', 'uuid'),
    )
    op.create_table(
        'db_dblog',
        _id(),
        sa.Column('uuid', UUIDString(), nullable=False),
        sa.Column('time', TZDateTime(), nullable=False),
        sa.Column('loggername', sa.String(255), nullable=False),
        sa.Column('levelname', sa.String(50), nullable=False),
        sa.Column('dbnode_id', sa.Integer(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('metadata', JSON_TYPE, nullable=False),
        _pk('db_dblog'),
        _fk('db_dblog', 'dbnode_id', 'db_dbnode', ondelete='CASCADE'),
        _uq('db_dblog', 'uuid'),
    )
    op.create_table(
        'db_dbsetting',
        _id(),
        sa.Column('key', sa.String(1024), nullable=False),
        sa.Column('val', JSON_TYPE, nullable=True),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('time', TZDateTime(), nullable=False),
        _pk('db_dbsetting'),
        _uq('db_dbsetting', 'key'),
    )
    for table, column in INDEXED:
        op.create_index(f'ix_{table}_{table}_{column}', table, [column])
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in PATTERN_INDEXES:
            op.create_index(
                f'ix_pat_{table}_{column}',
                table,
                [column],
                postgresql_using='btree',
                postgresql_ops={column: 'varchar_pattern_ops'},
            )


def downgrade() -> None:
    """Drop every table (and with them their indexes)."""
    for table in reversed(TABLES):
        op.drop_table(table)
