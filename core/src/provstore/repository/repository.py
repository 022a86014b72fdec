"""The virtual file tree of a node, kept in memory over a flat repository backend.

Directories exist only in the tree; files point at backend keys. The tree serialises to aiida-core's
``repository_metadata`` JSON: a directory is ``{"o": {name: child}}`` (``{}`` when empty), a file is
``{"k": key}``.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeAlias

from provstore.exceptions import InvalidPathError, InvalidPathTypeError
from provstore.repository.backend import CHUNK_SIZE, AbstractRepositoryBackend

__all__ = ['MAX_DEPTH', 'File', 'FileType', 'Repository', 'clean_path']

_NOT_IN_A_NAME = re.compile(r'[/\\\x00]')
"""What a single part of a path never holds: a slash, a backslash, NUL."""

MAX_DEPTH = 256
"""The deepest folder a tree read from ``repository_metadata`` may have: deeper ones are refused as absurd, before
reading them recurses that deep."""

PathLike: TypeAlias = 'str | PurePosixPath'
"""A path inside a repository: relative, ``/``-separated."""


class FileType(enum.Enum):
    """Whether an entry of the tree is a directory or a file."""

    DIRECTORY = 0
    FILE = 1


@dataclass(frozen=True)
class File:
    """An entry of the repository tree, as returned by listings: a file with its key, or a directory."""

    name: str
    file_type: FileType
    key: str | None = None
    _directory: _Directory | None = field(default=None, compare=False, repr=False)

    @property
    def is_dir(self) -> bool:
        """Whether this entry is a directory."""
        return self.file_type is FileType.DIRECTORY

    @property
    def objects(self) -> dict[str, File]:
        """The entries of this directory by name, as aiida-core's ``File.objects`` (``{}`` for a file)."""
        if self._directory is None:
            return {}
        return {name: _to_file(name, entry) for name, entry in sorted(self._directory.objects.items())}


@dataclass
class _Directory:
    objects: dict[str, _Directory | str] = field(default_factory=dict)


def clean_path(path: PathLike | None) -> PurePosixPath:
    """Return ``path`` as a clean relative path, or raise :class:`InvalidPathError` naming the problem.

    ``None``, ``''`` and ``'.'`` mean the root. Refused: absolute paths and anything that is not a string or a
    path (:class:`~provstore.exceptions.InvalidPathTypeError`, a ``TypeError`` as aiida-core's); ``..`` and ``.``
    parts, empty parts (``a//b``), backslashes and NUL characters (:class:`InvalidPathError`).
    """
    if path is None or path in ('', '.', './') or path == PurePosixPath():
        return PurePosixPath()
    if isinstance(path, PurePosixPath):
        path = str(path)
    if not isinstance(path, str):
        raise InvalidPathTypeError(f'repository path must be a string, got {type(path).__name__}: {path!r}')
    if path.startswith('/'):
        raise InvalidPathTypeError(f'repository path must be relative, got the absolute path {path!r}')
    if '\x00' in path or '\\' in path:
        raise InvalidPathError(f'repository path {path!r} contains a backslash or NUL character')
    parts = path.split('/')
    if path.endswith('/'):
        parts.pop()
    for part in parts:
        if part in ('', '.', '..'):
            raise InvalidPathError(f'repository path {path!r} has an empty, "." or ".." part')
    return PurePosixPath(*parts)


class Repository:
    """A tree of directories and files whose contents live in a repository backend."""

    def __init__(self, backend: AbstractRepositoryBackend) -> None:
        self._backend = backend
        self._root = _Directory()

    def __repr__(self) -> str:
        return f'<Repository over {self._backend.name!r} backend, {len(self.get_file_keys())} file(s)>'

    @property
    def backend(self) -> AbstractRepositoryBackend:
        """The backend that holds the file contents."""
        return self._backend

    @property
    def uuid(self) -> str | None:
        """The uuid of the backend's repository, or ``None`` when it has none."""
        return self._backend.uuid

    @property
    def is_initialised(self) -> bool:
        """Whether the backend's repository exists."""
        return self._backend.is_initialised

    @classmethod
    def flatten(cls, serialized: Mapping[str, Any] | None, delimiter: str = '/') -> dict[str, str | None]:
        """Return the tree of ``serialized`` (``repository_metadata``) as ``{path: key}``, a directory as its path
        ending in ``delimiter`` with ``None``, as aiida-core's ``Repository.flatten``."""
        if serialized is None:
            return {}
        flat: dict[str, str | None] = {}
        pending: list[tuple[str, Mapping[str, Any]]] = [('', serialized)]
        while pending:
            prefix, directory = pending.pop()
            for name, child in directory.get('o', {}).items():
                path = f'{prefix}{delimiter}{name}' if prefix else name
                if isinstance(child, Mapping) and 'k' in child:
                    flat[path] = child['k']
                else:
                    flat[f'{path}{delimiter}'] = None
                    pending.append((path, child))
        return flat

    # -- serialisation ----------------------------------------------------------------------------------------

    @classmethod
    def from_serialized(cls, backend: AbstractRepositoryBackend, serialized: Mapping[str, Any]) -> Repository:
        """Rebuild a repository from :meth:`serialize` output (aiida-core's ``repository_metadata``).

        The input is untrusted (it may come from an archive): names and shape are validated.

        :raises InvalidPathError: for a name that is not a single clean path part.
        :raises ValueError: for anything else that is not the expected shape.
        """
        repository = cls(backend)
        repository._root = _deserialize_directory(serialized, PurePosixPath())
        return repository

    @classmethod
    def file_references(cls, serialized: Mapping[str, Any] | None) -> list[tuple[str, str]]:
        """Return the ``(path, key)`` of every file of ``serialized`` (``repository_metadata``), checked as
        :meth:`from_serialized` checks it; paths are POSIX, relative to the root.

        :raises InvalidPathError: for a name that is not a single clean path part.
        :raises ValueError: for anything else that is not the expected shape.
        """
        if not serialized:
            return []
        references: list[tuple[str, str]] = []
        _collect_files(_deserialize_directory(serialized, PurePosixPath()), '', references)
        return references

    def serialize(self) -> dict[str, Any]:
        """Return the tree in aiida-core's ``repository_metadata`` shape."""
        return _serialize_directory(self._root)

    def hash(self) -> str:
        """Return a sha256 digest of the whole tree: its paths, its directories and the content of its files."""
        digest = hashlib.sha256()
        for path, entry in sorted(self._iter_entries(self._root, PurePosixPath())):
            if isinstance(entry, str):
                digest.update(f'f:{path}:{self._backend.get_object_hash(entry)}\n'.encode())
            else:
                digest.update(f'd:{path}\n'.encode())
        return digest.hexdigest()

    # -- reading ----------------------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """Whether the tree has no file and no directory."""
        return not self._root.objects

    def get_file_keys(self) -> list[str]:
        """Return the backend keys of every file in the tree (one per file, duplicates included)."""
        keys: list[str] = []
        _collect_keys(self._root, keys)
        return keys

    def has_object(self, path: PathLike) -> bool:
        """Whether a file or directory exists at ``path``."""
        try:
            self._lookup(clean_path(path))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def get_object(self, path: PathLike | None = None) -> File:
        """Return the entry at ``path`` (the root when ``None``).

        :raises FileNotFoundError: if nothing exists at ``path``.
        """
        clean = clean_path(path)
        return _to_file(clean.name, self._lookup(clean))

    def get_directory(self, path: PathLike | None = None) -> File:
        """Return the directory at ``path`` (the root when ``None``); its ``objects`` are its entries.

        :raises FileNotFoundError: if nothing exists at ``path``.
        :raises NotADirectoryError: if ``path`` is a file.
        """
        clean = clean_path(path)
        return _to_file(clean.name, self._get_directory(clean))

    def get_file(self, path: PathLike) -> File:
        """Return the file at ``path``.

        :raises InvalidPathTypeError: if ``path`` is ``None`` (a ``TypeError``).
        :raises FileNotFoundError: if nothing exists at ``path``.
        :raises IsADirectoryError: if ``path`` is a directory.
        """
        if path is None:
            raise InvalidPathTypeError('get_file needs the path of a file, got None')
        clean = clean_path(path)
        return _to_file(clean.name, self._get_file_key(clean))

    def list_objects(self, path: PathLike | None = None) -> list[File]:
        """Return the entries of the directory at ``path``, sorted by name.

        :raises FileNotFoundError: if nothing exists at ``path``.
        :raises NotADirectoryError: if ``path`` is a file.
        """
        directory = self._get_directory(clean_path(path))
        return [_to_file(name, entry) for name, entry in sorted(directory.objects.items())]

    def list_object_names(self, path: PathLike | None = None) -> list[str]:
        """Return the sorted names in the directory at ``path``."""
        return [entry.name for entry in self.list_objects(path)]

    def walk(self, path: PathLike | None = None) -> Iterator[tuple[PurePosixPath, list[str], list[str]]]:
        """Walk the tree from ``path``: ``(dirpath, dirnames, filenames)``, names sorted, in aiida-core's order: each
        directory after everything below it (bottom-up), its subdirectories in name order."""
        start = clean_path(path)
        # NOTE: depth-first without recursion, so that a deep tree cannot exhaust Python's stack: a directory is
        # pushed back, marked done, below its subdirectories, and yielded when they all have been.
        stack: list[tuple[PurePosixPath, _Directory, bool]] = [(start, self._get_directory(start), False)]
        while stack:
            dirpath, directory, done = stack.pop()
            dirnames = sorted(name for name, entry in directory.objects.items() if isinstance(entry, _Directory))
            if done:
                filenames = sorted(name for name, entry in directory.objects.items() if isinstance(entry, str))
                yield dirpath, dirnames, filenames
                continue
            stack.append((dirpath, directory, True))
            stack.extend(
                (dirpath / name, directory.objects[name], False)  # type: ignore[misc]
                for name in reversed(dirnames)
            )

    @contextmanager
    def open(self, path: PathLike) -> Iterator[BinaryIO]:
        """Open the file at ``path`` for reading, as a byte stream.

        :raises FileNotFoundError: if there is no file at ``path``.
        :raises IsADirectoryError: if ``path`` is a directory.
        """
        with self._backend.open(self._get_file_key(clean_path(path))) as handle:
            yield handle

    def get_object_content(self, path: PathLike) -> bytes:
        """Return the whole content of the file at ``path``."""
        return self._backend.get_object_content(self._get_file_key(clean_path(path)))

    def copy_tree(self, target: str | os.PathLike[str], path: PathLike | None = None) -> None:
        """Write the subtree at ``path`` into the real folder ``target``, streaming every file.

        Nothing is written outside ``target``: every destination is checked after symlinks in ``target`` are
        resolved, and existing symlinks are never written through.

        :param target: an absolute path; a relative one (even ``'.'``) is refused, so that nothing lands in
            whatever the current working directory happens to be.
        :raises FileNotFoundError: if nothing exists at ``path``.
        :raises NotADirectoryError: if ``path`` is a file, as aiida-core's.
        :raises InvalidPathTypeError: if ``target`` is not absolute (a ``TypeError``, as aiida-core's).
        :raises InvalidPathError: if a destination would fall outside ``target``.
        """
        start = clean_path(path)
        if not isinstance(target, (str, os.PathLike)):
            raise InvalidPathTypeError(f'copy_tree target must be a path, got {type(target).__name__}')
        root = Path(target)
        if not root.is_absolute():
            raise InvalidPathTypeError(f'copy_tree target {os.fspath(target)!r} is not an absolute path')
        self._get_directory(start)
        root.mkdir(parents=True, exist_ok=True)
        root = root.resolve()
        for dirpath, _, filenames in self.walk(start):
            relative = dirpath.relative_to(start)
            # NOTE: walk() gives a directory after its subdirectories: each makes its own folder and parents.
            if relative.parts:
                _safe_destination(root, relative).mkdir(parents=True, exist_ok=True)
            for name in filenames:
                key = self._get_file_key(dirpath / name)
                self._copy_file(key, _safe_destination(root, relative / name))

    def _copy_file(self, key: str, destination: Path) -> None:
        with self._backend.open(key) as source, open(destination, 'wb') as sink:
            shutil.copyfileobj(source, sink, CHUNK_SIZE)

    # -- writing ----------------------------------------------------------------------------------------------

    def create_directory(self, path: PathLike) -> None:
        """Create the directory at ``path`` and its parents; an existing directory is fine.

        :raises NotADirectoryError: if ``path`` or one of its parents is a file.
        :raises InvalidPathTypeError: if ``path`` is ``None`` (a ``TypeError``, as aiida-core's).
        """
        if path is None:
            raise InvalidPathTypeError('create_directory needs the path of a directory, got None')
        self._make_directories(clean_path(path))

    def put_object_from_bytes(self, content: bytes, path: PathLike) -> str:
        """Store ``content`` as the file at ``path`` (replacing a file there) and return its key."""
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f'content must be bytes, got {type(content).__name__}')
        return self.put_object_from_filelike(BytesIO(content), path)

    def put_object_from_filelike(self, handle: BinaryIO, path: PathLike) -> str:
        """Store everything left in the byte stream ``handle`` as the file at ``path`` and return its key.

        :raises TypeError: if ``handle`` is not a readable byte stream.
        :raises IsADirectoryError: if ``path`` is an existing directory.
        """
        parent, name = self._prepare_file(clean_path(path))
        key = self._backend.put_object_from_filelike(handle)
        parent.objects[name] = key
        return key

    def put_object_from_file(self, filepath: str | os.PathLike[str], path: PathLike) -> str:
        """Store the content of the real file ``filepath`` as the file at ``path`` and return its key."""
        parent, name = self._prepare_file(clean_path(path))
        key = self._backend.put_object_from_file(filepath)
        parent.objects[name] = key
        return key

    def put_object_from_tree(self, folder: str | os.PathLike[str], path: PathLike | None = None) -> None:
        """Store every file and directory under the real folder ``folder`` beneath ``path``, in one batch write.

        Symlinks to files are read through; symlinks to directories are refused, so a tree can never loop.

        :raises NotADirectoryError: if ``folder`` is not a directory.
        :raises InvalidPathTypeError: if ``folder`` is not an absolute path (a ``TypeError``, as aiida-core's).
        :raises InvalidPathError: for a symlink to a directory, or a name that is not a valid path part.
        """
        if not isinstance(folder, (str, os.PathLike)) or not Path(folder).is_absolute():
            raise InvalidPathTypeError(f'put_object_from_tree needs the absolute path of a folder, got {folder!r}')
        source = Path(folder)
        if not source.is_dir():
            raise NotADirectoryError(f'{source} is not a directory')
        base = clean_path(path)
        directories: list[PurePosixPath] = [base]
        files: list[tuple[PurePosixPath, Path]] = []
        for dirpath, dirnames, filenames in os.walk(source):
            relative = PurePosixPath(*Path(dirpath).relative_to(source).parts)
            for name in dirnames:
                if (Path(dirpath) / name).is_symlink():
                    raise InvalidPathError(f'refusing to follow the symlink to a directory {Path(dirpath) / name}')
                directories.append(base / relative / clean_path(name))
            files.extend((base / relative / clean_path(name), Path(dirpath) / name) for name in filenames)
        for directory in directories:
            self._make_directories(directory)
        targets = [self._prepare_file(target) for target, _ in files]
        handles = [open(filepath, 'rb') for _, filepath in files]  # closed below, all at once
        try:
            keys = self._backend.put_objects_from_filelikes(handles)
        finally:
            for handle in handles:
                handle.close()
        for (parent, name), key in zip(targets, keys, strict=True):
            parent.objects[name] = key

    def delete_object(self, path: PathLike, hard_delete: bool = False) -> None:
        """Remove the file or empty directory at ``path`` from the tree.

        :param hard_delete: also delete the file's object from the backend. With a content-addressed backend
            that object may be shared with other files; leave it ``False`` and let maintenance reclaim space.
        :raises FileNotFoundError: if nothing exists at ``path``.
        :raises OSError: if ``path`` is a directory that is not empty.
        """
        clean = clean_path(path)
        if clean == PurePosixPath():
            raise InvalidPathError('cannot delete the root of a repository; use erase()')
        parent = self._get_directory(clean.parent)
        entry = self._lookup(clean)
        if isinstance(entry, _Directory) and entry.objects:
            raise OSError(f'directory {str(clean)!r} is not empty')
        del parent.objects[clean.name]
        if hard_delete and isinstance(entry, str):
            self._backend.delete_object(entry)

    def erase(self) -> None:
        """Empty the tree and delete every object it references from the backend."""
        keys = list(set(self.get_file_keys()))
        self._root = _Directory()
        present = [key for key, exists in zip(keys, self._backend.has_objects(keys), strict=True) if exists]
        self._backend.delete_objects(present)

    def reset(self) -> None:
        """Empty the tree without touching the backend."""
        self._root = _Directory()

    def clone(self, source: Repository) -> None:
        """Copy the tree and every file of ``source`` into this repository, streaming through the backend.

        :raises ValueError: if this repository is not empty.
        """
        if not self.is_empty():
            raise ValueError('can only clone into an empty repository')
        serialized = source.serialize()
        if source.backend is self._backend:
            self._root = _deserialize_directory(serialized, PurePosixPath())
            return
        unique = list(dict.fromkeys(source.get_file_keys()))
        mapping: dict[str, str] = {}
        for key, stream in source.backend.iter_object_streams(unique):
            mapping[key] = self._backend.put_object_from_filelike(stream)
        self._root = _deserialize_directory(_rekey(serialized, mapping), PurePosixPath())

    # -- internals --------------------------------------------------------------------------------------------

    def _lookup(self, path: PurePosixPath) -> _Directory | str:
        entry: _Directory | str = self._root
        for depth, part in enumerate(path.parts):
            if not isinstance(entry, _Directory):
                parent = PurePosixPath(*path.parts[:depth])
                raise NotADirectoryError(f'repository path {str(parent)!r} is a file, not a directory')
            if part not in entry.objects:
                raise FileNotFoundError(f'No file or directory {str(path)!r} in the repository')
            entry = entry.objects[part]
        return entry

    def _get_directory(self, path: PurePosixPath) -> _Directory:
        entry = self._lookup(path)
        if not isinstance(entry, _Directory):
            raise NotADirectoryError(f'repository path {str(path)!r} is a file, not a directory')
        return entry

    def _get_file_key(self, path: PurePosixPath) -> str:
        entry = self._lookup(path)
        if isinstance(entry, _Directory):
            raise IsADirectoryError(f'repository path {str(path)!r} is a directory, not a file')
        return entry

    def _make_directories(self, path: PurePosixPath) -> _Directory:
        directory = self._root
        for depth, part in enumerate(path.parts):
            entry = directory.objects.setdefault(part, _Directory())
            if not isinstance(entry, _Directory):
                parent = PurePosixPath(*path.parts[: depth + 1])
                raise NotADirectoryError(f'repository path {str(parent)!r} is a file, not a directory')
            directory = entry
        return directory

    def _prepare_file(self, path: PurePosixPath) -> tuple[_Directory, str]:
        if path == PurePosixPath():
            raise IsADirectoryError('cannot write a file at the root of a repository; give a file name')
        parent = self._make_directories(path.parent)
        if isinstance(parent.objects.get(path.name), _Directory):
            raise IsADirectoryError(f'repository path {str(path)!r} is a directory, not a file')
        return parent, path.name

    @classmethod
    def _iter_entries(
        cls, directory: _Directory, prefix: PurePosixPath
    ) -> Iterator[tuple[PurePosixPath, _Directory | str]]:
        for name, entry in directory.objects.items():
            yield prefix / name, entry
            if isinstance(entry, _Directory):
                yield from cls._iter_entries(entry, prefix / name)


def _collect_keys(directory: _Directory, keys: list[str]) -> None:
    """Append the keys of the files under ``directory`` to ``keys``, in :meth:`Repository._iter_entries` order."""
    for entry in directory.objects.values():
        if isinstance(entry, str):
            keys.append(entry)
        else:
            _collect_keys(entry, keys)


def _collect_files(directory: _Directory, prefix: str, references: list[tuple[str, str]]) -> None:
    """Append ``(path, key)`` of the files under ``directory``, paths built as strings (no ``PurePosixPath`` per
    file: a node may have a hundred thousand)."""
    for name, entry in directory.objects.items():
        if isinstance(entry, str):
            references.append((prefix + name, entry))
        else:
            _collect_files(entry, f'{prefix}{name}/', references)


def _to_file(name: str, entry: _Directory | str) -> File:
    if isinstance(entry, _Directory):
        return File(name, FileType.DIRECTORY, None, entry)
    return File(name, FileType.FILE, entry)


def _serialize_directory(directory: _Directory) -> dict[str, Any]:
    if not directory.objects:
        return {}
    return {
        'o': {
            name: _serialize_directory(entry) if isinstance(entry, _Directory) else {'k': entry}
            for name, entry in directory.objects.items()
        }
    }


def _deserialize_directory(serialized: Mapping[str, Any], where: PurePosixPath) -> _Directory:
    if len(where.parts) > MAX_DEPTH:
        raise ValueError(f'repository metadata is nested deeper than {MAX_DEPTH} folders (at {str(where)[:200]!r}...)')
    if not isinstance(serialized, Mapping):
        raise ValueError(f'repository metadata at {str(where) or "the root"!r} must be an object, got {serialized!r}')
    unknown = set(serialized) - {'o'}
    if unknown:
        raise ValueError(f'repository metadata at {str(where) or "the root"!r} has unknown keys {sorted(unknown)}')
    directory = _Directory()
    children = serialized.get('o', {})
    if not isinstance(children, Mapping):
        raise ValueError(f'repository metadata at {str(where) or "the root"!r}: "o" must be an object')
    for name, child in children.items():
        _single_part(name)
        if isinstance(child, Mapping) and 'k' in child:
            if len(child) != 1 or not isinstance(child['k'], str) or not child['k']:
                raise ValueError(
                    f'repository metadata for file {str(where / name)!r} must be {{"k": "<key>"}}, got {child!r}'
                )
            directory.objects[name] = child['k']
        else:
            directory.objects[name] = _deserialize_directory(child, where / name)
    return directory


def _single_part(name: object) -> str:
    if isinstance(name, str) and name not in ('', '.', '..') and not _NOT_IN_A_NAME.search(name):
        return name  # NOTE: the common case, without making a path: a tree may have a hundred thousand files
    clean = clean_path(name)  # type: ignore[arg-type]
    if len(clean.parts) != 1:
        raise InvalidPathError(f'repository entry name {name!r} must be a single path part')
    return clean.name


def _rekey(serialized: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    if 'k' in serialized:
        return {'k': mapping[serialized['k']]}
    if not serialized:
        return {}
    return {'o': {name: _rekey(child, mapping) for name, child in serialized['o'].items()}}


def _safe_destination(root: Path, relative: PurePosixPath | Path) -> Path:
    """Return ``root / relative`` after checking that, symlinks resolved, it stays inside ``root``."""
    destination = root / relative
    resolved = destination.parent.resolve() / destination.name
    if resolved != root and root not in resolved.parents:
        raise InvalidPathError(f'refusing to write {destination}: it resolves outside the target {root}')
    if destination.is_symlink():
        raise InvalidPathError(f'refusing to write through the existing symlink {destination}')
    return destination
