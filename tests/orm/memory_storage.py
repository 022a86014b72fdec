"""A small in-memory :class:`~provstore.storage.EntityStorage` for the ORM's pure tests.

It keeps the tables as dicts, checks the unique constraints of aiida-core's schema, implements savepoints by
snapshots and computes traversals with a breadth-first search. Its files go to a real ``sandbox`` repository
backend under the test's ``tmp_path``. It is not a plugin: tests construct it directly.
"""

from __future__ import annotations

import copy
import uuid as uuid_module
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from provstore.config import Profile
from provstore.exceptions import StorageError
from provstore.registry import get_repository_backend
from provstore.repository import AbstractRepositoryBackend, MaintenanceReport
from provstore.storage import EntityStorage, EntityType, Row, StorageBackend
from provstore.storage.entities import Direction

DEFAULTS: dict[EntityType, dict[str, Any]] = {
    EntityType.USER: {'first_name': '', 'last_name': '', 'institution': ''},
    EntityType.COMPUTER: {
        'hostname': '',
        'description': '',
        'scheduler_type': '',
        'transport_type': '',
        'metadata': {},
    },
    EntityType.AUTHINFO: {'metadata': {}, 'auth_params': {}, 'enabled': True},
    EntityType.NODE: {
        'node_type': '',
        'process_type': None,
        'label': '',
        'description': '',
        'attributes': {},
        'extras': {},
        'repository_metadata': {},
        'dbcomputer_id': None,
    },
    EntityType.LINK: {},
    EntityType.GROUP: {'type_string': '', 'description': '', 'extras': {}},
    EntityType.GROUP_NODE: {},
    EntityType.COMMENT: {'content': ''},
    EntityType.LOG: {'message': '', 'metadata': {}},
}

UNIQUE: dict[EntityType, list[tuple[str, ...]]] = {
    EntityType.USER: [('email',)],
    EntityType.COMPUTER: [('uuid',), ('label',)],
    EntityType.AUTHINFO: [('aiidauser_id', 'dbcomputer_id')],
    EntityType.NODE: [('uuid',)],
    EntityType.GROUP: [('uuid',), ('label', 'type_string')],
    EntityType.GROUP_NODE: [('dbgroup_id', 'dbnode_id')],
    EntityType.COMMENT: [('uuid',)],
    EntityType.LOG: [('uuid',)],
}


class MemoryStorage(StorageBackend, EntityStorage):
    """Entity tables in memory, files in a sandbox folder; belongs to ``profile`` (for its default user)."""

    name: ClassVar[str] = 'test.memory'

    def __init__(self, profile: Profile, folder: Path) -> None:
        self._profile = profile
        self._closed = False
        self._tables: dict[EntityType, dict[int, Row]] = {entity: {} for entity in EntityType}
        self._next_id = 1
        self._snapshots: list[tuple[dict[EntityType, dict[int, Row]], int]] = []
        self._repository = get_repository_backend('sandbox')(filepath=str(folder))
        self._repository.initialise()
        self.statements: list[str] = []
        """The name of every method that read or wrote rows, in order (tests count calls with it)."""

    # -- StorageBackend ---------------------------------------------------------------------------------------

    @classmethod
    def version_head(cls) -> str:
        return '1'

    @classmethod
    def version_profile(cls, profile: Profile) -> str | None:
        return '1'

    @classmethod
    def initialise(cls, profile: Profile, reset: bool = False) -> bool:
        return True

    @classmethod
    def migrate(cls, profile: Profile) -> None:
        """Nothing to migrate."""

    @classmethod
    def erase(cls, profile: Profile) -> None:
        """Nothing to erase."""

    def _close(self) -> None:
        self._repository.close()

    def get_info(self, detailed: bool = False) -> dict[str, Any]:
        return {entity.value: len(rows) for entity, rows in self._tables.items()}

    def maintain(self, full: bool = False, dry_run: bool = False) -> MaintenanceReport:
        return self._repository.maintain(dry_run=dry_run, live=not full)

    # -- EntityStorage ----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._snapshots.append((copy.deepcopy(self._tables), self._next_id))
        try:
            yield
        except BaseException:
            self._tables, self._next_id = self._snapshots.pop()
            raise
        self._snapshots.pop()

    @property
    def in_transaction(self) -> bool:
        return bool(self._snapshots)

    def get_repository(self) -> AbstractRepositoryBackend:
        return self._repository

    def _require_transaction(self) -> None:
        if not self._snapshots:
            raise StorageError('MemoryStorage: writes must happen inside transaction()')

    def insert_rows(self, entity: EntityType, rows: Sequence[Row]) -> list[int]:
        self._require_transaction()
        self.statements.append(f'insert_rows {entity.value}')
        ids = []
        for row in rows:
            if 'id' in row:
                raise StorageError('insert_rows: rows must not have an id')
            full = {**copy.deepcopy(DEFAULTS[entity]), **copy.deepcopy(dict(row))}
            if entity in (EntityType.COMPUTER, EntityType.NODE, EntityType.GROUP, EntityType.COMMENT, EntityType.LOG):
                full.setdefault('uuid', str(uuid_module.uuid4()))
            full['id'] = self._next_id
            self._check_unique(entity, full)
            self._check_references(entity, full)
            self._tables[entity][self._next_id] = full
            ids.append(self._next_id)
            self._next_id += 1
        return ids

    def _check_unique(self, entity: EntityType, row: Row) -> None:
        for columns in UNIQUE.get(entity, []):
            key = tuple(row.get(column) for column in columns)
            for other in self._tables[entity].values():
                if other['id'] != row['id'] and tuple(other.get(column) for column in columns) == key:
                    raise StorageError(f'unique constraint on {entity.value} {columns} violated by {key}')

    def _check_references(self, entity: EntityType, row: Row) -> None:
        references = {
            EntityType.LINK: [('input_id', EntityType.NODE), ('output_id', EntityType.NODE)],
            EntityType.NODE: [('user_id', EntityType.USER), ('dbcomputer_id', EntityType.COMPUTER)],
            EntityType.GROUP_NODE: [('dbnode_id', EntityType.NODE), ('dbgroup_id', EntityType.GROUP)],
        }
        for column, table in references.get(entity, []):
            if row.get(column) is not None and row[column] not in self._tables[table]:
                raise StorageError(f'{entity.value}.{column} = {row[column]} refers to no {table.value}')

    def update_rows(self, entity: EntityType, rows: Sequence[Row]) -> None:
        self._require_transaction()
        self.statements.append(f'update_rows {entity.value}')
        for row in rows:
            stored = self._tables[entity][row['id']]
            stored.update(copy.deepcopy(dict(row)))
            self._check_unique(entity, stored)

    def get_rows(self, entity: EntityType, column: str, values: Sequence[Any]) -> list[Row]:
        self.statements.append(f'get_rows {entity.value}')
        wanted = set(values)
        return [copy.deepcopy(row) for row in self._tables[entity].values() if row.get(column) in wanted]

    def iter_rows(self, entity: EntityType, batch_size: int = 1000) -> Iterator[Row]:
        self.statements.append(f'iter_rows {entity.value}')
        for key in sorted(self._tables[entity]):
            yield copy.deepcopy(self._tables[entity][key])

    def count_rows(self, entity: EntityType) -> int:
        return len(self._tables[entity])

    def delete_rows(self, entity: EntityType, ids: Sequence[int]) -> None:
        self._require_transaction()
        self.statements.append(f'delete_rows {entity.value}')
        for pk in ids:
            self._tables[entity].pop(pk, None)

    def patch_node_json(
        self,
        node_id: int,
        column: Literal['attributes', 'extras'],
        set_keys: Mapping[str, Any],
        delete_keys: Sequence[str],
    ) -> None:
        self._require_transaction()
        self.statements.append(f'patch_node_json {column}')
        data = self._tables[EntityType.NODE][node_id][column]
        data.update(copy.deepcopy(dict(set_keys)))
        for key in delete_keys:
            data.pop(key, None)

    def get_links(
        self, node_ids: Sequence[int], direction: Direction, link_types: Sequence[str] | None = None
    ) -> list[Row]:
        self.statements.append(f'get_links {direction}')
        end = 'output_id' if direction == 'incoming' else 'input_id'
        wanted = set(node_ids)
        return [
            copy.deepcopy(row)
            for row in self._tables[EntityType.LINK].values()
            if row[end] in wanted and (link_types is None or row['type'] in link_types)
        ]

    def add_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        self._require_transaction()
        self.statements.append('add_group_nodes')
        present = {
            row['dbnode_id'] for row in self._tables[EntityType.GROUP_NODE].values() if row['dbgroup_id'] == group_id
        }
        rows = [{'dbgroup_id': group_id, 'dbnode_id': pk} for pk in dict.fromkeys(node_ids) if pk not in present]
        self.statements.pop()
        self.insert_rows(EntityType.GROUP_NODE, rows)

    def remove_group_nodes(self, group_id: int, node_ids: Sequence[int]) -> None:
        self._require_transaction()
        self.statements.append('remove_group_nodes')
        wanted = set(node_ids)
        table = self._tables[EntityType.GROUP_NODE]
        for key in [key for key, row in table.items() if row['dbgroup_id'] == group_id and row['dbnode_id'] in wanted]:
            del table[key]

    def traverse(
        self,
        start: Sequence[int],
        forward: Sequence[str],
        backward: Sequence[str],
        max_depth: int | None = None,
    ) -> set[int]:
        self.statements.append('traverse')
        reached = set(start) & set(self._tables[EntityType.NODE])
        frontier = set(reached)
        depth = 0
        links = list(self._tables[EntityType.LINK].values())
        while frontier and (max_depth is None or depth < max_depth):
            found = set()
            for link in links:
                if link['type'] in forward and link['input_id'] in frontier:
                    found.add(link['output_id'])
                if link['type'] in backward and link['output_id'] in frontier:
                    found.add(link['input_id'])
            frontier = found - reached
            reached |= frontier
            depth += 1
        return reached

    def delete_nodes(self, node_ids: Sequence[int]) -> None:
        self._require_transaction()
        self.statements.append('delete_nodes')
        doomed = set(node_ids)
        for entity, columns in (
            (EntityType.LINK, ('input_id', 'output_id')),
            (EntityType.GROUP_NODE, ('dbnode_id',)),
            (EntityType.COMMENT, ('dbnode_id',)),
            (EntityType.LOG, ('dbnode_id',)),
        ):
            table = self._tables[entity]
            for key in [key for key, row in table.items() if any(row[column] in doomed for column in columns)]:
                del table[key]
        for pk in doomed:
            self._tables[EntityType.NODE].pop(pk, None)
