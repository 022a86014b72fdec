"""The alembic environment of provstore's schema: migrations run on a connection passed in by provstore.

:mod:`provstore_psql_dos.migrator` puts that connection in ``config.attributes['connection']``, inside a
transaction it controls. SQLite gets batch operations (it cannot alter most of a table in place).
"""

from __future__ import annotations

from alembic import context

from provstore_psql_dos.models import Base


def run_migrations_online() -> None:
    """Run the migrations on the connection provstore passed in."""
    connection = context.config.attributes.get('connection')
    if connection is None:
        raise RuntimeError("provstore's migrations run on the connection given in config.attributes['connection']")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == 'sqlite',
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise NotImplementedError('provstore runs its migrations online only')
run_migrations_online()
