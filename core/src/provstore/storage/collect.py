"""Deleting the repository objects no stored node refers to, safely while others write (see
:mod:`provstore.storage.objectguard` for the protocol).

The keys are compared in a scratch SQLite file, never in memory: the repository's keys and the referenced keys
are each streamed into a table, and the difference is one query.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from provstore.storage.entities import EntityStorage
from provstore.storage.objectguard import ObjectGuard

__all__ = ['GUARD_TIMEOUT', 'Collection', 'delete_unreferenced']

GUARD_TIMEOUT = 10.0
"""Seconds maintenance waits for writers to let the object guard go before it gives up deleting, this time."""
BATCH = 10_000

PROTOCOL = True
"""Whether the deletion follows the object guard's protocol. Tests switch it off to show that their race loses
objects without it; nothing else may."""


@dataclass(frozen=True)
class Collection:
    """What a collection did (or would do, on a dry run)."""

    unreferenced: int
    """Objects no node referred to when the collection looked."""
    deleted: int
    deleted_bytes: int
    kept_busy: bool = False
    """Writers held the guard for :data:`GUARD_TIMEOUT` seconds: nothing was deleted."""

    def step(self, dry_run: bool) -> str:
        """The line maintenance reports."""
        if not self.unreferenced:
            return 'nothing unreferenced to delete'
        if self.kept_busy:
            return f'kept {self.unreferenced:,} unreferenced objects: writers were busy (the next maintenance retries)'
        verb = 'would delete' if dry_run else 'delete'
        return f'{verb} {self.deleted:,} unreferenced objects ({self.deleted_bytes:,} bytes)'


def delete_unreferenced(
    storage: EntityStorage, guard: ObjectGuard, *, dry_run: bool = False, timeout: float | None = None
) -> Collection:
    """Delete (or, on a dry run, count) the objects of ``storage``'s repository no stored node refers to.

    :param timeout: seconds to wait for the guard (default :data:`GUARD_TIMEOUT`).
    """
    repository = storage.get_repository()
    with tempfile.TemporaryDirectory(prefix='provstore-collect-') as folder:
        keys = _Keys(Path(folder) / 'keys.sqlite3')
        try:
            keys.fill('objects', repository.list_objects())
            keys.fill('referenced', storage.iter_referenced_keys(BATCH))
            unreferenced = keys.count_unreferenced()
            if not unreferenced:
                return Collection(0, 0, 0)
            if dry_run:
                size = sum(sum(repository.get_object_sizes(batch)) for batch in keys.unreferenced())
                return Collection(unreferenced, unreferenced, size)
            if not PROTOCOL:
                return _delete(storage, keys, unreferenced)
            with guard.exclusive(GUARD_TIMEOUT if timeout is None else timeout) as held:
                if not held:
                    return Collection(unreferenced, 0, 0, kept_busy=True)
                # NOTE: no writer is between its objects and its commit now: what is referenced is all committed
                keys.fill('referenced', storage.iter_referenced_keys(BATCH))
                return _delete(storage, keys, unreferenced)
        finally:
            keys.close()


def _delete(storage: EntityStorage, keys: _Keys, unreferenced: int) -> Collection:
    repository = storage.get_repository()
    deleted = size = 0
    for batch in keys.unreferenced():
        size += sum(repository.get_object_sizes(batch))
        repository.delete_objects(batch)
        deleted += len(batch)
    return Collection(unreferenced, deleted, size)


class _Keys:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE objects (key TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE referenced (key TEXT PRIMARY KEY) WITHOUT ROWID;
            """
        )

    def fill(self, table: str, keys: Iterable[str]) -> None:
        iterator = iter(keys)
        while batch := list(islice(iterator, BATCH)):
            self._db.executemany(f'INSERT OR IGNORE INTO {table} VALUES (?)', ((key,) for key in batch))
        self._db.commit()

    def count_unreferenced(self) -> int:
        query = 'SELECT count(*) FROM (SELECT key FROM objects EXCEPT SELECT key FROM referenced)'
        return int(self._db.execute(query).fetchone()[0])

    def unreferenced(self) -> Iterator[list[str]]:
        cursor = self._db.execute('SELECT key FROM objects EXCEPT SELECT key FROM referenced ORDER BY 1')
        while batch := [key for (key,) in cursor.fetchmany(BATCH)]:
            yield batch

    def close(self) -> None:
        self._db.close()
