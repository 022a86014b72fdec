"""Schema migrations with alembic: the revisions in :mod:`provstore_psql_dos.migrations`, for both dialects.

Every function works on a connection the caller has opened, inside the caller's transaction: a migration is
committed whole or not at all (both PostgreSQL and SQLite have transactional DDL). This module imports alembic and
SQLAlchemy: import it only where a migration runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = ['MIGRATIONS_FOLDER', 'current_revision', 'downgrade', 'head_revision', 'known_revisions', 'upgrade']

MIGRATIONS_FOLDER = Path(__file__).resolve().parent / 'migrations'
"""The alembic script folder: ``env.py`` and ``versions/``."""


def _config(connection: Connection | None = None) -> Config:
    """Return an alembic configuration of the migrations folder, running on ``connection``."""
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS_FOLDER))
    config.attributes['connection'] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """Return the revision of the newest schema.

    :raises RuntimeError: if the revisions do not have exactly one head.
    """
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f'The migrations in {MIGRATIONS_FOLDER} must have one head, found {heads}')
    return heads[0]


def known_revisions() -> set[str]:
    """Return every revision this code knows."""
    return {script.revision for script in _scripts().walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """Return the revision recorded in the database, or ``None`` when there is none."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = 'head') -> None:
    """Migrate the database on ``connection`` up to ``revision``, inside the caller's transaction."""
    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database on ``connection`` down to ``revision`` (``'base'``: no schema at all)."""
    command.downgrade(_config(connection), revision)
