"""The files of a node: a :class:`~provstore.repository.Repository` tree with the node's mutability rules.

While the node is unstored its files live in a sandbox of its own (:class:`~provstore.orm.nodes.sandbox.NodeSandbox`,
created when the first file is written: small files in memory, the others in a ``sandbox`` repository backend).
Storing the node copies them into the profile's repository in one batch write and saves the tree as the node's
``repository_metadata``. After that the files are immutable.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, cast

from provstore.orm.exceptions import ModificationNotAllowedError
from provstore.orm.nodes.sandbox import SANDBOX_BACKEND, NodeSandbox
from provstore.repository import File, Repository

if TYPE_CHECKING:
    from provstore.orm.nodes.node import Node
    from provstore.repository import AbstractRepositoryBackend

__all__ = ['SANDBOX_BACKEND', 'NodeRepository', 'make_sandbox']

PathLike = str | PurePosixPath


def make_sandbox() -> AbstractRepositoryBackend:
    """Return a new sandbox for the files of an unstored node (small ones in memory, the others in a folder)."""
    return NodeSandbox()


class NodeRepository:
    """The file tree of one node. Reading works in any state; writing only while the node is unstored."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def __repr__(self) -> str:
        return f'<NodeRepository of {self._node!r}>'

    @property
    def _repository(self) -> Repository | None:
        return self._node._get_repository_or_none()

    def _writable(self) -> Repository:
        if self._node.is_stored:
            raise ModificationNotAllowedError(f'{self._node!r}: the files of a stored node are immutable')
        return self._node._get_repository_tree()

    # -- reading ----------------------------------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """The tree in aiida-core's ``repository_metadata`` shape (keys are sandbox keys until the node is stored)."""
        repository = self._repository
        return {} if repository is None else repository.serialize()

    def is_empty(self) -> bool:
        """Whether the node has no file and no directory."""
        repository = self._repository
        return repository is None or repository.is_empty()

    def has_object(self, path: PathLike) -> bool:
        """Whether a file or directory exists at ``path``."""
        repository = self._repository
        return repository is not None and repository.has_object(path)

    def get_object(self, path: PathLike | None = None) -> File:
        """Return the entry at ``path`` (the root when ``None``).

        :raises FileNotFoundError: if nothing exists at ``path``.
        """
        return self._readable().get_object(path)

    def list_objects(self, path: PathLike | None = None) -> list[File]:
        """Return the entries of the directory at ``path``, sorted by name."""
        return self._readable().list_objects(path)

    def list_object_names(self, path: PathLike | None = None) -> list[str]:
        """Return the sorted names in the directory at ``path``."""
        return self._readable().list_object_names(path)

    def walk(self, path: PathLike | None = None) -> Iterator[tuple[PurePosixPath, list[str], list[str]]]:
        """Walk the tree from ``path`` like :func:`os.walk`."""
        return self._readable().walk(path)

    @contextmanager
    def open(self, path: PathLike, mode: Literal['r', 'rb'] = 'r') -> Iterator[IO[Any]]:
        """Open the file at ``path`` for reading: as text (UTF-8) with ``'r'``, as bytes with ``'rb'``.

        :raises FileNotFoundError: if there is no file at ``path``.
        """
        if mode not in ('r', 'rb'):
            raise ValueError(f"mode must be 'r' or 'rb', got {mode!r}")
        with self._readable().open(path) as handle:
            if mode == 'rb':
                yield handle
            else:
                text = io.TextIOWrapper(handle, encoding='utf-8')
                try:
                    yield text
                finally:
                    text.detach()  # the backend closes the binary stream

    def get_object_content(self, path: PathLike, mode: Literal['r', 'rb'] = 'r') -> Any:
        """Return the content of the file at ``path``: ``str`` with ``'r'`` (UTF-8), ``bytes`` with ``'rb'``."""
        content = self._readable().get_object_content(path)
        if mode == 'rb':
            return content
        if mode != 'r':
            raise ValueError(f"mode must be 'r' or 'rb', got {mode!r}")
        return content.decode('utf-8')

    def copy_tree(self, target: str | os.PathLike[str], path: PathLike | None = None) -> None:
        """Write the files under ``path`` into the real folder ``target``."""
        self._readable().copy_tree(target, path)

    def hash(self) -> str:
        """Return a sha256 digest of the tree and the content of its files."""
        return Repository.hash(self._readable())

    def _readable(self) -> Repository:
        return self._node._get_repository_tree()

    # -- writing (unstored nodes only) ------------------------------------------------------------------------

    def put_object_from_bytes(self, content: bytes, path: PathLike) -> None:
        """Write ``content`` as the file at ``path``."""
        self._writable().put_object_from_bytes(content, path)

    def put_object_from_filelike(self, handle: IO[Any], path: PathLike) -> None:
        """Write everything left in ``handle`` (bytes, or text encoded as UTF-8) as the file at ``path``."""
        stream: object = handle
        if isinstance(stream, io.TextIOBase):
            self._writable().put_object_from_bytes(stream.read().encode('utf-8'), path)
            return
        self._writable().put_object_from_filelike(cast(BinaryIO, handle), path)

    def put_object_from_file(self, filepath: str | os.PathLike[str], path: PathLike) -> None:
        """Write the content of the real file ``filepath`` as the file at ``path``."""
        self._writable().put_object_from_file(filepath, path)

    def put_object_from_tree(self, folder: str | os.PathLike[str], path: PathLike | None = None) -> None:
        """Write every file and directory under the real folder ``folder`` (relative: to the working directory)
        beneath ``path``."""
        if isinstance(folder, (str, os.PathLike)):
            folder = os.path.abspath(folder)
        self._writable().put_object_from_tree(folder, path)

    def create_directory(self, path: PathLike) -> None:
        """Create the directory at ``path`` (and its parents)."""
        self._writable().create_directory(path)

    def delete_object(self, path: PathLike) -> None:
        """Remove the file or empty directory at ``path``."""
        self._writable().delete_object(path, hard_delete=True)

    def erase(self) -> None:
        """Remove every file and directory."""
        self._writable().erase()
