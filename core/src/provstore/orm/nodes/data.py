"""Data nodes: the inputs and outputs of calculations.

Each class has aiida-core's ``node_type`` and keeps its value in the same attributes, so that archives move
between provstore and aiida-core unchanged: ``Int``, ``Float``, ``Str`` and ``Bool`` in attribute ``value``,
``Dict`` as the attributes themselves, ``List`` in attribute ``list``, ``SinglefileData`` as one file named by
attribute ``filename``, ``FolderData`` as a tree of files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar, Literal

from provstore.orm.entities import clean_json, clean_json_object
from provstore.orm.links import LinkType
from provstore.orm.nodes.node import Node
from provstore.orm.nodes.repository import make_sandbox
from provstore.repository import File, Repository

__all__ = ['Bool', 'Data', 'Dict', 'Float', 'FolderData', 'Int', 'List', 'SinglefileData', 'Str']


class Data(Node):
    """A piece of data. Unknown data kinds (from plugins not installed here) load as this class."""

    NODE_TYPE: ClassVar[str] = 'data.Data.'

    @property
    def creator(self) -> Node | None:
        """The calculation that created this node (its ``create`` link in), or ``None``."""
        first = self.base.links.get_incoming(link_type=LinkType.CREATE).first()
        return None if first is None else first.node

    def __deepcopy__(self, memo: dict[int, Any]) -> Data:
        """``copy.deepcopy`` of data is :meth:`clone`, as aiida-core's: an unstored copy."""
        return self.clone()

    def clone(self) -> Data:
        """Return an unstored copy of this node: same kind, attributes and files; a new uuid, no extras or links."""
        copy = type(self).__new__(type(self))
        Node.__init__(copy, label=self._label, description=self._description, storage=self._storage)
        copy._node_type = self._node_type
        copy._process_type = self._process_type
        copy._attributes = clean_json(self._attributes, 'attributes')
        copy._computer = self.computer
        copy._user = self.user if self.is_stored else self._user
        source = self._get_repository_or_none()
        if source is not None and not source.is_empty():
            copy._sandbox = make_sandbox()
            copy._repository = Repository(copy._sandbox)
            copy._repository.clone(source)
        return copy

    def _set_attribute(self, key: str, value: Any) -> None:
        """Set an attribute, under the rules of ``base.attributes`` (so only while the node is unstored)."""
        self.base.attributes.set(key, value)


def _one_of(value: Any, kwargs: dict[str, Any], keyword: str) -> Any:
    """The content given as ``value`` or as aiida-core's keyword (taken out of ``kwargs``), not both."""
    if keyword not in kwargs:
        return value
    given = kwargs.pop(keyword)
    if value is not None:
        raise TypeError(f'give the content once: as the first argument or as {keyword}=, not both')
    return given


class _SingleValue(Data):
    """A data node holding one value in attribute ``value``."""

    _kind: ClassVar[type]

    def __init__(self, value: Any = None, **kwargs: Any) -> None:
        """:param value: the value (default: the type's empty value, ``0``, ``0.0``, ``''``, ``False``, as
        aiida-core's); other keyword arguments go to :class:`Node`."""
        super().__init__(**kwargs)
        # NOTE: a new node's attributes are written directly: nothing to check but the value (fast constructors).
        self._attributes['value'] = clean_json(self._convert(self._kind() if value is None else value), 'value')

    @property
    def value(self) -> Any:
        """The value (settable while the node is unstored)."""
        return self.base.attributes.get('value', None)

    @value.setter
    def value(self, value: Any) -> None:
        self._set_attribute('value', self._convert(value))

    def _convert(self, value: Any) -> Any:
        return self._kind(value)

    def __str__(self) -> str:
        return str(self.value)


class Int(_SingleValue):
    """An integer."""

    NODE_TYPE: ClassVar[str] = 'data.core.int.Int.'
    _kind = int

    def _convert(self, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f'Int needs an integral value, got {value!r}')
        return int(value)


class Float(_SingleValue):
    """A floating point number."""

    NODE_TYPE: ClassVar[str] = 'data.core.float.Float.'
    _kind = float


class Str(_SingleValue):
    """A string."""

    NODE_TYPE: ClassVar[str] = 'data.core.str.Str.'
    _kind = str

    def _convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f'Str needs a string, got {type(value).__name__}')
        return value


class Bool(_SingleValue):
    """A boolean."""

    NODE_TYPE: ClassVar[str] = 'data.core.bool.Bool.'
    _kind = bool

    def __bool__(self) -> bool:
        return bool(self.value)


class Dict(Data):
    """A dictionary: its keys are the node's attributes."""

    NODE_TYPE: ClassVar[str] = 'data.core.dict.Dict.'

    def __init__(self, value: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """:param value: the dictionary (top-level keys: non-empty strings without ``.``); aiida-core's keyword
        ``dict=`` gives it too."""
        value = _one_of(value, kwargs, 'dict')
        super().__init__(**kwargs)
        if value is not None:
            self._attributes = clean_json_object(value, 'attribute')

    def set_dict(self, value: Mapping[str, Any]) -> None:
        """Replace the content (unstored nodes only)."""
        self.base.attributes.reset(value)

    def get_dict(self) -> dict[str, Any]:
        """Return a copy of the content."""
        return self.base.attributes.all

    def keys(self) -> list[str]:
        """Return the keys."""
        return self.base.attributes.keys()

    def items(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, value)`` pairs."""
        return self.base.attributes.items()

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default``."""
        return self.base.attributes.get(key, default)

    def __getitem__(self, key: str) -> Any:
        try:
            return self.base.attributes.get(key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.base.attributes.set(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self.base.attributes

    def __len__(self) -> int:
        return len(self.base.attributes)


class List(Data):
    """A list, kept in attribute ``list``."""

    NODE_TYPE: ClassVar[str] = 'data.core.list.List.'
    _KEY: ClassVar[str] = 'list'

    def __init__(self, value: Sequence[Any] | None = None, **kwargs: Any) -> None:
        """:param value: the items; aiida-core's keyword ``list=`` gives them too."""
        value = _one_of(value, kwargs, 'list')
        super().__init__(**kwargs)
        self.set_list(list(value or []))

    def set_list(self, value: Sequence[Any]) -> None:
        """Replace the items (unstored nodes only)."""
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f'List needs a sequence, got {type(value).__name__}')
        self._set_attribute(self._KEY, list(value))

    def get_list(self) -> list[Any]:
        """Return a copy of the items."""
        items: list[Any] = self.base.attributes.get(self._KEY, [])
        return items

    def append(self, value: Any) -> None:
        """Append an item (unstored nodes only)."""
        self.set_list([*self.get_list(), value])

    def extend(self, values: Sequence[Any]) -> None:
        """Append several items (unstored nodes only)."""
        self.set_list([*self.get_list(), *values])

    def __getitem__(self, index: int) -> Any:
        return self.get_list()[index]

    def __len__(self) -> int:
        return len(self._attributes.get(self._KEY, []))


class SinglefileData(Data):
    """One file; its name is attribute ``filename``."""

    NODE_TYPE: ClassVar[str] = 'data.core.singlefile.SinglefileData.'
    DEFAULT_FILENAME: ClassVar[str] = 'file.txt'

    def __init__(
        self, file: str | os.PathLike[str] | IO[Any] | None = None, filename: str | None = None, **kwargs: Any
    ) -> None:
        """:param file: a path to a real file, or an open stream (bytes, or text encoded as UTF-8).

        :param filename: the name to keep it under; default: the file's own name (``file.txt`` for a stream
            without one).
        """
        super().__init__(**kwargs)
        if file is not None:
            self.set_file(file, filename)

    @property
    def filename(self) -> str:
        """The name of the file."""
        name: str = self.base.attributes.get('filename')
        return name

    def set_file(self, file: str | os.PathLike[str] | IO[Any], filename: str | None = None) -> None:
        """Replace the file (unstored nodes only)."""
        if isinstance(file, (str, os.PathLike)):
            name = filename or Path(file).name
            _check_filename(name)
            self._set_attribute('filename', name)
            repository = self.base.repository
            repository.erase()
            repository.put_object_from_file(file, name)
            return
        handle_name = getattr(file, 'name', None)
        name = filename or (Path(handle_name).name if isinstance(handle_name, str) else self.DEFAULT_FILENAME)
        _check_filename(name)
        self._set_attribute('filename', name)
        repository = self.base.repository
        repository.erase()
        repository.put_object_from_filelike(file, name)

    @contextmanager
    def open(self, mode: Literal['r', 'rb'] = 'r') -> Iterator[IO[Any]]:
        """Open the file for reading: as text (UTF-8) with ``'r'``, as bytes with ``'rb'``."""
        with self.base.repository.open(self.filename, mode) as handle:
            yield handle

    def get_content(self, mode: Literal['r', 'rb'] = 'r') -> Any:
        """Return the content: ``str`` with ``'r'``, ``bytes`` with ``'rb'``."""
        return self.base.repository.get_object_content(self.filename, mode)


def _check_filename(name: str) -> None:
    if not name or '/' in name or name in ('.', '..'):
        raise ValueError(f'a SinglefileData file name must be a single path part, got {name!r}')


class FolderData(Data):
    """A tree of files and directories."""

    NODE_TYPE: ClassVar[str] = 'data.core.folder.FolderData.'

    def __init__(self, tree: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        """:param tree: a real folder whose content becomes the node's files."""
        super().__init__(**kwargs)
        if tree is not None:
            self.base.repository.put_object_from_tree(tree)

    def list_objects(self, path: str | PurePosixPath | None = None) -> list[File]:
        """Return the entries of the directory at ``path``."""
        return self.base.repository.list_objects(path)

    def list_object_names(self, path: str | PurePosixPath | None = None) -> list[str]:
        """Return the names in the directory at ``path``."""
        return self.base.repository.list_object_names(path)

    def get_object_content(self, path: str | PurePosixPath, mode: Literal['r', 'rb'] = 'r') -> Any:
        """Return the content of the file at ``path``."""
        return self.base.repository.get_object_content(path, mode)

    def put_object_from_bytes(self, content: bytes, path: str | PurePosixPath) -> None:
        """Write a file (unstored nodes only)."""
        self.base.repository.put_object_from_bytes(content, path)
