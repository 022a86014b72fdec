"""A small graph to archive (:func:`store_graph`), and what a storage holds keyed by identity (:func:`snapshot`).

Ids differ between an archive and the profile it is imported into; UUIDs, emails and contents do not, so archives
and imports are compared by :func:`snapshot` and :func:`assert_holds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provstore.orm import CalcJobNode, Comment, Computer, Group, Int, LinkType, Log, Node, WorkChainNode, store_nodes
from provstore.repository import Repository
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.archive import ArchiveFormat

__all__ = ['Graph', 'assert_holds', 'files_of', 'snapshot', 'snapshot_in_place', 'store_graph']

IMPORT_ADDED_PREFIX = '_aiida_'
"""Extras an import leaves out (aiida-core's private keys, such as the node hash)."""


def _rows(storage: EntityStorage, entity: EntityType) -> list[Row]:
    return list(storage.iter_rows(entity))


def _json(value: Any) -> Any:
    return {} if value is None else value


def _text(value: Any) -> Any:
    return '' if value is None else value


def files_of(storage: EntityStorage, metadata: dict[str, Any] | None) -> dict[str, bytes]:
    """Return ``{path: content}`` of every file in a node's ``repository_metadata``."""
    if not metadata:
        return {}
    repository = Repository.from_serialized(storage.get_repository(), metadata)
    return {str(path): repository.get_object_content(path) for path in _file_paths(repository)}


def _file_paths(repository: Repository) -> list[str]:
    return [str(folder / name) for folder, _, names in repository.walk() for name in names]


def snapshot(storage: EntityStorage, with_files: bool = True) -> dict[str, Any]:
    """Return everything ``storage`` holds, keyed by identity; auth infos and import groups aside."""
    users = {row['id']: row['email'] for row in _rows(storage, EntityType.USER)}
    computers = {row['id']: row['uuid'] for row in _rows(storage, EntityType.COMPUTER)}
    nodes = {row['id']: row for row in _rows(storage, EntityType.NODE)}
    uuids = {pk: row['uuid'] for pk, row in nodes.items()}
    groups = {row['id']: row for row in _rows(storage, EntityType.GROUP) if row['type_string'] != 'core.import'}
    members: dict[int, set[str]] = {pk: set() for pk in groups}
    for row in _rows(storage, EntityType.GROUP_NODE):
        if row['dbgroup_id'] in members:
            members[row['dbgroup_id']].add(uuids[row['dbnode_id']])
    return {
        'user': {
            row['email']: (_text(row['first_name']), _text(row['last_name']), _text(row['institution']))
            for row in _rows(storage, EntityType.USER)
        },
        'computer': {
            row['uuid']: (
                row['label'],
                _text(row['hostname']),
                _text(row['description']),
                row['scheduler_type'],
                row['transport_type'],
                _json(row['metadata']),
            )
            for row in _rows(storage, EntityType.COMPUTER)
        },
        'node': {
            row['uuid']: {
                'node_type': row['node_type'],
                'process_type': row['process_type'],
                'label': _text(row['label']),
                'description': _text(row['description']),
                'ctime': row['ctime'],
                'mtime': row['mtime'],
                'user': users[row['user_id']],
                'computer': computers.get(row['dbcomputer_id']),
                'attributes': {k: v for k, v in _json(row['attributes']).items() if k != 'checkpoints'},
                'extras': {k: v for k, v in _json(row['extras']).items() if not k.startswith(IMPORT_ADDED_PREFIX)},
                'files': files_of(storage, row['repository_metadata']) if with_files else None,
            }
            for row in nodes.values()
        },
        'link': {
            (uuids[row['input_id']], uuids[row['output_id']], row['type'], row['label'])
            for row in _rows(storage, EntityType.LINK)
        },
        'group': {
            row['uuid']: (row['label'], row['type_string'], _text(row['description']), users[row['user_id']])
            for row in groups.values()
        },
        'group_node': {groups[pk]['uuid']: frozenset(uuids) for pk, uuids in members.items()},
        'comment': {
            row['uuid']: (uuids[row['dbnode_id']], users[row['user_id']], row['content'], row['ctime'])
            for row in _rows(storage, EntityType.COMMENT)
        },
        'log': {
            row['uuid']: (
                uuids[row['dbnode_id']],
                row['loggername'],
                row['levelname'],
                row['message'],
                _json(row['metadata']),
                row['time'],
            )
            for row in _rows(storage, EntityType.LOG)
        },
    }


def snapshot_in_place(archive_format: type[ArchiveFormat], path: Path) -> dict[str, Any]:
    """Return the :func:`snapshot` of the archive at ``path``, opened in place."""
    opened = archive_format.open(path)
    try:
        assert isinstance(opened, EntityStorage)
        return snapshot(opened)
    finally:
        opened.close()


def assert_holds(archive: dict[str, Any], profile: dict[str, Any]) -> None:
    """Assert that the profile's snapshot holds everything of the archive's, unchanged."""
    for kind in ('user', 'computer', 'node', 'group', 'group_node', 'comment', 'log'):
        missing = set(archive[kind]) - set(profile[kind])
        assert not missing, f'{kind}: {len(missing)} missing, e.g. {sorted(map(str, missing))[:3]}'
        changed = [key for key in archive[kind] if archive[kind][key] != profile[kind][key]]
        assert not changed, f'{kind} {changed[0]}: {archive[kind][changed[0]]!r} != {profile[kind][changed[0]]!r}'
    assert archive['link'] <= profile['link']


@dataclass
class Graph:
    """``data -> calculation -> result`` run by ``workflow``; ``unrelated`` is in a group of its own."""

    data: Node
    calculation: Node
    result: Node
    workflow: Node
    unrelated: Node


def store_graph(storage: EntityStorage) -> Graph:
    """Store a graph with files, a computer, two groups, comments, logs and extras, every process sealed."""
    computer = Computer('cluster', 'cluster.example.org', storage=storage).store()
    data = Int(1, storage=storage)
    data.base.repository.put_object_from_bytes(b'input file', 'in/input.txt')
    data.base.extras.set('tag', {'nested': [1, 2.5, 'x']})
    workflow = WorkChainNode(storage=storage)
    workflow.base.links.add_incoming(data, LinkType.INPUT_WORK, 'x')
    calculation = CalcJobNode(computer=computer, storage=storage)
    calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'step')
    result = Int(3, storage=storage)
    result.base.repository.put_object_from_bytes(b'result file' * 1000, 'result.txt')
    result.base.repository.put_object_from_bytes(b'input file', 'copy_of_input.txt')
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
    unrelated = Int(9, storage=storage)
    unrelated.base.repository.put_object_from_bytes(b'not reached', 'other.txt')
    store_nodes([data, workflow, calculation, result, unrelated], storage)
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    for process in (workflow, calculation):
        assert hasattr(process, 'seal')
        process.seal()
    group = Group('results', description='the results', storage=storage).store()
    group.add_nodes([data, result])
    Group('elsewhere', storage=storage).store().add_nodes([unrelated])
    Comment(calculation, 'converged').store()
    Comment(unrelated, 'unrelated').store()
    Log(calculation, 'aiida.calc', 'REPORT', 'started', metadata={'step': 1}).store()
    Log(unrelated, 'aiida.calc', 'REPORT', 'unrelated').store()
    return Graph(data, calculation, result, workflow, unrelated)
