"""What a profile holds, read the same way from provstore and from aiida-core, to compare the two.

A snapshot maps each kind of entity to its content, keyed by UUID (users by email), with every reference to another
entity also by UUID (or email): the ids of two databases never meet. Two profiles hold the same graph when their
snapshots are equal; :func:`assert_same_graph` names what differs, kind by kind.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provstore.repository import Repository
from provstore.storage import EntityStorage, EntityType
from provstore_sqlite_zip.format import SqliteZipFormat

Snapshot = dict[str, Any]

EMAIL = 'tester@example.org'
"""The default user of both profiles: the same person, as someone who works with both would be."""

KINDS = ('user', 'computer', 'node', 'file', 'link', 'group', 'comment', 'log')

# The columns compared as they are (times are compared in UTC, references by UUID or email).
USER_COLUMNS = ('first_name', 'last_name', 'institution')
COMPUTER_COLUMNS = ('label', 'hostname', 'description', 'scheduler_type', 'transport_type', 'metadata')
NODE_COLUMNS = ('node_type', 'process_type', 'label', 'description', 'attributes', 'extras', 'repository_metadata')
GROUP_COLUMNS = ('label', 'type_string', 'description', 'extras')
LOG_COLUMNS = ('loggername', 'levelname', 'message', 'metadata')


@contextlib.contextmanager
def opened_archive(path: Path) -> Iterator[EntityStorage]:
    """Open an archive in place with provstore's read-only ``sqlite_zip`` backend, for the block."""
    opened = SqliteZipFormat.open(path)
    try:
        assert isinstance(opened, EntityStorage)
        yield opened
    finally:
        opened.close()


def utc(moment: datetime.datetime) -> str:
    """Return a time as an ISO string in UTC, to compare times read from either database."""
    assert moment.tzinfo is not None, f'naive time {moment!r}'
    return moment.astimezone(datetime.timezone.utc).isoformat()


def file_tree(repository: Any) -> dict[str, bytes | None]:
    """Return every path of a node's file tree: a file's content, ``None`` for a folder.

    ``repository`` is a provstore or an aiida-core ``Repository``: both have ``walk`` and ``get_object_content``.
    """
    tree: dict[str, bytes | None] = {}
    for folder, folders, files in repository.walk():
        for name in folders:
            tree[str(folder / name) + '/'] = None
        for name in files:
            tree[str(folder / name)] = repository.get_object_content(folder / name)
    return tree


def provstore_snapshot(storage: EntityStorage) -> Snapshot:
    """Read every entity but auth infos from a provstore storage (a profile's, or an archive opened in place)."""
    rows = {entity: list(storage.iter_rows(entity)) for entity in EntityType if entity is not EntityType.AUTHINFO}
    email = {row['id']: row['email'] for row in rows[EntityType.USER]}
    uuid = {
        entity: {row['id']: row['uuid'] for row in rows[entity]}
        for entity in (EntityType.COMPUTER, EntityType.NODE, EntityType.GROUP)
    }
    node_uuid, computer_uuid = uuid[EntityType.NODE], uuid[EntityType.COMPUTER]
    members: dict[str, list[str]] = {group: [] for group in uuid[EntityType.GROUP].values()}
    for row in rows[EntityType.GROUP_NODE]:
        members[uuid[EntityType.GROUP][row['dbgroup_id']]].append(node_uuid[row['dbnode_id']])
    backend = storage.get_repository()
    return {
        'user': {row['email']: user_fields(row) for row in rows[EntityType.USER]},
        'computer': {row['uuid']: computer_fields(row) for row in rows[EntityType.COMPUTER]},
        'node': {
            row['uuid']: node_fields(row, email[row['user_id']], computer_uuid.get(row['dbcomputer_id']))
            for row in rows[EntityType.NODE]
        },
        'file': {
            row['uuid']: file_tree(Repository.from_serialized(backend, row['repository_metadata']))
            for row in rows[EntityType.NODE]
        },
        'link': {
            (node_uuid[row['input_id']], node_uuid[row['output_id']], row['type'], row['label'])
            for row in rows[EntityType.LINK]
        },
        'group': {
            row['uuid']: group_fields(row, email[row['user_id']], members[row['uuid']])
            for row in rows[EntityType.GROUP]
        },
        'comment': {
            row['uuid']: comment_fields(row, node_uuid[row['dbnode_id']], email[row['user_id']])
            for row in rows[EntityType.COMMENT]
        },
        'log': {row['uuid']: log_fields(row, node_uuid[row['dbnode_id']]) for row in rows[EntityType.LOG]},
    }


def aiida_snapshot() -> Snapshot:
    """Read every entity but auth infos from the storage of the profile aiida-core has loaded, with its QueryBuilder."""
    from aiida import orm
    from aiida.manage import get_manager
    from aiida.repository import Repository as AiidaRepository

    def query(*steps: tuple[type[Any], dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
        builder = orm.QueryBuilder()
        for entity, options in steps:
            builder.append(entity, **options)
        return list(builder.dict())

    backend = get_manager().get_profile_storage().get_repository()
    users = query((orm.User, {'tag': 'user', 'project': ['email', *USER_COLUMNS]}))
    computers = query((orm.Computer, {'tag': 'computer', 'project': ['uuid', *COMPUTER_COLUMNS]}))
    nodes = query(
        (orm.Node, {'tag': 'node', 'project': ['uuid', 'ctime', 'mtime', *NODE_COLUMNS]}),
        (orm.User, {'tag': 'user', 'with_node': 'node', 'project': ['email']}),
    )
    node_computer = {
        row['node']['uuid']: row['computer']['uuid']
        for row in query(
            (orm.Computer, {'tag': 'computer', 'project': ['uuid']}),
            (orm.Node, {'tag': 'node', 'with_computer': 'computer', 'project': ['uuid']}),
        )
    }
    links = query(
        (orm.Node, {'tag': 'source', 'project': ['uuid']}),
        (
            orm.Node,
            {
                'tag': 'target',
                'with_incoming': 'source',
                'edge_tag': 'link',
                'edge_project': ['type', 'label'],
                'project': ['uuid'],
            },
        ),
    )
    groups = query(
        (orm.Group, {'tag': 'group', 'project': ['uuid', 'time', *GROUP_COLUMNS]}),
        (orm.User, {'tag': 'user', 'with_group': 'group', 'project': ['email']}),
    )
    members: dict[str, list[str]] = {row['group']['uuid']: [] for row in groups}
    for row in query(
        (orm.Group, {'tag': 'group', 'project': ['uuid']}),
        (orm.Node, {'tag': 'node', 'with_group': 'group', 'project': ['uuid']}),
    ):
        members[row['group']['uuid']].append(row['node']['uuid'])
    comments = query(
        (orm.Comment, {'tag': 'comment', 'project': ['uuid', 'ctime', 'mtime', 'content']}),
        (orm.Node, {'tag': 'node', 'with_comment': 'comment', 'project': ['uuid']}),
        (orm.User, {'tag': 'user', 'with_comment': 'comment', 'project': ['email']}),
    )
    logs = query(
        (orm.Log, {'tag': 'log', 'project': ['uuid', 'time', *LOG_COLUMNS]}),
        (orm.Node, {'tag': 'node', 'with_log': 'log', 'project': ['uuid']}),
    )
    return {
        'user': {row['user']['email']: user_fields(row['user']) for row in users},
        'computer': {row['computer']['uuid']: computer_fields(row['computer']) for row in computers},
        'node': {
            row['node']['uuid']: node_fields(row['node'], row['user']['email'], node_computer.get(row['node']['uuid']))
            for row in nodes
        },
        'file': {
            row['node']['uuid']: file_tree(AiidaRepository.from_serialized(backend, row['node']['repository_metadata']))
            for row in nodes
        },
        'link': {
            (row['source']['uuid'], row['target']['uuid'], row['link']['type'], row['link']['label']) for row in links
        },
        'group': {
            row['group']['uuid']: group_fields(row['group'], row['user']['email'], members[row['group']['uuid']])
            for row in groups
        },
        'comment': {
            row['comment']['uuid']: comment_fields(row['comment'], row['node']['uuid'], row['user']['email'])
            for row in comments
        },
        'log': {row['log']['uuid']: log_fields(row['log'], row['node']['uuid']) for row in logs},
    }


def empty_aiida_profile() -> None:
    """Empty the storage of the profile aiida-core has loaded, but for a new default user :data:`EMAIL`."""
    from aiida import orm
    from aiida.manage import get_manager

    manager = get_manager()
    manager.get_profile_storage()._clear()  # what aiida-core's own test fixtures call to empty a profile
    manager.reset_profile()
    orm.User(email=EMAIL).store()


def user_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a user but its email (the key) and id."""
    return {key: row[key] for key in USER_COLUMNS}


def computer_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a computer but its UUID (the key) and id."""
    return {key: row[key] for key in COMPUTER_COLUMNS}


def node_fields(row: dict[str, Any], email: str, computer: str | None) -> dict[str, Any]:
    """The fields of a node but its UUID (the key) and id, with its user's email and its computer's UUID."""
    fields = {key: row[key] for key in NODE_COLUMNS}
    return {**fields, 'ctime': utc(row['ctime']), 'mtime': utc(row['mtime']), 'user': email, 'computer': computer}


def group_fields(row: dict[str, Any], email: str, members: list[str]) -> dict[str, Any]:
    """The fields of a group but its UUID (the key) and id, with its user's email and its members' UUIDs, sorted."""
    fields = {key: row[key] for key in GROUP_COLUMNS}
    return {**fields, 'time': utc(row['time']), 'user': email, 'members': sorted(members)}


def comment_fields(row: dict[str, Any], node: str, email: str) -> dict[str, Any]:
    """The fields of a comment but its UUID (the key) and id, with its node's UUID and its user's email."""
    return {
        'content': row['content'],
        'ctime': utc(row['ctime']),
        'mtime': utc(row['mtime']),
        'node': node,
        'user': email,
    }


def log_fields(row: dict[str, Any], node: str) -> dict[str, Any]:
    """The fields of a log but its UUID (the key) and id, with its node's UUID."""
    fields = {key: row[key] for key in LOG_COLUMNS}
    return {**fields, 'time': utc(row['time']), 'node': node}


def without_checkpoints(snapshot: Snapshot) -> Snapshot:
    """Return the snapshot with process nodes without their ``checkpoints`` attribute, as aiida-core's exporter
    writes them (``strip_checkpoints=True``, its default) and its importer brings them in.
    """
    nodes = {}
    for uuid, fields in snapshot['node'].items():
        attributes = fields['attributes']
        if fields['node_type'].startswith('process.'):
            attributes = {key: value for key, value in attributes.items() if key != 'checkpoints'}
        nodes[uuid] = {**fields, 'attributes': attributes}
    return {**snapshot, 'node': nodes}


def as_imported(snapshot: Snapshot) -> Snapshot:
    """Return the snapshot as aiida-core's importer (and provstore's, by the same rules) brings new nodes in: process
    nodes without checkpoints, and no node with aiida-core's private ``_aiida_`` extras.
    """
    nodes = {
        uuid: {
            **fields,
            'extras': {key: value for key, value in fields['extras'].items() if not key.startswith('_aiida_')},
        }
        for uuid, fields in without_checkpoints(snapshot)['node'].items()
    }
    return {**snapshot, 'node': nodes}


def assert_same_graph(found: Snapshot, expected: Snapshot) -> None:
    """Assert two snapshots are equal, naming for the first kind that differs the keys missing, extra and changed."""
    for kind in KINDS:
        have, want = found[kind], expected[kind]
        if have == want:
            continue
        if isinstance(want, set):
            raise AssertionError(f'{kind}: missing {sorted(want - have)}, unexpected {sorted(have - want)}')
        changed = {key: (have[key], want[key]) for key in set(have) & set(want) if have[key] != want[key]}
        raise AssertionError(
            f'{kind}: missing {sorted(set(want) - set(have))}, unexpected {sorted(set(have) - set(want))}, '
            f'changed (found, expected): {changed}'
        )
