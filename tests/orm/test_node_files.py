"""Files of nodes: kept in a sandbox while unstored, written in bulk into the profile's repository when stored."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from orm_helpers import object_count

from provstore.orm import Data, FolderData, ModificationNotAllowedError, Node, SinglefileData, store_nodes
from provstore.repository import FileType
from provstore.storage import EntityStorage


def reload(node: Node) -> Node:
    """Return a fresh object of the stored ``node``, read from its storage."""
    return Node.collection(node.storage).get(pk=node.pk)


@pytest.fixture
def count_bulk_writes(storage: EntityStorage, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the bulk writes into the storage's repository (the real method runs); return the counter."""
    backend = storage.get_repository()
    real = backend.put_objects_from_filelikes
    calls: list[int] = []

    def counted(handles: Any) -> list[str]:
        handles = list(handles)
        calls.append(len(handles))
        return real(handles)

    monkeypatch.setattr(backend, 'put_objects_from_filelikes', counted)
    monkeypatch.setattr(backend, 'put_object_from_filelike', _refuse)
    return lambda: len(calls)


def _refuse(*args: Any) -> str:
    raise AssertionError('files of nodes must be written in bulk, not one by one')


def test_unstored_files_live_in_a_sandbox(storage: EntityStorage) -> None:
    """Files of an unstored node go to a sandbox backend of its own, not into the profile's repository."""
    node = Data(storage=storage)
    node.base.repository.put_object_from_bytes(b'content', 'folder/file.bin')
    repository = node._get_repository_or_none()
    assert repository is not None and repository.backend.name == 'sandbox'
    assert repository.backend is not storage.get_repository()
    assert node.base.repository.get_object_content('folder/file.bin', 'rb') == b'content'
    assert node.base.repository.list_object_names() == ['folder']
    assert object_count(storage) == 0


def test_storing_writes_all_files_in_one_bulk_write(
    storage: EntityStorage, count_bulk_writes: Callable[[], int]
) -> None:
    """Storing a node puts all its files into the profile's repository in one call and saves the tree."""
    node = Data(storage=storage)
    for index in range(5):
        node.base.repository.put_object_from_bytes(f'file {index}'.encode(), f'sub/file{index}.txt')
    node.base.repository.create_directory('empty')
    sandbox = node._sandbox
    assert sandbox is not None
    node.store()
    assert count_bulk_writes() == 1
    assert not sandbox.is_initialised
    loaded = reload(node)
    assert loaded.base.repository.list_object_names() == ['empty', 'sub']
    assert loaded.base.repository.list_object_names('sub') == [f'file{index}.txt' for index in range(5)]
    assert loaded.base.repository.get_object_content('sub/file3.txt') == 'file 3'
    assert loaded.base.repository.get_object('empty').file_type is FileType.DIRECTORY
    metadata = loaded.base.repository.metadata
    keys = [entry['k'] for entry in metadata['o']['sub']['o'].values()]
    assert storage.get_repository().has_objects(keys) == [True] * 5


def test_many_nodes_share_one_bulk_write(storage: EntityStorage, count_bulk_writes: Callable[[], int]) -> None:
    """store_nodes writes the files of every node of the batch in one bulk write."""
    nodes = []
    for index in range(4):
        node = Data(storage=storage)
        node.base.repository.put_object_from_bytes(b'shared', 'same.txt')
        node.base.repository.put_object_from_bytes(f'own {index}'.encode(), 'own.txt')
        nodes.append(node)
    store_nodes(nodes, storage)
    assert count_bulk_writes() == 1
    assert [reload(node).base.repository.get_object_content('own.txt') for node in nodes] == [
        f'own {index}' for index in range(4)
    ]


def test_files_are_immutable_once_stored(storage: EntityStorage) -> None:
    """Every write to the files of a stored node raises, and the files stay as they were."""
    node = Data(storage=storage)
    node.base.repository.put_object_from_bytes(b'x', 'a.txt')
    node.store()
    before = object_count(storage)
    repository = node.base.repository
    writes = [
        lambda: repository.put_object_from_bytes(b'y', 'b.txt'),
        lambda: repository.put_object_from_filelike(io.BytesIO(b'y'), 'a.txt'),
        lambda: repository.create_directory('dir'),
        lambda: repository.delete_object('a.txt'),
        repository.erase,
    ]
    for write in writes:
        with pytest.raises(ModificationNotAllowedError, match='the files of a stored node are immutable'):
            write()
    assert reload(node).base.repository.list_object_names() == ['a.txt']
    assert object_count(storage) == before


def test_singlefile_data(storage: EntityStorage, tmp_path: Path) -> None:
    """SinglefileData keeps one file named by attribute ``filename``, from a path or a stream."""
    path = tmp_path / 'input.txt'
    path.write_text('from a path')
    from_path = SinglefileData(path, storage=storage).store()
    from_stream = SinglefileData(io.BytesIO(b'\x00binary'), filename='data.bin', storage=storage).store()
    from_text = SinglefileData(io.StringIO('text stream'), storage=storage).store()
    loaded = reload(from_path)
    assert isinstance(loaded, SinglefileData)
    assert loaded.filename == 'input.txt' and loaded.get_content() == 'from a path'
    assert loaded.base.attributes.all == {'filename': 'input.txt'}
    streamed = reload(from_stream)
    assert isinstance(streamed, SinglefileData)
    assert streamed.get_content('rb') == b'\x00binary'
    with streamed.open('rb') as handle:
        assert handle.read() == b'\x00binary'
    text = reload(from_text)
    assert isinstance(text, SinglefileData)
    assert (text.filename, text.get_content()) == ('file.txt', 'text stream')
    with pytest.raises(ValueError, match='must be a single path part'):
        SinglefileData(io.BytesIO(b''), filename='a/b')


def test_folder_data(storage: EntityStorage, tmp_path: Path) -> None:
    """FolderData copies a real folder tree, empty directories included, and writes it back out."""
    source = tmp_path / 'tree'
    (source / 'a' / 'b').mkdir(parents=True)
    (source / 'empty').mkdir()
    (source / 'top.txt').write_text('top')
    (source / 'a' / 'b' / 'deep.txt').write_text('deep')
    node = FolderData(source, storage=storage).store()
    loaded = reload(node)
    assert isinstance(loaded, FolderData)
    assert loaded.list_object_names() == ['a', 'empty', 'top.txt']
    assert loaded.get_object_content('a/b/deep.txt') == 'deep'
    target = tmp_path / 'out'
    loaded.base.repository.copy_tree(target)
    assert sorted(str(path.relative_to(target)) for path in target.rglob('*')) == [
        'a',
        os.path.join('a', 'b'),
        os.path.join('a', 'b', 'deep.txt'),
        'empty',
        'top.txt',
    ]
    with loaded.base.repository.open('top.txt') as handle:
        assert handle.read() == 'top'


def test_clone_copies_files_into_a_new_sandbox(storage: EntityStorage) -> None:
    """Cloning a stored data node copies its files into a sandbox; the clone stores them again."""
    node = Data(storage=storage)
    node.base.repository.put_object_from_bytes(b'payload', 'p.bin')
    node.base.attributes.set('a', 1)
    node.store()
    clone = node.clone()
    assert not clone.is_stored and clone.uuid != node.uuid
    clone.base.repository.put_object_from_bytes(b'more', 'q.bin')
    clone.store()
    loaded = reload(clone)
    assert loaded.base.repository.list_object_names() == ['p.bin', 'q.bin']
    assert loaded.base.attributes.all == {'a': 1}
    assert reload(node).base.repository.list_object_names() == ['p.bin']


def test_a_node_without_files_reads_as_empty(storage: EntityStorage) -> None:
    """A node that never had a file has an empty tree, stored as ``{}``."""
    node = Data(storage=storage)
    assert node.base.repository.is_empty() and node.base.repository.list_objects() == []
    node.store()
    assert reload(node).base.repository.metadata == {}
    with pytest.raises(FileNotFoundError, match="No file or directory 'x'"):
        reload(node).base.repository.get_object_content('x')


def test_a_node_with_many_files_is_one_bulk_write(storage: EntityStorage, count_bulk_writes: Callable[[], int]) -> None:
    """Even with more files than a process may keep open, a node's files go into one bulk write."""
    node = Data(storage=storage)
    for index in range(600):
        node.base.repository.put_object_from_bytes(f'{index}'.encode() * 10, f'd{index % 7}/f{index}')
    node.store()
    assert count_bulk_writes() == 1
    loaded = reload(node)
    assert loaded.base.repository.get_object_content('d4/f599') == '599' * 10
    assert sum(len(files) for _, _, files in loaded.base.repository.walk()) == 600


def test_lazy_streams_hold_their_object_open_only_while_read(tmp_path: Path) -> None:
    """The streams of a bulk write open their object at the first read, close it at its end, reopen after a seek."""
    from provstore.orm.nodes.repository import make_sandbox
    from provstore.orm.nodes.store import _LazyStream

    backend = make_sandbox()
    key = backend.put_object_from_filelike(io.BytesIO(b'0123456789'))
    opened: list[str] = []
    real_open = backend.open

    def counted_open(name: str) -> Any:
        opened.append(name)
        return real_open(name)

    backend.open = counted_open  # type: ignore[method-assign]
    with _LazyStream(backend, key) as stream:
        assert opened == [] and stream.readable() and stream.seekable()
        assert stream.read(4) == b'0123' and stream.tell() == 4
        assert stream.read() == b'456789'
        assert stream._handle is None
        assert stream.seek(2) == 2 and stream.read(3) == b'234'
        assert stream.seek(1, io.SEEK_CUR) == 6 and stream.read() == b'6789'
        with pytest.raises(ValueError, match='negative seek position'):
            stream.seek(-1)
    assert opened == [key, key, key]
    backend.erase()
