"""The objects users program against: nodes, links, groups, users, computers, comments and logs.

Entities are made unstored and stored into a storage: the one given as ``storage=``, else the storage of the
profile loaded by the manager (:func:`provstore.manager.get_manager`). Each class has a ``collection`` of its
stored entities: ``Node.collection.get(pk=1)``, ``User.collection(storage).all()``. Many related nodes are stored
at once, with their files and links, by :func:`store_nodes`; nodes are deleted along the provenance graph by
:func:`delete_nodes`.
"""

from provstore.orm.comments import Comment, CommentCollection
from provstore.orm.computers import AuthInfo, AuthInfoCollection, Computer, ComputerCollection
from provstore.orm.delete import DELETE_RULES, delete_nodes, get_nodes_delete
from provstore.orm.entities import Collection, Entity
from provstore.orm.exceptions import (
    EntityError,
    InvalidOperationError,
    ModificationNotAllowedError,
    MultipleObjectsError,
    NotExistentError,
    StoringNotAllowedError,
    UniquenessError,
    UnstoredEntityError,
)
from provstore.orm.groups import Group, GroupCollection
from provstore.orm.links import Link, LinkType, LinkValidationError
from provstore.orm.loaders import load_computer, load_group, load_node
from provstore.orm.logs import Log, LogCollection
from provstore.orm.nodes import (
    Bool,
    CalcFunctionNode,
    CalcJobNode,
    CalculationNode,
    Data,
    Dict,
    Float,
    FolderData,
    Int,
    LinkManager,
    LinkPair,
    LinkTriple,
    List,
    Node,
    NodeCollection,
    NodeLinksManager,
    ProcessNode,
    SinglefileData,
    Str,
    WorkChainNode,
    WorkflowNode,
    WorkFunctionNode,
    load_node_class,
    store_nodes,
)
from provstore.orm.querybuilder import QueryBuilder, QueryError
from provstore.orm.traversal import EXPORT_RULES, get_nodes_export
from provstore.orm.users import User, UserCollection, get_default_user

__all__ = [
    'DELETE_RULES',
    'EXPORT_RULES',
    'AuthInfo',
    'AuthInfoCollection',
    'Bool',
    'CalcFunctionNode',
    'CalcJobNode',
    'CalculationNode',
    'Collection',
    'Comment',
    'CommentCollection',
    'Computer',
    'ComputerCollection',
    'Data',
    'Dict',
    'Entity',
    'EntityError',
    'Float',
    'FolderData',
    'Group',
    'GroupCollection',
    'Int',
    'InvalidOperationError',
    'Link',
    'LinkManager',
    'LinkPair',
    'LinkTriple',
    'LinkType',
    'LinkValidationError',
    'List',
    'Log',
    'LogCollection',
    'ModificationNotAllowedError',
    'MultipleObjectsError',
    'Node',
    'NodeCollection',
    'NodeLinksManager',
    'NotExistentError',
    'ProcessNode',
    'QueryBuilder',
    'QueryError',
    'SinglefileData',
    'StoringNotAllowedError',
    'Str',
    'UniquenessError',
    'UnstoredEntityError',
    'User',
    'UserCollection',
    'WorkChainNode',
    'WorkFunctionNode',
    'WorkflowNode',
    'delete_nodes',
    'get_default_user',
    'get_nodes_delete',
    'get_nodes_export',
    'load_computer',
    'load_group',
    'load_node',
    'load_node_class',
    'store_nodes',
]
