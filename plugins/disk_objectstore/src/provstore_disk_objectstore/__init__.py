"""provstore-disk-objectstore: a repository backend over a disk-objectstore container.

The backend class lives in :mod:`provstore_disk_objectstore.backend`; it is imported lazily by the hook
module, and it imports ``disk_objectstore`` (and so SQLAlchemy) only when a container is first used, so that
listing plugins stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
