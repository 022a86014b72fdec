"""Nodes of the provenance graph: data, calculations and workflows, with aiida-core's ``node_type`` strings."""

from provstore.orm.node_classes import load_node_class, registered_node_classes
from provstore.orm.nodes.attributes import NodeAttributes, NodeExtras
from provstore.orm.nodes.data import Bool, Data, Dict, Float, FolderData, Int, List, SinglefileData, Str
from provstore.orm.nodes.links import LinkManager, LinkPair, LinkTriple, NodeLinks, NodeLinksManager
from provstore.orm.nodes.node import Node, NodeBase, NodeCollection
from provstore.orm.nodes.process import (
    CalcFunctionNode,
    CalcJobNode,
    CalculationNode,
    ProcessNode,
    WorkChainNode,
    WorkflowNode,
    WorkFunctionNode,
)
from provstore.orm.nodes.repository import NodeRepository
from provstore.orm.nodes.store import store_nodes

__all__ = [
    'Bool',
    'CalcFunctionNode',
    'CalcJobNode',
    'CalculationNode',
    'Data',
    'Dict',
    'Float',
    'FolderData',
    'Int',
    'LinkManager',
    'LinkPair',
    'LinkTriple',
    'List',
    'Node',
    'NodeAttributes',
    'NodeBase',
    'NodeCollection',
    'NodeExtras',
    'NodeLinks',
    'NodeLinksManager',
    'NodeRepository',
    'ProcessNode',
    'SinglefileData',
    'Str',
    'WorkChainNode',
    'WorkFunctionNode',
    'WorkflowNode',
    'load_node_class',
    'registered_node_classes',
    'store_nodes',
]
