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

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

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
    'LinkNamespace',
    'LinkPair',
    'LinkTriple',
    'NodeLinks',
    'NodeLinksManager',
    'as_link_type',
    'fetch_stored_links',
    'node_key',
    'source_links_matter',
]


class LinkTriple(NamedTuple):
    """A link seen from one of its ends: the node at the other end (its uuid, when asked for ``only_uuid``), the
    link type and the label. A tuple, as aiida-core's: ``for node, link_type, label in links``."""

    node: Node | Any
    link_type: LinkType
    link_label: str


class LinkPair(NamedTuple):
    """The type and label of a link."""

    link_type: LinkType
    link_label: str


def as_link_type(value: LinkType | str) -> LinkType:
    """Return ``value`` as a :class:`LinkType` (its value, like ``'create'``, is accepted).

    :raises TypeError: for a value that is neither.
    :raises LinkValidationError: for a string that is no link type's value.
    """
    if isinstance(value, LinkType):
        return value
    if not isinstance(value, str):
        raise TypeError(f'a link type is a LinkType or its value, got {value!r}')
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

    def __bool__(self) -> bool:
        return bool(self._triples)

    def next(self) -> Iterator[LinkTriple]:
        """Return an iterator over the links (aiida-core's name for ``iter(manager)``)."""
        return iter(self._triples)

    def all_link_pairs(self) -> list[LinkPair]:
        """Return the type and label of every link."""
        return [LinkPair(triple.link_type, triple.link_label) for triple in self._triples]

    def nested(self, sort: bool = True) -> dict[str, Any]:
        """Return the nodes by label, a label ``a__b`` put as ``b`` in the dict under ``a`` (a process's nested
        namespaces); with ``sort``, plain entries first, then namespaces, each by name.

        :raises KeyError: if two links have the same place.
        """
        nested: dict[str, Any] = {}
        for triple in self._triples:
            *namespaces, name = triple.link_label.split(NAMESPACE_SEPARATOR)
            place = nested
            for namespace in namespaces:
                place = place.setdefault(namespace, {})
                if not isinstance(place, dict):
                    raise KeyError(f'{triple.link_label!r}: {namespace!r} is a node, not a namespace')
            if name in place:
                raise KeyError(f'duplicate label {name!r} in namespace {".".join(namespaces)!r}')
            place[name] = triple.node
        return _sorted_namespaces(nested) if sort else nested

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

        :raises ValueError: if there is none, or more than one (as aiida-core's).
        """
        if not self._triples:
            raise ValueError('there is no such link')
        if len(self._triples) > 1:
            raise ValueError(f'there are {len(self._triples)} such links, not one')
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
        link, node_types = self._checked_link(source, link_type, link_label)
        if not target.is_stored:
            self._validate(source, link, node_types)
            target._pending_links.append((source, link.link_type, link_label))
            return
        assert source.pk is not None and target.pk is not None
        storage = target.storage
        check_writable(storage)
        row = {'input_id': source.pk, 'output_id': target.pk, 'label': link_label, 'type': link.link_type.value}
        check_rows(EntityType.LINK, [row])
        with storage.transaction():
            self._validate(source, link, node_types)
            storage.insert_rows(EntityType.LINK, [row])

    def validate_incoming(self, source: Node, link_type: LinkType | str, link_label: str) -> None:
        """Raise what :meth:`add_incoming` would for this link, without adding it."""
        link, node_types = self._checked_link(source, link_type, link_label)
        self._validate(source, link, node_types)

    def validate_outgoing(self, target: Node, link_type: LinkType | str, link_label: str) -> None:
        """Raise what :meth:`add_incoming` of ``target`` would for a link from this node, without adding it."""
        target.base.links.validate_incoming(self._node, link_type, link_label)

    def _checked_link(self, source: Node, link_type: LinkType | str, link_label: str) -> tuple[Link, dict[object, str]]:
        """The link from ``source``, once both nodes accept it; the node types its rules are checked with."""
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
        return link, {link.source: source.node_type, link.target: target.node_type}

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
        node_class: type[Node] | tuple[type[Node], ...] | None = None,
        link_type: LinkType | str | Sequence[LinkType | str] = (),
        link_label_filter: str | None = None,
        only_uuid: bool = False,
    ) -> LinkManager:
        """Return the links entering this node (pending ones too, while it is unstored).

        :param node_class: keep only sources that are instances of this class (or these classes).
        :param link_type: keep only links of this type (or these types).
        :param link_label_filter: keep only labels matching this ``like`` pattern (``%`` any text, ``_`` one
            character, ``\\`` before either for itself).
        :param only_uuid: give each node as its uuid.
        """
        node = self._node
        triples = [LinkTriple(source, kind, label) for source, kind, label in node._pending_links]
        triples = _filtered(triples, node_class, link_type, link_label_filter)
        stored = self.get_stored_link_triples(node_class, link_type, link_label_filter, 'incoming')
        return LinkManager(_uuids(stored + triples) if only_uuid else stored + triples)

    def get_outgoing(
        self,
        node_class: type[Node] | tuple[type[Node], ...] | None = None,
        link_type: LinkType | str | Sequence[LinkType | str] = (),
        link_label_filter: str | None = None,
        only_uuid: bool = False,
    ) -> LinkManager:
        """Return the stored links leaving this node (an unstored node has none: links are kept by their target);
        the arguments as :meth:`get_incoming`'s."""
        return LinkManager(
            self.get_stored_link_triples(node_class, link_type, link_label_filter, 'outgoing', only_uuid)
        )

    def get_stored_link_triples(
        self,
        node_class: type[Node] | tuple[type[Node], ...] | None = None,
        link_type: LinkType | str | Sequence[LinkType | str] = (),
        link_label_filter: str | None = None,
        link_direction: Literal['incoming', 'outgoing'] = 'incoming',
        only_uuid: bool = False,
    ) -> list[LinkTriple]:
        """Return the stored links entering (``link_direction='incoming'``) or leaving (``'outgoing'``) this node,
        in the order they were stored; the other arguments as :meth:`get_incoming`'s."""
        if link_direction not in ('incoming', 'outgoing'):
            raise ValueError(f"link_direction must be 'incoming' or 'outgoing', got {link_direction!r}")
        node = self._node
        if node.pk is None:
            return []
        rows = node.storage.get_links([node.pk], link_direction, _type_values(link_type))
        end = 'input_id' if link_direction == 'incoming' else 'output_id'
        triples = _filtered(self._triples(rows, end), node_class, link_type, link_label_filter)
        return _uuids(triples) if only_uuid else triples

    def _triples(self, rows: list[Row], end: str) -> list[LinkTriple]:
        rows = sorted((row for row in rows if row['type'] in _LINK_TYPE_VALUES), key=lambda row: int(row['id']))
        storage = self._node.storage
        ids = list(dict.fromkeys(row[end] for row in rows))
        nodes = {node.pk: node for node in nodes_from_rows(storage, storage.get_rows(EntityType.NODE, 'id', ids))}
        return [LinkTriple(nodes[row[end]], LinkType(row['type']), row['label']) for row in rows]


NAMESPACE_SEPARATOR = '__'
"""Separates the nested namespaces of a process's inputs and outputs in a link label (``a__b`` is ``a.b``)."""


def _sorted_namespaces(nested: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(nested.items(), key=lambda item: (isinstance(item[1], dict), item[0])))


def _uuids(triples: list[LinkTriple]) -> list[LinkTriple]:
    return [triple._replace(node=triple.node.uuid) for triple in triples]


def _like(pattern: str) -> re.Pattern[str]:
    """The regular expression of a ``like`` pattern: ``%`` any text, ``_`` one character, ``\\`` escapes."""
    parts = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == '\\':
            escaped = True
        else:
            parts.append({'%': '.*', '_': '.'}.get(char, re.escape(char)))
    return re.compile(''.join(parts), re.DOTALL)


def _type_values(link_type: LinkType | str | Sequence[LinkType | str]) -> list[str] | None:
    types = _as_types(link_type)
    return [member.value for member in types] if types else None


def _as_types(link_type: LinkType | str | Sequence[LinkType | str]) -> list[LinkType]:
    if isinstance(link_type, (LinkType, str)):
        return [as_link_type(link_type)]
    return [as_link_type(value) for value in link_type]


def _filtered(
    triples: list[LinkTriple],
    node_class: type[Any] | tuple[type[Any], ...] | None,
    link_type: LinkType | str | Sequence[LinkType | str],
    link_label_filter: str | None,
) -> list[LinkTriple]:
    types = set(_as_types(link_type))
    label = _like(link_label_filter) if link_label_filter is not None else None
    return [
        triple
        for triple in triples
        if (node_class is None or isinstance(triple.node, node_class))
        and (not types or triple.link_type in types)
        and (label is None or label.fullmatch(triple.link_label) is not None)
    ]


class LinkNamespace(dict[str, Any]):
    """A namespace of a process's inputs or outputs: its nodes (and nested namespaces) by name, as items or as
    attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f'no input or output named {name!r} in this namespace') from None

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(self))


class NodeLinksManager:
    """The nodes linked to a process node by one link type, by label: ``calculation.inputs.structure``,
    ``workflow.outputs['result']``, nested namespaces as attributes (``workflow.inputs.relax.parameters``, stored
    as the label ``relax__parameters``); iterating gives the labels. A missing label raises ``AttributeError``
    (attribute) or ``KeyError`` (item), so that ``getattr(node.inputs, 'x', None)`` works.
    """

    def __init__(self, node: Node, link_type: LinkType, incoming: bool) -> None:
        self._node = node
        self._link_type = link_type
        self._incoming = incoming

    def __repr__(self) -> str:
        direction = 'incoming' if self._incoming else 'outgoing'
        return f'<NodeLinksManager: {direction} {self._link_type.value} links of {self._node!r}>'

    def _nested(self) -> dict[str, Any]:
        links = self._node.base.links
        found = links.get_incoming if self._incoming else links.get_outgoing
        return found(link_type=self._link_type).nested()

    def _get(self, name: str) -> Any:
        nested = self._nested()
        value = nested.get(name)
        if value is None and NAMESPACE_SEPARATOR in name.strip('_'):
            value = nested
            for part in name.split(NAMESPACE_SEPARATOR):
                value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            what = 'input' if self._incoming else 'output'
            raise KeyError(f'{self._node!r} has no {what} labelled {name!r}')
        return _as_namespace(value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith('_'):
            raise AttributeError(name)
        try:
            return self._get(name)
        except KeyError as exception:
            raise AttributeError(exception.args[0]) from None

    def __getitem__(self, name: str) -> Any:
        return self._get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._nested()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._nested()))

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(self._nested()))

    def _get_keys(self) -> list[str]:
        """Return the labels (the names of the top-level namespace)."""
        return list(self._nested())


def _as_namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return LinkNamespace({key: _as_namespace(item) for key, item in value.items()})
    return value
