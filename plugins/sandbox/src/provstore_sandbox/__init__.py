"""provstore-sandbox: a throw-away repository backend for nodes that are not stored yet.

The backend class lives in :mod:`provstore_sandbox.backend`; it is imported lazily by the hook module so that
listing plugins stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
