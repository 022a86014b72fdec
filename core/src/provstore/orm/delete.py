"""Deleting nodes without breaking the provenance graph, following aiida-core's DELETE traversal rules.

Deleting a node deletes what cannot exist without it: the data a calculation created, the calculations and
workflows that used a piece of data, the workflows that called a deleted process, ... The rules
(:data:`~provstore.orm.traversal.DELETE_RULES`) say which links lead from a node to be deleted to more nodes to be
deleted; some are fixed, some may be switched off. The closure is computed by the storage, in the database.
Repository objects of deleted nodes stay until maintenance removes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from provstore.orm.entities import check_writable, get_entity_storage
from provstore.orm.exceptions import NotExistentError
from provstore.orm.traversal import DELETE_RULES, TraversalRule, traverse_with_rules
from provstore.storage import EntityStorage

__all__ = ['DELETE_RULES', 'TraversalRule', 'delete_nodes', 'get_nodes_delete']

LOGGER = logging.getLogger(__name__)


def get_nodes_delete(pks: Iterable[int], storage: EntityStorage | None = None, **rules: bool) -> set[int]:
    """Return the pks of every node that deleting ``pks`` would delete (``pks`` included), deleting nothing.

    :param rules: toggleable rules to switch (``create_forward=False``, ...).
    :raises NotExistentError: naming the pks that are not stored nodes.
    :raises ValueError: for an unknown rule, or a fixed rule given another value.
    """
    try:
        return traverse_with_rules(pks, DELETE_RULES, storage, kind='delete', **rules)
    except NotExistentError as exc:
        raise NotExistentError(f'{exc}; nothing deleted') from None


def delete_nodes(
    pks: Iterable[int], *, dry_run: bool = True, storage: EntityStorage | None = None, **rules: bool
) -> set[int]:
    """Delete ``pks`` and every node the DELETE rules reach from them, with their links, group memberships,
    comments and logs, in one transaction; return the pks of the deleted nodes.

    :param dry_run: only compute and return what would be deleted (the default: deleting must be asked for).
    :param rules: toggleable rules to switch: ``create_forward``, ``call_calc_forward``, ``call_work_forward``.
    :raises NotExistentError: naming the pks that are not stored nodes; nothing is deleted then.
    :raises ValueError: for an unknown rule, or a fixed rule given another value.
    """
    storage = get_entity_storage(storage)
    pks = list(pks)
    if dry_run:
        doomed = get_nodes_delete(pks, storage, **rules)
        LOGGER.info('dry run: deleting %s node(s) would delete %s node(s)', len(set(pks)), len(doomed))
        return doomed
    check_writable(storage)
    with storage.transaction():
        doomed = get_nodes_delete(pks, storage, **rules)
        storage.delete_nodes(sorted(doomed))
    LOGGER.info('deleted %s node(s)', len(doomed))
    return doomed
