"""The links of a node: add incoming links, list incoming and outgoing ones.

A link goes from a source node to a target node and is added on the target::

    calculation.base.links.add_incoming(structure, LinkType.INPUT_CALC, 'structure')
    result.base.links.add_incoming(calculation, 'create', 'result')

Every link is checked against the rules of :mod:`provstore.orm.links` (kinds of node, label, how many links of a
type each side may have, counting links already stored) when it is added, and again when it is written. A link
to an unstored target is kept with the target and stored with it; a link to a stored target is stored at once
(its source must then be stored too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provstore.orm.entities import Entity, check_writable
from provstore.orm.exceptions import ModificationNotAllowedError, MultipleObjectsError, NotExistentError
from provstore.orm.links import LINK_RULES, Degree, Link, LinkType, LinkValidationError, validate_links
from provstore.orm.node_classes import nodes_from_rows
from provstore.orm.validation import check_rows
from provstore.storage import EntityStorage, EntityType, Row

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node

__all__ = [
    'LinkManager',
    'LinkTriple',
    'NodeLinks',
    'as_link_type',
    'fetch_stored_links',
    'node_key',
    'source_links_matter',
]


@dataclass(frozen=True)
class LinkTriple:
    """A link seen from one of its ends: the node at the other end, the link type and the label."""

    node: Node
    link_type: LinkType
    link_label: str


def as_link_type(value: LinkType | str) -> LinkType:
    """Return ``value`` as a :class:`LinkType` (its value, like ``'create'``, is accepted).

    :raises LinkValidationError: for anything else.
    """
    if isinstance(value, LinkType):
        return value
    try:
        return LinkType(value)
    except ValueError:
        raise LinkValidationError(
            f'unknown link type {value!r}; use one of {[member.value for member in LinkType]}'
        ) from None


def node_key(node: Node) -> object:
    """How links being validated name a node: its pk once stored, its uuid before."""
    return node.pk if node.pk is not None else node.uuid


def source_links_matter(link_type: LinkType, target: Node) -> bool:
    """Whether the stored links leaving the source can conflict with a new ``link_type`` link to ``target``.

    They cannot when ``target`` is unstored and the type allows a source one link per (target, label)
    (``UNIQUE_TRIPLE``): no stored link reaches a new node. Then the look-up is skipped (one query less per link).
    """
    return target.pk is not None or LINK_RULES[link_type].outdegree is not Degree.UNIQUE_TRIPLE


def fetch_stored_links(
    storage: EntityStorage, sources: Sequence[int], targets: Sequence[int], link_types: Sequence[LinkType]
) -> list[Link]:
    """Return the stored links of ``link_types`` leaving any of ``sources`` or entering any of ``targets``."""
    types = [link_type.value for link_type in dict.fromkeys(link_types)]
    rows: dict[int, Row] = {}
    if sources and types:
        rows.update((row['id'], row) for row in storage.get_links(sources, 'outgoing', types))
    if targets and types:
        rows.update((row['id'], row) for row in storage.get_links(targets, 'incoming', types))
    return [_link_of_row(row) for row in rows.values() if row['type'] in _LINK_TYPE_VALUES]


_LINK_TYPE_VALUES = frozenset(member.value for member in LinkType)


def _link_of_row(row: Row) -> Link:
    return Link(row['input_id'], row['output_id'], LinkType(row['type']), row['label'])


class LinkManager:
    """The links of one node in one direction, as :class:`LinkTriple` objects ordered as they were stored."""

    def __init__(self, triples: Iterable[LinkTriple]) -> None:
        self._triples = list(triples)

    def __repr__(self) -> str:
        return f'<LinkManager: {len(self._triples)} link(s)>'

    def __iter__(self) -> Iterator[LinkTriple]:
        return iter(self._triples)

    def __len__(self) -> int:
        return len(self._triples)

    def all(self) -> list[LinkTriple]:
        """Return every link."""
        return list(self._triples)

    def all_nodes(self) -> list[Node]:
        """Return the node at the other end of every link."""
        return [triple.node for triple in self._triples]

    def all_link_labels(self) -> list[str]:
        """Return the label of every link."""
        return [triple.link_label for triple in self._triples]

    def first(self) -> LinkTriple | None:
        """Return the first link, or ``None`` when there is none."""
        return self._triples[0] if self._triples else None

    def one(self) -> LinkTriple:
        """Return the only link.

        :raises NotExistentError: if there is none.
        :raises MultipleObjectsError: if there is more than one.
        """
        if not self._triples:
            raise NotExistentError('there is no such link')
        if len(self._triples) > 1:
            raise MultipleObjectsError(f'there are {len(self._triples)} such links, not one')
        return self._triples[0]

    def get_node_by_label(self, label: str) -> Node:
        """Return the node at the other end of the one link labelled ``label``.

        :raises NotExistentError: if there is none.
        :raises MultipleObjectsError: if there is more than one.
        """
        found = [triple.node for triple in self._triples if triple.link_label == label]
        if not found:
            raise NotExistentError(f'no link labelled {label!r}')
        if len(found) > 1:
            raise MultipleObjectsError(f'{len(found)} links are labelled {label!r}')
        return found[0]


class NodeLinks:
    """The links of one node."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def __repr__(self) -> str:
        return f'<NodeLinks of {self._node!r}>'

    def add_incoming(self, source: Node, link_type: LinkType | str, link_label: str) -> None:
        """Add a link from ``source`` to this node.

        :param link_type: a :class:`LinkType` or its value (``'input_calc'``, ``'create'``, ...).
        :param link_label: letters, digits and ``_``, not starting or ending with ``_``.
        :raises LinkValidationError: if the link breaks a rule of the provenance graph; nothing is written.
        :raises ModificationNotAllowedError: if a node refuses the link (sealed, a stored process node, or a
            stored target with an unstored source).
        """
        target = self._node
        if not isinstance(source, Entity) or source._entity_type is not EntityType.NODE:
            raise TypeError(f'the source of a link must be a node, got {type(source).__name__}')
        link_type = as_link_type(link_type)
        target._validate_incoming_link(source, link_type)
        source._validate_outgoing_link(target, link_type)
        if target.is_stored and not source.is_stored:
            raise ModificationNotAllowedError(
                f'cannot add a link from the unstored {source!r} to the stored {target!r}: store the source first'
            )
        if target.is_stored and source.storage is not target.storage:
            raise ModificationNotAllowedError(f'{source!r} and {target!r} are stored in different storages')
        link = Link(node_key(source), node_key(target), link_type, link_label)
        node_types = {link.source: source.node_type, link.target: target.node_type}
        if not target.is_stored:
            self._validate(source, link, node_types)
            target._pending_links.append((source, link_type, link_label))
            return
        assert source.pk is not None and target.pk is not None
        storage = target.storage
        check_writable(storage)
        row = {'input_id': source.pk, 'output_id': target.pk, 'label': link_label, 'type': link_type.value}
        check_rows(EntityType.LINK, [row])
        with storage.transaction():
            self._validate(source, link, node_types)
            storage.insert_rows(EntityType.LINK, [row])

    def _validate(self, source: Node, link: Link, node_types: dict[object, str]) -> None:
        """Check ``link`` against the node's pending links and, for stored ends, the links already stored."""
        target = self._node
        known = [Link(node_key(other), link.target, kind, label) for other, kind, label in target._pending_links]
        sources = [source.pk] if source.pk is not None and source_links_matter(link.link_type, target) else []
        targets = [target.pk] if target.pk is not None else []
        if sources or targets:
            storage = target.storage if target.pk is not None else source.storage
            known.extend(fetch_stored_links(storage, sources, targets, [link.link_type]))
        validate_links([link], node_types, known)

    def get_incoming(
        self,
        node_class: type[Node] | None = None,
        link_type: LinkType | str | Sequence[LinkType | str] = (),
        link_label: str | None = None,
    ) -> LinkManager:
        """Return the links entering this node (pending ones too, while it is unstored).

        :param node_class: keep only sources that are instances of this class.
        :param link_type: keep only links of this type (or these types).
        :param link_label: keep only links with this label.
        """
        node = self._node
        triples: list[LinkTriple] = [LinkTriple(source, kind, label) for source, kind, label in node._pending_links]
        if node.pk is not None:
            rows = node.storage.get_links([node.pk], 'incoming', _type_values(link_type))
            triples.extend(self._triples(rows, 'input_id'))
        return LinkManager(_filtered(triples, node_class, link_type, link_label))

    def get_outgoing(
        self,
        node_class: type[Node] | None = None,
        link_type: LinkType | str | Sequence[LinkType | str] = (),
        link_label: str | None = None,
    ) -> LinkManager:
        """Return the stored links leaving this node (an unstored node has none: links are kept by their target).

        :param node_class: keep only targets that are instances of this class.
        :param link_type: keep only links of this type (or these types).
        :param link_label: keep only links with this label.
        """
        node = self._node
        if node.pk is None:
            return LinkManager([])
        rows = node.storage.get_links([node.pk], 'outgoing', _type_values(link_type))
        return LinkManager(_filtered(self._triples(rows, 'output_id'), node_class, link_type, link_label))

    def _triples(self, rows: list[Row], end: str) -> list[LinkTriple]:
        rows = sorted((row for row in rows if row['type'] in _LINK_TYPE_VALUES), key=lambda row: int(row['id']))
        storage = self._node.storage
        ids = list(dict.fromkeys(row[end] for row in rows))
        nodes = {node.pk: node for node in nodes_from_rows(storage, storage.get_rows(EntityType.NODE, 'id', ids))}
        return [LinkTriple(nodes[row[end]], LinkType(row['type']), row['label']) for row in rows]


def _type_values(link_type: LinkType | str | Sequence[LinkType | str]) -> list[str] | None:
    types = _as_types(link_type)
    return [member.value for member in types] if types else None


def _as_types(link_type: LinkType | str | Sequence[LinkType | str]) -> list[LinkType]:
    if isinstance(link_type, (LinkType, str)):
        return [as_link_type(link_type)]
    return [as_link_type(value) for value in link_type]


def _filtered(
    triples: list[LinkTriple],
    node_class: type[Any] | None,
    link_type: LinkType | str | Sequence[LinkType | str],
    link_label: str | None,
) -> list[LinkTriple]:
    types = set(_as_types(link_type))
    return [
        triple
        for triple in triples
        if (node_class is None or isinstance(triple.node, node_class))
        and (not types or triple.link_type in types)
        and (link_label is None or triple.link_label == link_label)
    ]
