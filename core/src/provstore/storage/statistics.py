"""Summaries of a whole storage, as aiida-core's storage offers them through ``storage.query()``."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import TYPE_CHECKING, Any

from provstore.storage.entities import EntityType
from provstore.storage.query import Condition, PathEntry, Projection, Query

if TYPE_CHECKING:
    from provstore.storage.entities import EntityStorage

__all__ = ['StorageQueries']


class StorageQueries:
    """What ``storage.query()`` gives: aiida-core's queries of a whole storage."""

    def __init__(self, storage: EntityStorage) -> None:
        self._storage = storage

    def get_creation_statistics(self, user_pk: int | None = None) -> dict[str, Any]:
        """Return how many nodes there are (``total``), by ``node_type`` (``types``), and by the day they were made
        (``ctime_by_day``: ``'YYYY-MM-DD'`` in this process's local time, in date order), as aiida-core's.

        :param user_pk: count only the nodes of this user.
        """
        where = None if user_pk is None else Condition('user_id', (), '==', user_pk)

        def query(*projections: Projection) -> Query:
            return Query.build((PathEntry(EntityType.NODE, where, projections),))

        count = Projection('id', func='count')
        ((total,),) = list(self._storage.run_query(query(count)))
        types = {
            node_type: number for node_type, number in self._storage.run_query(query(Projection('node_type'), count))
        }
        days: Counter[str] = Counter()
        for (value,) in self._storage.run_query(query(Projection('ctime')), batch_size=10_000):
            ctime = datetime.datetime.fromisoformat(value) if isinstance(value, str) else value
            if ctime is not None:
                days[ctime.astimezone().strftime('%Y-%m-%d')] += 1
        return {'total': int(total), 'types': types, 'ctime_by_day': dict(sorted(days.items()))}
