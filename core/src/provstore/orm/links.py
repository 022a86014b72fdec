"""The six link types of a provenance graph and the rules every link obeys, as in aiida-core 2.x.

A link goes from a source node to a target node, has a type and a label. Which kinds of node a type may join,
and how many links of a type a node may have on each side, are data (:data:`LINK_RULES`); :func:`validate_links`
checks a batch of new links against those rules and against the links already stored, before anything is
written.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from provstore.exceptions import ProvstoreError

__all__ = [
    'LINK_RULES',
    'Degree',
    'Link',
    'LinkRule',
    'LinkType',
    'LinkValidationError',
    'NodeKind',
    'check_label',
    'node_kind',
    'validate_links',
]


class LinkValidationError(ProvstoreError, ValueError):
    """A link breaks a rule of the provenance graph; nothing was written."""


class LinkType(str, enum.Enum):
    """The type of a link, with the value stored in ``db_dblink.type``."""

    CREATE = 'create'
    RETURN = 'return'
    INPUT_CALC = 'input_calc'
    INPUT_WORK = 'input_work'
    CALL_CALC = 'call_calc'
    CALL_WORK = 'call_work'


class NodeKind(str, enum.Enum):
    """What a link rule cares about: data, a calculation or a workflow (from the ``node_type`` prefix)."""

    DATA = 'data'
    CALCULATION = 'calculation'
    WORKFLOW = 'workflow'


class Degree(enum.Enum):
    """How many links of one type a node may have on one side.

    ``UNIQUE``: at most one, whatever its label. ``UNIQUE_PAIR``: at most one per label. ``UNIQUE_TRIPLE``: at
    most one per (other node, label).
    """

    UNIQUE = 'unique'
    UNIQUE_PAIR = 'unique_pair'
    UNIQUE_TRIPLE = 'unique_triple'


@dataclass(frozen=True)
class LinkRule:
    """The kinds a link type joins, and its degree on the source side (out) and on the target side (in)."""

    source: NodeKind
    target: NodeKind
    outdegree: Degree
    indegree: Degree


LINK_RULES: dict[LinkType, LinkRule] = {
    LinkType.CREATE: LinkRule(NodeKind.CALCULATION, NodeKind.DATA, Degree.UNIQUE_PAIR, Degree.UNIQUE),
    LinkType.RETURN: LinkRule(NodeKind.WORKFLOW, NodeKind.DATA, Degree.UNIQUE_PAIR, Degree.UNIQUE_TRIPLE),
    LinkType.INPUT_CALC: LinkRule(NodeKind.DATA, NodeKind.CALCULATION, Degree.UNIQUE_TRIPLE, Degree.UNIQUE_PAIR),
    LinkType.INPUT_WORK: LinkRule(NodeKind.DATA, NodeKind.WORKFLOW, Degree.UNIQUE_TRIPLE, Degree.UNIQUE_PAIR),
    LinkType.CALL_CALC: LinkRule(NodeKind.WORKFLOW, NodeKind.CALCULATION, Degree.UNIQUE_TRIPLE, Degree.UNIQUE),
    LinkType.CALL_WORK: LinkRule(NodeKind.WORKFLOW, NodeKind.WORKFLOW, Degree.UNIQUE_TRIPLE, Degree.UNIQUE),
}

_KIND_PREFIXES = (
    ('data.', NodeKind.DATA),
    ('process.calculation.', NodeKind.CALCULATION),
    ('process.workflow.', NodeKind.WORKFLOW),
)

LABEL_PATTERN = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9_]*[A-Za-z0-9])?')
"""Link labels: letters, digits and ``_``, neither starting nor ending with ``_`` (``__`` nests namespaces)."""


@dataclass(frozen=True)
class Link:
    """One link: ``source`` and ``target`` identify nodes (pks, uuids or objects: anything hashable)."""

    source: object
    target: object
    link_type: LinkType
    label: str


def node_kind(node_type: str) -> NodeKind | None:
    """Return the kind of a node from its ``node_type`` string, or ``None`` for a bare process or node."""
    for prefix, kind in _KIND_PREFIXES:
        if node_type.startswith(prefix):
            return kind
    return None


def check_label(label: object) -> str:
    """Return ``label`` if it is a valid link label, else raise :class:`LinkValidationError` saying why."""
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise LinkValidationError(
            f'invalid link label {label!r}: use letters, digits and "_", not starting or ending with "_"'
        )
    return label


def validate_links(
    new: Iterable[Link],
    node_types: dict[object, str],
    stored: Iterable[Link] = (),
) -> None:
    """Check a batch of new links; raise :class:`LinkValidationError` for the first that breaks a rule.

    :param new: the links to add.
    :param node_types: the ``node_type`` of every node the new links touch.
    :param stored: the links already stored that start at a source or end at a target of ``new`` (only those of
        the same types matter); they count towards each node's degree.
    """
    new = list(new)
    seen_out: Counter[tuple[object, ...]] = Counter()
    seen_in: Counter[tuple[object, ...]] = Counter()

    def count(link: Link) -> None:
        rule = LINK_RULES[link.link_type]
        seen_out[_degree_key(link.source, link, rule.outdegree, outgoing=True)] += 1
        seen_in[_degree_key(link.target, link, rule.indegree, outgoing=False)] += 1

    for link in stored:
        count(link)
    for link in new:
        _check_shape(link, node_types)
        rule = LINK_RULES[link.link_type]
        out_key = _degree_key(link.source, link, rule.outdegree, outgoing=True)
        in_key = _degree_key(link.target, link, rule.indegree, outgoing=False)
        if seen_out[out_key]:
            raise LinkValidationError(
                f'{_describe(link)}: node {link.source} already has an outgoing {link.link_type.value} link'
                + _degree_words(rule.outdegree, link)
            )
        if seen_in[in_key]:
            raise LinkValidationError(
                f'{_describe(link)}: node {link.target} already has an incoming {link.link_type.value} link'
                + _degree_words(rule.indegree, link)
            )
        count(link)


def _check_shape(link: Link, node_types: dict[object, str]) -> None:
    if not isinstance(link.link_type, LinkType):
        raise LinkValidationError(f'unknown link type {link.link_type!r}; use one of {[t.value for t in LinkType]}')
    check_label(link.label)
    if link.source == link.target:
        raise LinkValidationError(f'{_describe(link)}: a node cannot link to itself')
    rule = LINK_RULES[link.link_type]
    for end, expected in ((link.source, rule.source), (link.target, rule.target)):
        if end not in node_types:
            raise LinkValidationError(f'{_describe(link)}: node {end} is unknown')
        kind = node_kind(node_types[end])
        if kind is not expected:
            side = 'source' if end == link.source else 'target'
            raise LinkValidationError(
                f'{_describe(link)}: the {side} must be a {expected.value} node, but node {end} is '
                f'{node_types[end] or "a bare node"!r}'
            )


def _degree_key(node: object, link: Link, degree: Degree, outgoing: bool) -> tuple[object, ...]:
    other = link.target if outgoing else link.source
    if degree is Degree.UNIQUE:
        return (node, link.link_type)
    if degree is Degree.UNIQUE_PAIR:
        return (node, link.link_type, link.label)
    return (node, link.link_type, link.label, other)


def _degree_words(degree: Degree, link: Link) -> str:
    if degree is Degree.UNIQUE:
        return ' (only one is allowed)'
    if degree is Degree.UNIQUE_PAIR:
        return f' labelled {link.label!r}'
    return f' labelled {link.label!r} to the same node'


def _describe(link: Link) -> str:
    return f'link {link.source} -[{link.link_type.value}:{link.label}]-> {link.target}'
