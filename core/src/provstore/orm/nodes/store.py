"""Storing nodes with their files and links: one node (``node.store()``) or many at once (:func:`store_nodes`).

The order makes a crash at any moment harmless:

1. everything is checked first: each node may be stored, its user and computer are stored, every pending link
   obeys the rules of the provenance graph (counting the links already stored);
2. the files of all nodes go into the profile's repository, in bulk (a crash now leaves only unreferenced
   objects, which maintenance removes);
3. one transaction inserts the node rows and then the link rows, in batches (nodes without links that fit in
   one :meth:`~provstore.storage.EntityStorage.insert_rows` call need no more: that call is atomic);
4. only after the commit do the node objects become stored.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from provstore.orm.entities import check_writable, get_entity_storage, utc_now
from provstore.orm.exceptions import StoringNotAllowedError
from provstore.orm.links import Link, validate_links
from provstore.orm.nodes.links import fetch_stored_links, node_key, source_links_matter
from provstore.orm.users import User, get_default_user
from provstore.orm.validation import check_rows
from provstore.repository import CHUNK_SIZE
from provstore.storage import EntityStorage, EntityType

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node
    from provstore.repository import AbstractRepositoryBackend

__all__ = ['FILES_PER_WRITE', 'ROWS_PER_INSERT', 'store_nodes']

ROWS_PER_INSERT = 2000
"""Rows per :meth:`~provstore.storage.EntityStorage.insert_rows` call."""

FILES_PER_WRITE = 10_000
"""Files per bulk write into the repository. A node's files, and a batch up to this size, go in one write.

Each file is read through a stream that opens its source only while it is being read (:class:`_LazyStream`), so a
bulk write holds one file handle at a time however many files it carries.
"""

_T = TypeVar('_T')


def store_nodes(nodes: Iterable[Node], storage: EntityStorage | None = None) -> list[Node]:
    """Store many nodes with their files and pending incoming links, in one transaction; return them.

    The source of every pending link must be stored already or be one of ``nodes``. Nodes stored already are
    left as they are. When the call is nested in an outer :meth:`~provstore.storage.EntityStorage.transaction`
    that is rolled back later, the node objects still consider themselves stored: load them again.

    :param storage: where to store them; default: the storage the nodes were made for, else the loaded profile's.
    :raises StoringNotAllowedError: if a node, its user, its computer or a link source cannot be stored.
    :raises LinkValidationError: if a pending link breaks a rule of the provenance graph.
    :raises ValidationError: if a value cannot be stored alike on every backend (see :mod:`provstore.orm.validation`).
    """
    nodes = list(nodes)
    pending = list({id(node): node for node in nodes if not node.is_stored}.values())
    if not pending:
        return nodes
    storage = _common_storage(pending, storage)
    check_writable(storage)
    _check_uuids(pending, storage)
    for node in pending:
        node._check_storable()
    links, node_types, stored_sources = _pending_links(pending, storage)
    backend = storage.get_repository()
    if links and (not stored_sources or _has_files_to_write(pending, backend)):
        # NOTE: checked before any file is written; links from stored nodes are checked (again) in the transaction.
        validate_links(links, node_types, fetch_stored_links(storage, stored_sources, [], _types(links)))
    now = utc_now()
    # NOTE: checked before any file or row is written; the repository metadata the files make is checked by then.
    check_rows(EntityType.NODE, [node._row_to_insert(0, None, now, {}) for node in pending])
    check_rows(EntityType.LINK, [{'label': link.label, 'type': link.link_type.value} for link in links])
    default_user: list[User] = []  # looked up once, and only when a node has no user
    references = [_references(node, storage, default_user) for node in pending]

    with storage.object_writes():  # NOTE: live maintenance deletes none of the files until the rows are in
        metadata = _write_files(pending, backend)
        rows = [
            node._row_to_insert(user_id, computer_id, now, tree)
            for node, (user_id, computer_id), tree in zip(pending, references, metadata, strict=True)
        ]
        if not links and len(rows) <= ROWS_PER_INSERT:
            # NOTE: one insert_rows call is atomic by itself: an enclosing block would only cost round trips.
            pks = storage.insert_rows(EntityType.NODE, rows)
        else:
            pks = _insert_with_links(
                storage, rows, pending, links=links, node_types=node_types, stored_sources=stored_sources
            )
    for node, row, pk in zip(pending, rows, pks, strict=True):
        node._mark_stored(storage, row, pk, backend)
    return nodes


def _insert_with_links(
    storage: EntityStorage,
    rows: list[dict[str, Any]],
    pending: Sequence[Node],
    *,
    links: list[Link],
    node_types: dict[object, str],
    stored_sources: list[int],
) -> list[int]:
    """Insert the node rows, then the link rows, in one transaction; return the nodes' pks."""
    with storage.transaction():
        if stored_sources:
            # NOTE: counted inside the transaction: another process may have linked the sources meanwhile.
            validate_links(links, node_types, fetch_stored_links(storage, stored_sources, [], _types(links)))
        pks: list[int] = []
        for chunk in _chunks(rows, ROWS_PER_INSERT):
            pks.extend(storage.insert_rows(EntityType.NODE, chunk))
        ids: dict[object, int] = {node.uuid: pk for node, pk in zip(pending, pks, strict=True)}
        link_rows = [
            {
                'input_id': ids.get(link.source, link.source),
                'output_id': ids[link.target],
                'label': link.label,
                'type': link.link_type.value,
            }
            for link in links
        ]
        for chunk in _chunks(link_rows, ROWS_PER_INSERT):
            storage.insert_rows(EntityType.LINK, chunk)
    return pks


def _common_storage(nodes: Sequence[Node], storage: EntityStorage | None) -> EntityStorage:
    bound = {id(node._storage): node._storage for node in nodes if node._storage is not None}
    if storage is not None:
        storage = get_entity_storage(storage)
        others = [node for node in nodes if node._storage is not None and node._storage is not storage]
        if others:
            raise StoringNotAllowedError(f'{others[0]!r} was made for another storage than the one given')
        return storage
    if len(bound) > 1:
        raise StoringNotAllowedError('the nodes were made for different storages: store them separately')
    return next(iter(bound.values())) if bound else get_entity_storage()


def _check_uuids(nodes: Sequence[Node], storage: EntityStorage) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.uuid in seen:
            raise StoringNotAllowedError(f'two nodes to store have the same uuid {node.uuid}')
        seen.add(node.uuid)
    # NOTE: only uuids that came from elsewhere (Node.from_row) can be stored already; fresh uuid4s cannot.
    foreign = [node.uuid for node in nodes if node._uuid_from_row]
    if foreign:
        for row in storage.get_rows(EntityType.NODE, 'uuid', foreign):
            raise StoringNotAllowedError(f'a node with uuid {row["uuid"]} is stored already (pk={row["id"]})')


def _references(node: Node, storage: EntityStorage, default_user: list[User]) -> tuple[int, int | None]:
    """Return the pks of the user (default: the storage's default user) and computer of ``node``."""
    user = node._user
    if user is None:
        if not default_user:
            default_user.append(get_default_user(storage))
        user = node._user = default_user[0]
    user_id = node._require_stored_reference(user, 'user', storage)
    assert user_id is not None
    return user_id, node._require_stored_reference(node._computer, 'computer', storage)


def _pending_links(nodes: Sequence[Node], storage: EntityStorage) -> tuple[list[Link], dict[object, str], list[int]]:
    """Return the pending links of ``nodes``, the node types of their ends and the pks of the stored sources whose
    stored links matter (:func:`~provstore.orm.nodes.links.source_links_matter`)."""
    in_batch = {id(node) for node in nodes}
    links: list[Link] = []
    node_types: dict[object, str] = {}
    stored_sources: dict[int, None] = {}
    for target in nodes:
        for source, link_type, label in target._pending_links:
            if source.pk is None and id(source) not in in_batch:
                raise StoringNotAllowedError(
                    f'{target!r} has an incoming {link_type.value} link {label!r} from the unstored {source!r}: '
                    'store the source first, or store both together with store_nodes'
                )
            if source.pk is not None:
                if source.storage is not storage:
                    raise StoringNotAllowedError(
                        f'{target!r} has an incoming link from {source!r}, which is stored in another storage'
                    )
                if source_links_matter(link_type, target):
                    stored_sources[source.pk] = None
            link = Link(node_key(source), node_key(target), link_type, label)
            node_types[link.source] = source.node_type
            node_types[link.target] = target.node_type
            links.append(link)
    return links, node_types, list(stored_sources)


def _types(links: Sequence[Link]) -> list[Any]:
    return [link.link_type for link in links]


def _has_files_to_write(nodes: Sequence[Node], target: AbstractRepositoryBackend) -> bool:
    """Whether a node of ``nodes`` has files that are not in ``target`` yet."""
    return any(
        node._repository is not None and node._repository.backend is not target and not node._repository.is_empty()
        for node in nodes
    )


def _write_files(nodes: Sequence[Node], target: AbstractRepositoryBackend) -> list[dict[str, Any]]:
    """Copy the files of ``nodes`` into ``target`` in bulk; return each node's ``repository_metadata``."""
    sources: dict[tuple[int, str], tuple[AbstractRepositoryBackend, str]] = {}
    for node in nodes:
        repository = node._repository
        if repository is None or repository.backend is target:
            continue
        for key in repository.get_file_keys():
            sources.setdefault((id(repository.backend), key), (repository.backend, key))
    new_keys: dict[tuple[int, str], str] = {}
    for chunk in _chunks(list(sources.items()), FILES_PER_WRITE):
        with ExitStack() as stack:
            handles = [cast(BinaryIO, stack.enter_context(_LazyStream(backend, key))) for _, (backend, key) in chunk]
            keys = target.put_objects_from_filelikes(handles)
        new_keys.update(zip((source for source, _ in chunk), keys, strict=True))
    metadata: list[dict[str, Any]] = []
    for node in nodes:
        repository = node._repository
        if repository is None:
            metadata.append({})
        elif repository.backend is target:
            metadata.append(repository.serialize())
        else:
            metadata.append(_rekey(repository.serialize(), _key_mapper(new_keys, id(repository.backend))))
    return metadata


class _LazyStream(io.RawIOBase):
    """A seekable byte stream of one object of a backend that holds the object open only while it is read.

    The object is opened at the first read after creation or a seek, and closed when its end is reached.
    """

    def __init__(self, backend: AbstractRepositoryBackend, key: str) -> None:
        super().__init__()
        self._backend = backend
        self._key = key
        self._stack: ExitStack | None = None
        self._handle: BinaryIO | None = None
        self._position = 0

    def __repr__(self) -> str:
        return f'<_LazyStream of object {self._key} of {self._backend.name!r}>'

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation('a lazy stream seeks from its start or its current position only')
        if offset < 0:
            raise ValueError(f'negative seek position {offset}')
        if offset != self._position:
            self._release()
            self._position = offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        handle = self._open()
        view = memoryview(buffer).cast('B')
        data = handle.read(len(view))
        count = len(data)
        view[:count] = data
        self._position += count
        if count == 0:
            self._release()
        return count

    def _open(self) -> BinaryIO:
        if self._handle is None:
            stack = ExitStack()
            handle = stack.enter_context(self._backend.open(self._key))
            self._stack = stack
            self._handle = handle
            if self._position:
                _skip(handle, self._position)
        return self._handle

    def _release(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self._handle = None

    def close(self) -> None:
        self._release()
        super().close()


def _skip(handle: BinaryIO, count: int) -> None:
    """Move ``handle`` forward by ``count`` bytes (seeking when it can)."""
    if handle.seekable():
        handle.seek(count, io.SEEK_CUR)
        return
    while count:
        chunk = handle.read(min(count, CHUNK_SIZE))
        if not chunk:
            return
        count -= len(chunk)


def _key_mapper(new_keys: dict[tuple[int, str], str], backend_id: int) -> Callable[[str], str]:
    def new_key(key: str) -> str:
        return new_keys[(backend_id, key)]

    return new_key


def _rekey(tree: dict[str, Any], new_key: Callable[[str], str]) -> dict[str, Any]:
    if 'k' in tree:
        return {'k': new_key(tree['k'])}
    if not tree:
        return {}
    return {'o': {name: _rekey(child, new_key) for name, child in tree['o'].items()}}


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
