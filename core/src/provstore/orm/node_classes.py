"""Which class a node loads as, from its ``node_type`` string.

Every subclass of :class:`~provstore.orm.nodes.Node` that sets ``NODE_TYPE`` is registered when it is defined.
A ``node_type`` no class knows (a node from an archive written with someone else's plugin) loads as the nearest
known kind: its type path (the string without its class name) is shortened one part at a time until it names a
known class, so ``data.quantumespresso.foo.Bar.`` loads as ``Data`` and ``process.workflow.x.Y.`` as
``WorkflowNode``. The node keeps its ``node_type`` string verbatim.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node
    from provstore.storage import EntityStorage, Row

__all__ = ['load_node_class', 'node_type_path', 'nodes_from_rows', 'registered_node_classes']

_BY_NODE_TYPE: dict[str, type[Node]] = {}
_BY_TYPE_PATH: dict[str, type[Node]] = {}


def node_type_path(node_type: str) -> str:
    """Return the type path of a ``node_type``: ``data.core.int.Int.`` → ``data.core.int``, ``''`` → ``''``.

    Querying a class "with its subclasses" means ``node_type`` starts with this path followed by ``.``.
    """
    if node_type.count('.') < 2:
        return ''
    return node_type.rsplit('.', 2)[0]


def register_node_class(cls: type[Node]) -> None:
    """Register ``cls`` under its ``NODE_TYPE`` (a later class with the same string replaces an earlier one)."""
    _BY_NODE_TYPE[cls.NODE_TYPE] = cls
    _BY_TYPE_PATH.setdefault(node_type_path(cls.NODE_TYPE), cls)


def registered_node_classes() -> dict[str, type[Node]]:
    """Return the registered classes by ``node_type``."""
    return dict(_BY_NODE_TYPE)


def load_node_class(node_type: str) -> type[Node]:
    """Return the class of a node with ``node_type``: its own, else the nearest known kind (see module doc)."""
    found = _BY_NODE_TYPE.get(node_type)
    if found is not None:
        return found
    path = node_type_path(node_type)
    while True:
        found = _BY_TYPE_PATH.get(path)
        if found is not None:
            return found
        if not path:
            return _BY_NODE_TYPE['']
        path = path.rpartition('.')[0]


def nodes_from_rows(storage: EntityStorage, rows: Iterable[Row]) -> list[Node]:
    """Return the stored nodes of ``rows`` (rows of ``db_dbnode`` in ``storage``), each as its class."""
    return [load_node_class(row['node_type'])._from_row(storage, row) for row in rows]
