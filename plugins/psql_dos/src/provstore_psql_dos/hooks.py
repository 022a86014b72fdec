"""Hook implementations of the ``psql_dos`` plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provstore import hookimpl

if TYPE_CHECKING:
    from provstore.storage import StorageBackend


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    """Return the ``psql_dos`` and ``sqlite_dos`` storage backends."""
    from provstore_psql_dos.psql_dos.backend import PsqlDosStorageBackend  # noqa: PLC0415 - lazy by design
    from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend  # noqa: PLC0415 - lazy by design

    return [PsqlDosStorageBackend, SqliteDosStorageBackend]
