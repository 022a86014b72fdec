"""Work the ``psql_dos`` entity tests run in other processes (started with ``spawn``, so importable by module name)."""

from __future__ import annotations

import traceback
from typing import Any

from provstore.config import Profile
from provstore_psql_dos.base import DosStorageBackend

EXTRAS = 200
"""How many extras each writer sets."""


def set_extras(
    backend_class: type[DosStorageBackend], profile: Profile, node_id: int, prefix: str, *queues: Any
) -> None:
    """Open the storage, wait for the other writers, then set :data:`EXTRAS` extras ``<prefix><i>`` one at a time.

    :param queues: a barrier to wait at with the other writers, and a queue on which to put ``(prefix, None)``
        when done, or ``(prefix, traceback)`` if anything failed.
    """
    barrier, results = queues
    try:
        storage = backend_class(profile)
        try:
            barrier.wait(60)
            for index in range(EXTRAS):
                storage.patch_node_json(node_id, 'extras', {f'{prefix}{index}': index}, [])
        finally:
            storage.close()
    except BaseException:  # reported to the parent, which fails the test
        results.put((prefix, traceback.format_exc()))
    else:
        results.put((prefix, None))
