"""Deleting nodes without breaking the provenance graph, following aiida-core's DELETE traversal rules.

Deleting a node deletes what cannot exist without it: the data a calculation created, the calculations and
workflows that used a piece of data, the workflows that called a deleted process, ... The rules say which links
are followed from a node to be deleted to more nodes to be deleted; some are fixed, some may be switched off:

======================  =========  ==========
rule                    default    toggleable
======================  =========  ==========
input_calc_forward      True       no
input_calc_backward     False      no
create_forward          True       yes
create_backward         True       no
return_forward          False      no
return_backward         True       no
input_work_forward      True       no
input_work_backward     False      no
call_calc_forward       True       yes
call_calc_backward      True       no
call_work_forward       True       yes
call_work_backward      True       no
======================  =========  ==========

``x_forward`` follows links of type ``x`` from source to target, ``x_backward`` from target to source. The closure
is computed by the storage, in the database (:meth:`~provstore.storage.EntityStorage.traverse`). Repository
objects of deleted nodes stay until maintenance removes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provstore.orm.entities import check_writable, get_entity_storage
from provstore.orm.exceptions import NotExistentError
from provstore.orm.links import LinkType
from provstore.storage import EntityStorage, EntityType

__all__ = ['DELETE_RULES', 'TraversalRule', 'delete_nodes', 'get_nodes_delete']

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TraversalRule:
    """Whether a link type is followed in one direction by default, and whether a caller may change that."""

    link_type: LinkType
    forward: bool
    default: bool
    toggleable: bool

    @property
    def name(self) -> str:
        """``<link type>_forward`` or ``<link type>_backward``."""
        return f'{self.link_type.value}_{"forward" if self.forward else "backward"}'


def _rule(link_type: LinkType, forward: bool, default: bool, toggleable: bool) -> TraversalRule:
    return TraversalRule(link_type, forward, default, toggleable)


DELETE_RULES: dict[str, TraversalRule] = {
    rule.name: rule
    for rule in (
        _rule(LinkType.INPUT_CALC, True, True, False),
        _rule(LinkType.INPUT_CALC, False, False, False),
        _rule(LinkType.CREATE, True, True, True),
        _rule(LinkType.CREATE, False, True, False),
        _rule(LinkType.RETURN, True, False, False),
        _rule(LinkType.RETURN, False, True, False),
        _rule(LinkType.INPUT_WORK, True, True, False),
        _rule(LinkType.INPUT_WORK, False, False, False),
        _rule(LinkType.CALL_CALC, True, True, True),
        _rule(LinkType.CALL_CALC, False, True, False),
        _rule(LinkType.CALL_WORK, True, True, True),
        _rule(LinkType.CALL_WORK, False, True, False),
    )
}
"""aiida-core's DELETE rules, by name."""


def _link_types(rules: Mapping[str, bool]) -> tuple[list[str], list[str]]:
    """Return the link types followed forward and backward, with ``rules`` applied over the defaults.

    :raises ValueError: for an unknown rule, or a fixed rule given a value other than its default.
    """
    chosen = {name: rule.default for name, rule in DELETE_RULES.items()}
    for name, value in rules.items():
        rule = DELETE_RULES.get(name)
        if rule is None:
            raise ValueError(f'unknown delete rule {name!r}; the rules are {sorted(DELETE_RULES)}')
        if not isinstance(value, bool):
            raise TypeError(f'delete rule {name!r} must be True or False, got {value!r}')
        if value != rule.default and not rule.toggleable:
            raise ValueError(f'delete rule {name!r} is fixed to {rule.default}: it cannot be changed')
        chosen[name] = value
    forward = [rule.link_type.value for name, rule in DELETE_RULES.items() if rule.forward and chosen[name]]
    backward = [rule.link_type.value for name, rule in DELETE_RULES.items() if not rule.forward and chosen[name]]
    return forward, backward


def get_nodes_delete(pks: Iterable[int], storage: EntityStorage | None = None, **rules: bool) -> set[int]:
    """Return the pks of every node that deleting ``pks`` would delete (``pks`` included), deleting nothing.

    :param rules: toggleable rules to switch (``create_forward=False``, ...).
    :raises NotExistentError: naming the pks that are not stored nodes.
    :raises ValueError: for an unknown rule, or a fixed rule given another value.
    """
    storage = get_entity_storage(storage)
    forward, backward = _link_types(rules)
    start = sorted({_check_pk(pk) for pk in pks})
    if not start:
        return set()
    found = {int(row['id']) for row in storage.get_rows(EntityType.NODE, 'id', start)}
    missing = [pk for pk in start if pk not in found]
    if missing:
        raise NotExistentError(f'No node with pk {", ".join(map(str, missing))}; nothing deleted')
    return set(storage.traverse(start, forward, backward))


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


def _check_pk(pk: object) -> int:
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise TypeError(f'node pks must be integers, got {pk!r}')
    return pk
