"""Graph traversal rules: which links lead from a node to more nodes, for deleting and for exporting.

A rule set says, per link type and direction, whether the traversal follows it, and whether a caller may switch
it. aiida-core defines two; provstore keeps them as it has them:

======================  ==================  ==================
rule                    DELETE              EXPORT
======================  ==================  ==================
input_calc_forward      True (fixed)        False (toggleable)
input_calc_backward     False (fixed)       True (fixed)
create_forward          True (toggleable)   True (fixed)
create_backward         True (fixed)        True (toggleable)
return_forward          False (fixed)       True (fixed)
return_backward         True (fixed)        False (toggleable)
input_work_forward      True (fixed)        False (toggleable)
input_work_backward     False (fixed)       True (fixed)
call_calc_forward       True (toggleable)   True (fixed)
call_calc_backward      True (fixed)        True (toggleable)
call_work_forward       True (toggleable)   True (fixed)
call_work_backward      True (fixed)        True (toggleable)
======================  ==================  ==================

``x_forward`` follows links of type ``x`` from source to target, ``x_backward`` from target to source. The closure
is computed by the storage, inside the database (:meth:`~provstore.storage.EntityStorage.traverse`): the same
recursive query serves deleting, exporting and the QueryBuilder's ``with_ancestors``/``with_descendants``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provstore.orm.entities import get_entity_storage
from provstore.orm.exceptions import NotExistentError
from provstore.orm.links import LinkType
from provstore.storage import EntityStorage

__all__ = ['DELETE_RULES', 'EXPORT_RULES', 'TraversalRule', 'get_nodes_export', 'traverse_with_rules']


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


def _rules(*table: tuple[LinkType, bool, bool, bool, bool]) -> dict[str, TraversalRule]:
    """Rules from rows (link type, forward default, forward toggleable, backward default, backward toggleable)."""
    rules = {}
    for link_type, forward, forward_toggle, backward, backward_toggle in table:
        for rule in (
            TraversalRule(link_type, True, forward, forward_toggle),
            TraversalRule(link_type, False, backward, backward_toggle),
        ):
            rules[rule.name] = rule
    return rules


DELETE_RULES: dict[str, TraversalRule] = _rules(
    (LinkType.INPUT_CALC, True, False, False, False),
    (LinkType.CREATE, True, True, True, False),
    (LinkType.RETURN, False, False, True, False),
    (LinkType.INPUT_WORK, True, False, False, False),
    (LinkType.CALL_CALC, True, True, True, False),
    (LinkType.CALL_WORK, True, True, True, False),
)
"""aiida-core's DELETE rules, by name."""

EXPORT_RULES: dict[str, TraversalRule] = _rules(
    (LinkType.INPUT_CALC, False, True, True, False),
    (LinkType.CREATE, True, False, True, True),
    (LinkType.RETURN, True, False, False, True),
    (LinkType.INPUT_WORK, False, True, True, False),
    (LinkType.CALL_CALC, True, False, True, True),
    (LinkType.CALL_WORK, True, False, True, True),
)
"""aiida-core's EXPORT rules, by name."""


def link_types(
    rule_set: Mapping[str, TraversalRule], rules: Mapping[str, bool], kind: str = 'traversal'
) -> tuple[list[str], list[str]]:
    """Return the link types followed forward and backward, with ``rules`` applied over the defaults.

    :raises ValueError: for an unknown rule, or a fixed rule given a value other than its default.
    :raises TypeError: for a value that is not a bool.
    """
    chosen = {name: rule.default for name, rule in rule_set.items()}
    for name, value in rules.items():
        rule = rule_set.get(name)
        if rule is None:
            raise ValueError(f'unknown {kind} rule {name!r}; the rules are {sorted(rule_set)}')
        if not isinstance(value, bool):
            raise TypeError(f'{kind} rule {name!r} must be True or False, got {value!r}')
        if value != rule.default and not rule.toggleable:
            raise ValueError(f'{kind} rule {name!r} is fixed to {rule.default}: it cannot be changed')
        chosen[name] = value
    forward = [rule.link_type.value for name, rule in rule_set.items() if rule.forward and chosen[name]]
    backward = [rule.link_type.value for name, rule in rule_set.items() if not rule.forward and chosen[name]]
    return forward, backward


def traverse_with_rules(
    pks: Iterable[int],
    rule_set: Mapping[str, TraversalRule],
    storage: EntityStorage | None = None,
    *,
    kind: str = 'traversal',
    **rules: bool,
) -> set[int]:
    """Return the pks of ``pks`` and every node the rules reach from them.

    :raises NotExistentError: naming the pks that are not stored nodes.
    :raises ValueError: for an unknown rule, or a fixed rule given another value.
    """
    storage = get_entity_storage(storage)
    forward, backward = link_types(rule_set, rules, kind)
    start = sorted({_check_pk(pk) for pk in pks})
    if not start:
        return set()
    # NOTE: the traversal starts from the pks that are nodes, so a pk missing from what it reaches is not a node: no
    # look-up of the start rows first (exporting a whole profile starts from every pk).
    reached = storage.traverse(start, forward, backward)
    missing = [pk for pk in start if pk not in reached]
    if missing:
        raise NotExistentError(f'No node with pk {", ".join(map(str, missing))}')
    return set(reached)


def get_nodes_export(pks: Iterable[int], storage: EntityStorage | None = None, **rules: bool) -> set[int]:
    """Return the pks of every node an archive of ``pks`` holds under the EXPORT rules (``pks`` included).

    :param rules: toggleable rules to switch: ``input_calc_forward``, ``create_backward``, ``return_backward``,
        ``input_work_forward``, ``call_calc_backward``, ``call_work_backward``.
    """
    return traverse_with_rules(pks, EXPORT_RULES, storage, kind='export', **rules)


def _check_pk(pk: object) -> int:
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise TypeError(f'node pks must be integers, got {pk!r}')
    return pk
