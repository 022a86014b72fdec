"""provstore's table of the files of stored nodes, ``provstore_node_file``, filled from every node's
``repository_metadata``. aiida-core's tables are untouched.

Revision ID: main_0002
Revises: main_0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from provstore.repository import Repository

revision = 'main_0002'
down_revision: str | None = 'main_0001'
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

BATCH = 5000
"""Nodes read per query while the table is filled."""


def upgrade() -> None:
    table = op.create_table(
        'provstore_node_file',
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['node_id'],
            ['db_dbnode.id'],
            name='fk_provstore_node_file_node_id_db_dbnode',
            ondelete='CASCADE',
            deferrable=True,
            initially='DEFERRED',
        ),
        sa.PrimaryKeyConstraint('node_id', 'path', name='provstore_node_file_pkey'),
    )
    op.create_index('ix_provstore_node_file_key', 'provstore_node_file', ['key'])
    nodes = sa.table('db_dbnode', sa.column('id', sa.Integer()), sa.column('repository_metadata', sa.Text()))
    connection = op.get_bind()
    after = 0
    while True:
        # NOTE: read as text on both databases (jsonb cast to text), parsed here: the migration needs no JSON type
        metadata = sa.cast(nodes.c.repository_metadata, sa.Text())
        batch = connection.execute(
            sa.select(nodes.c.id, metadata).where(nodes.c.id > after).order_by(nodes.c.id).limit(BATCH)
        ).all()
        rows = [
            {'node_id': node_id, 'path': path, 'key': key}
            for node_id, text in batch
            if text and text != '{}'
            for path, key in _file_references(node_id, text)
        ]
        if rows:
            connection.execute(sa.insert(table), rows)
        if len(batch) < BATCH:
            return
        after = batch[-1][0]


def _file_references(node_id: int, text: str) -> list[tuple[str, str]]:
    try:
        return Repository.file_references(json.loads(text))
    except ValueError as exc:
        raise RuntimeError(
            f'the repository_metadata of node {node_id} is not a repository tree ({exc}): nothing was migrated'
        ) from None


def downgrade() -> None:
    op.drop_table('provstore_node_file')
