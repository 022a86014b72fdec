"""The fixed graph the QueryBuilder conformance suite queries: every entity identified by a unique label.

Nodes, groups and computers are identified by their label, users by their email, comments by their content, log
records by their message and authinfos by their ``metadata['name']`` (:func:`identity`). The expected results of
:mod:`provstore.testing.query_cases` are written by hand from the definitions below: change nothing here without
re-deriving them.

The provenance graph (``-type:label->``)::

    int-1 -input_work:x-> wc-top          dict-a -input_work:params-> wc-top
    int-1 -input_work:x-> wf-sub          wc-top -call_work:sub-> wf-sub
    wc-top -call_calc:job-> calcjob-1     wf-sub -call_calc:func-> calcfunc-1
    int-1 -input_calc:x-> calcjob-1       int-2 -input_calc:y-> calcjob-1      dict-a -input_calc:parameters-> calcjob-1
    calcjob-1 -create:result-> dict-b     calcjob-1 -create:energy-> float-2.5
    dict-b -input_calc:d-> calcfunc-1     float-2.5 -input_calc:e-> calcfunc-1 calcfunc-1 -create:out-> str-hello
    wf-sub -return:out-> str-hello        wc-top -return:result-> dict-b       wc-top -return:final-> str-hello
    dict-b -input_calc:a-> calcjob-2      int-2 -input_calc:b-> calcjob-2      calcjob-2 -create:result-> dict-c
    dict-c -input_calc:c-> calcfunc-2     str-hello -input_calc:s-> calcfunc-2 calcfunc-2 -create:merged-> list-3

``wc-idle`` has no link. Diamonds: int-2 reaches dict-c in 2 steps (through calcjob-2) and in 4 (through
calcjob-1, dict-b, calcjob-2); int-1 reaches calcfunc-1 through dict-b and through float-2.5.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provstore.orm import (
    AuthInfo,
    Bool,
    CalcFunctionNode,
    CalcJobNode,
    Comment,
    Computer,
    Data,
    Dict,
    Entity,
    Float,
    FolderData,
    Group,
    Int,
    LinkType,
    List,
    Log,
    Node,
    ProcessNode,
    SinglefileData,
    Str,
    User,
    WorkChainNode,
    WorkFunctionNode,
    store_nodes,
)
from provstore.storage import EntityStorage, EntityType
from provstore.testing.profiles import CONTRACT_EMAIL as EMAIL

ALICE = 'alice@example.org'
"""The second user (the first is the profile's default user, :data:`provstore.testing.CONTRACT_EMAIL`)."""

BIG = 10**12
"""The value of ``int-big``: beyond 32 bits."""

VALUES: dict[str, Any] = {
    'int-1': 1,
    'int-2': 2,
    'int-5': 5,
    'int-neg': -3,
    'int-big': BIG,
    'float-1.0': 1.0,
    'float-2.5': 2.5,
    'float-neg': -0.5,
    'str-1': '1',
    'str-hello': 'hello',
    'str-quote': 'it\'s "quoted"',
    'str-unicode': 'Grüße ☃ 日本',
    'str-empty': '',
    'bool-true': True,
    'bool-false': False,
}
"""The single-value nodes (attribute ``value``), by label; the class follows from the prefix."""

DICTS: dict[str, dict[str, Any]] = {
    'dict-a': {
        'n': 3,
        's': 'apple',
        'b': True,
        'x': None,
        'w': 9,
        'f': 1.5,
        'nested': {'k': 1, 'deep': {'z': 'zz'}},
        'tags': ['red', 'green'],
    },
    'dict-b': {'n': 2.5, 's': 'Banana', 'b': False, 'w': 10, 'f': 2, 'nested': {'k': 2}, 'tags': ['red']},
    'dict-c': {
        'n': 10,
        's': 'cherry',
        'x': 0,
        'w': 100,
        'f': -1,
        'nested': {'k': 'one'},
        'tags': [],
        'when': '2024-01-02T03:04:05+00:00',
    },
    'dict-d': {'n': '3', 's': 'date', 'b': 'true', 'x': False, 'nested': {}, 'tags': ['green', 'blue', 'red']},
    'dict-e': {'n': True, 's': 'élan', 'x': 'null', 'tags': 'red'},
    'dict-f': {'n': None, 's': "o'clock", 'nested': {'k': 1, 'extra': [1, 2]}, 'tags': [1, 2, 3, 4]},
    'dict-g': {},
    'dict-h': {'n': 1, 's': '100%', "it's": 'apostrophe', 'a"b': 'dq', 'tags': [['red']]},
    'dict-i': {'n': 1.0, 's': 'A_B'},
    'dict-j': {'n': '1', 's': 'a%b'},
}
"""The Dict nodes: their attributes, by label."""

LISTS: dict[str, list[Any]] = {
    'list-empty': [],
    'list-3': [1, 'two', 3.0],
    'list-5': [1, 2, 3, 4, 5],
    'list-nested': [[1, 2], {'a': 1}, None],
}
"""The List nodes (attribute ``list``), by label."""

PLAIN_DATA = ['Mixed_Case', 'mixed_case', '50%off', '50Xoff', 'under_score', 'underXscore']
"""Labels of bare Data nodes (node_type ``data.Data.``): case and LIKE wildcards in labels."""

EXTRAS: dict[str, dict[str, Any]] = {
    'int-1': {'tag': 'x', 'rank': 1},
    'int-2': {'tag': 'y', 'rank': 2},
    'dict-a': {'tag': 'x', 'flag': True},
    'str-hello': {'tag': None},
}
"""The extras of the nodes that have any."""

PROCESSES: dict[str, tuple[type[ProcessNode], str | None, dict[str, Any]]] = {
    'wc-top': (
        WorkChainNode,
        'provstore.workflows:top',
        {'process_state': 'finished', 'exit_status': 0, 'process_label': 'Top'},
    ),
    'wf-sub': (WorkFunctionNode, 'provstore.workflows:sub', {'process_state': 'finished', 'exit_status': 0}),
    'calcjob-1': (
        CalcJobNode,
        'provstore.calculations:job',
        {'process_state': 'finished', 'exit_status': 0, 'job_id': '101'},
    ),
    'calcfunc-1': (CalcFunctionNode, 'provstore.calculations:func', {'process_state': 'finished', 'exit_status': 0}),
    'calcjob-2': (
        CalcJobNode,
        'provstore.calculations:job',
        {'process_state': 'finished', 'exit_status': 1, 'job_id': '102'},
    ),
    'calcfunc-2': (CalcFunctionNode, None, {'process_state': 'excepted'}),
    'wc-idle': (WorkChainNode, 'provstore.workflows:top', {'process_state': 'created'}),
}
"""The process nodes: class, process_type and attributes, by label."""

LINKS: list[tuple[str, str, str, str]] = [
    ('int-1', 'wc-top', 'input_work', 'x'),
    ('dict-a', 'wc-top', 'input_work', 'params'),
    ('int-1', 'wf-sub', 'input_work', 'x'),
    ('wc-top', 'wf-sub', 'call_work', 'sub'),
    ('wc-top', 'calcjob-1', 'call_calc', 'job'),
    ('wf-sub', 'calcfunc-1', 'call_calc', 'func'),
    ('int-1', 'calcjob-1', 'input_calc', 'x'),
    ('int-2', 'calcjob-1', 'input_calc', 'y'),
    ('dict-a', 'calcjob-1', 'input_calc', 'parameters'),
    ('calcjob-1', 'dict-b', 'create', 'result'),
    ('calcjob-1', 'float-2.5', 'create', 'energy'),
    ('dict-b', 'calcfunc-1', 'input_calc', 'd'),
    ('float-2.5', 'calcfunc-1', 'input_calc', 'e'),
    ('calcfunc-1', 'str-hello', 'create', 'out'),
    ('wf-sub', 'str-hello', 'return', 'out'),
    ('wc-top', 'dict-b', 'return', 'result'),
    ('wc-top', 'str-hello', 'return', 'final'),
    ('dict-b', 'calcjob-2', 'input_calc', 'a'),
    ('int-2', 'calcjob-2', 'input_calc', 'b'),
    ('calcjob-2', 'dict-c', 'create', 'result'),
    ('dict-c', 'calcfunc-2', 'input_calc', 'c'),
    ('str-hello', 'calcfunc-2', 'input_calc', 's'),
    ('calcfunc-2', 'list-3', 'create', 'merged'),
]
"""Every link: (source, target, type, label)."""

ALICE_NODES = {'calcjob-2', 'dict-c', 'bool-false'}
"""The nodes whose user is alice; every other node's user is the default user."""

COMPUTER_OF = {'calcjob-1': 'hpc-Alpha', 'file-1': 'hpc-Alpha', 'calcjob-2': 'laptop_b'}
"""The nodes that have a computer."""

COMPUTERS: dict[str, dict[str, Any]] = {
    'hpc-Alpha': {
        'hostname': 'alpha.example.org',
        'scheduler_type': 'slurm',
        'transport_type': 'ssh',
        'metadata': {'cores': 64, 'gpu': True},
    },
    'laptop_b': {
        'hostname': 'localhost',
        'scheduler_type': 'direct',
        'transport_type': 'local',
        'metadata': {'cores': 8},
    },
}

AUTHINFOS: dict[str, tuple[str, str, bool, dict[str, Any]]] = {
    'auth-tester-alpha': (EMAIL, 'hpc-Alpha', True, {'username': 'tester', 'port': 22}),
    'auth-alice-alpha': (ALICE, 'hpc-Alpha', False, {'username': 'alice'}),
    'auth-tester-laptop': (EMAIL, 'laptop_b', True, {}),
}
"""The authinfos by name (their ``metadata['name']``): user, computer, enabled, auth_params."""

GROUPS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    'grp-core': ('core', EMAIL, ['int-1', 'int-2', 'dict-a', 'calcjob-1'], {'purpose': 'test', 'n': 1}),
    'grp-Upf': ('core.upf', ALICE, ['dict-a', 'str-hello', 'list-3'], {'n': 2}),
    'grp-empty': ('core', EMAIL, [], {}),
}
"""The groups: type_string, user, member labels, extras."""

COMMENTS: dict[str, tuple[str, str]] = {
    'first comment': ('int-1', EMAIL),
    'second comment': ('int-1', ALICE),
    'calc note': ('calcjob-1', ALICE),
}
"""The comments by content: node, user."""

LOGS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    'job submitted': ('calcjob-1', 'provstore.calc', 'INFO', {'attempt': 1}),
    'job slow': ('calcjob-1', 'provstore.calc', 'WARNING', {'attempt': 2}),
    'job failed': ('calcjob-2', 'provstore.calc', 'ERROR', {}),
    'workflow started': ('wc-top', 'provstore.workflow', 'REPORT', {'attempt': 1}),
}
"""The log records by message: node, loggername, levelname, metadata."""

LOG_TIME = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
"""The time of every log record."""

NODE_LABELS: list[str] = [
    *VALUES,
    *DICTS,
    *LISTS,
    *PLAIN_DATA,
    'file-1',
    'folder-1',
    *PROCESSES,
]
"""Every node label (44 nodes)."""


@dataclass
class QueryGraph:
    """The stored graph: the storage, and the pk of every entity by its identity (see :func:`identity`)."""

    storage: EntityStorage
    nodes: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    computers: dict[str, int] = field(default_factory=dict)
    authinfos: dict[str, int] = field(default_factory=dict)
    comments: dict[str, int] = field(default_factory=dict)
    logs: dict[str, int] = field(default_factory=dict)
    uuids: dict[str, str] = field(default_factory=dict)

    def pk(self, label: str) -> int:
        """Return the pk of the node ``label``."""
        return self.nodes[label]

    def node_label(self, pk: int) -> str:
        """Return the label of the node ``pk``."""
        return {value: key for key, value in self.nodes.items()}[pk]


def identity(entity: Entity) -> str:
    """Return what identifies ``entity`` in the graph: a label, an email, a content, a message or a name."""
    if isinstance(entity, (Node, Group, Computer)):
        return entity.label
    if isinstance(entity, User):
        return entity.email
    if isinstance(entity, Comment):
        return entity.content
    if isinstance(entity, Log):
        return entity.message
    if isinstance(entity, AuthInfo):
        return str(entity.metadata['name'])
    raise TypeError(f'no identity for {entity!r}')


def _single_value(value: Any, **kwargs: Any) -> Node:
    kind = {'int': Int, 'float': Float, 'str': Str, 'bool': Bool}[kwargs['label'].split('-')[0]]
    node: Node = kind(value, **kwargs)
    return node


def build_query_graph(storage: EntityStorage) -> QueryGraph:
    """Store the graph in the empty ``storage`` and return it with the pks of its entities."""
    graph = QueryGraph(storage)
    users = {
        EMAIL: User(EMAIL, 'Test', 'Er', 'ProvLab', storage=storage).store(),
        ALICE: User(ALICE, 'Alice', 'Liddell', 'Wonderland', storage=storage).store(),
    }
    graph.users = {email: user.pk for email, user in users.items() if user.pk is not None}
    computers = {
        label: Computer(
            label,
            options['hostname'],
            description=f'the computer {label}',
            scheduler_type=options['scheduler_type'],
            transport_type=options['transport_type'],
            metadata=options['metadata'],
            storage=storage,
        ).store()
        for label, options in COMPUTERS.items()
    }
    graph.computers = {label: computer.pk for label, computer in computers.items() if computer.pk is not None}
    for name, (email, computer, enabled, params) in AUTHINFOS.items():
        authinfo = AuthInfo(
            computers[computer], users[email], enabled=enabled, auth_params=params, metadata={'name': name}
        ).store()
        assert authinfo.pk is not None
        graph.authinfos[name] = authinfo.pk

    nodes = _store_nodes(storage, users, computers)
    graph.nodes = {label: node.pk for label, node in nodes.items() if node.pk is not None}
    graph.uuids = {label: node.uuid for label, node in nodes.items()}
    _store_annotations(graph, nodes, users)
    return graph


def _store_nodes(storage: EntityStorage, users: dict[str, User], computers: dict[str, Computer]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}

    def options(label: str) -> dict[str, Any]:
        computer = COMPUTER_OF.get(label)
        return {
            'label': label,
            'description': f'node {label}',
            'user': users[ALICE if label in ALICE_NODES else EMAIL],
            'computer': computers[computer] if computer else None,
            'storage': storage,
        }

    for label, value in VALUES.items():
        nodes[label] = _single_value(value, **options(label))
    for label, attributes in DICTS.items():
        nodes[label] = Dict(attributes, **options(label))
    for label, items in LISTS.items():
        nodes[label] = List(items, **options(label))
    for label in PLAIN_DATA:
        nodes[label] = Data(**options(label))
    single = SinglefileData(**options('file-1'))
    single.base.repository.put_object_from_bytes(b'content of file-1', 'file.txt')
    single.base.attributes.set('filename', 'file.txt')
    nodes['file-1'] = single
    folder = FolderData(**options('folder-1'))
    folder.put_object_from_bytes(b'a', 'sub/a.txt')
    nodes['folder-1'] = folder
    for label, (kind, process_type, attributes) in PROCESSES.items():
        process = kind(process_type=process_type, **options(label))
        process.base.attributes.set_many(attributes)
        nodes[label] = process
    for label, extras in EXTRAS.items():
        nodes[label].base.extras.set_many(extras)
    for source, target, link_type, link_label in LINKS:
        nodes[target].base.links.add_incoming(nodes[source], LinkType(link_type), link_label)
    assert list(nodes) == NODE_LABELS
    store_nodes(nodes.values(), storage)
    return nodes


def _store_annotations(graph: QueryGraph, nodes: dict[str, Node], users: dict[str, User]) -> None:
    storage = graph.storage
    for label, (type_string, email, members, extras) in GROUPS.items():
        group = Group(label, type_string=type_string, description=f'group {label}', user=users[email], storage=storage)
        group.store()
        for key, value in extras.items():
            group.set_extra(key, value)
        if members:
            group.add_nodes([nodes[member] for member in members])
        assert group.pk is not None
        graph.groups[label] = group.pk
    for content, (node, email) in COMMENTS.items():
        comment = Comment(nodes[node], content, users[email]).store()
        assert comment.pk is not None
        graph.comments[content] = comment.pk
    for message, (node, loggername, levelname, metadata) in LOGS.items():
        log = Log(nodes[node], loggername, levelname, message, metadata=metadata, time=LOG_TIME).store()
        assert log.pk is not None
        graph.logs[message] = log.pk


def read_query_graph(storage: EntityStorage) -> QueryGraph:
    """Return the graph that :func:`build_query_graph` stored in ``storage``, read back through its rows.

    It needs nothing but reading, so it also serves a storage that holds the graph and refuses every write (a
    read-only backend over a copy of the graph).
    """

    def by(entity: EntityType, key: Callable[[dict[str, Any]], str]) -> dict[str, int]:
        return {key(row): row['id'] for row in storage.iter_rows(entity)}

    node_rows = list(storage.iter_rows(EntityType.NODE))
    return QueryGraph(
        storage,
        nodes={row['label']: row['id'] for row in node_rows},
        groups=by(EntityType.GROUP, lambda row: row['label']),
        users=by(EntityType.USER, lambda row: row['email']),
        computers=by(EntityType.COMPUTER, lambda row: row['label']),
        authinfos=by(EntityType.AUTHINFO, lambda row: row['metadata']['name']),
        comments=by(EntityType.COMMENT, lambda row: row['content']),
        logs=by(EntityType.LOG, lambda row: row['message']),
        uuids={row['label']: row['uuid'] for row in node_rows},
    )
