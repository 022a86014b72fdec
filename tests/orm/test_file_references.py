"""The file references of stored nodes (``EntityStorage.iter_file_references`` / ``iter_referenced_keys``): on
``psql_dos`` and ``sqlite_dos`` rows of their own table, kept in step with ``repository_metadata`` by every write of
nodes (store, batch store, raw rows, text rows, import, update, delete), and always equal to what the nodes' JSON says
(the core's default, which reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provstore.archive.create import create_archive
from provstore.archive.imports import import_archive
from provstore.exceptions import StorageError
from provstore.orm import FolderData, Int, get_default_user, store_nodes
from provstore.orm.delete import delete_nodes
from provstore.storage import EntityStorage, EntityType
from provstore_sqlite_zip.format import SqliteZipFormat


def from_metadata(storage: EntityStorage) -> list[tuple[int, str, str]]:
    """The references as the nodes' ``repository_metadata`` gives them (the core's default implementation)."""
    return list(EntityStorage.iter_file_references(storage))


def assert_in_step(storage: EntityStorage) -> list[tuple[int, str, str]]:
    """Assert the backend's references are the nodes' JSON's, and the keys their distinct keys; return them."""
    references = list(storage.iter_file_references(batch_size=2))
    assert references == from_metadata(storage)
    assert list(storage.iter_referenced_keys(batch_size=2)) == sorted({key for _, _, key in references})
    return references


def node_with_files(storage: EntityStorage, files: dict[str, bytes]) -> Int:
    node = Int(1, storage=storage)
    for path, content in files.items():
        node.base.repository.put_object_from_bytes(content, path)
    return node


def test_store_and_batch_store(storage: EntityStorage) -> None:
    """Nodes stored one by one and in a batch, with nested folders, a content two nodes share, and none at all."""
    single = node_with_files(storage, {'a.txt': b'A', 'sub/deep/b.txt': b'B'}).store()
    batch = [node_with_files(storage, {'same.txt': b'A'}), Int(2, storage=storage), node_with_files(storage, {})]
    store_nodes(batch, storage)
    references = assert_in_step(storage)
    key_a = single.base.repository.get_object('a.txt').key
    assert (single.pk, 'a.txt', key_a) in references
    assert (batch[0].pk, 'same.txt', key_a) in references
    assert {node for node, _, _ in references} == {single.pk, batch[0].pk}
    assert len(references) == 3
    assert len(list(storage.iter_referenced_keys())) == 2


def test_raw_rows_update_and_delete(storage: EntityStorage) -> None:
    """Rows inserted raw and in text form, an update that replaces a tree, and deletions keep the references in
    step; a tree that is not one is refused and nothing is written."""
    user = get_default_user(storage).pk
    first, second = storage.insert_rows(
        EntityType.NODE,
        [
            {'user_id': user, 'node_type': 'data.x.', 'repository_metadata': {'o': {'f': {'k': 'k1'}}}},
            {'user_id': user, 'node_type': 'data.x.', 'repository_metadata': {}},
        ],
    )
    (third,) = storage.insert_text_rows(
        EntityType.NODE,
        [{'user_id': user, 'node_type': 'data.x.', 'repository_metadata': '{"o": {"d": {"o": {"g": {"k": "k2"}}}}}'}],
    )
    assert assert_in_step(storage) == [(first, 'f', 'k1'), (third, 'd/g', 'k2')]
    storage.update_rows(EntityType.NODE, [{'id': first, 'repository_metadata': {'o': {'h': {'k': 'k3'}}}}])
    storage.update_rows(EntityType.NODE, [{'id': second, 'repository_metadata': {'o': {'i': {'k': 'k1'}}}}])
    assert assert_in_step(storage) == [(first, 'h', 'k3'), (second, 'i', 'k1'), (third, 'd/g', 'k2')]
    storage.delete_rows(EntityType.NODE, [first])
    storage.delete_nodes([third])
    assert assert_in_step(storage) == [(second, 'i', 'k1')]
    before = storage.count_rows(EntityType.NODE)
    with pytest.raises(StorageError, match=r'repository_metadata of node .* is not a repository tree'):
        storage.insert_rows(
            EntityType.NODE,
            [
                {'user_id': user, 'node_type': 'data.x.', 'repository_metadata': {'o': {'ok': {'k': 'k4'}}}},
                {'user_id': user, 'node_type': 'data.x.', 'repository_metadata': {'o': {'../up': {'k': 'k5'}}}},
            ],
        )
    assert storage.count_rows(EntityType.NODE) == before
    assert assert_in_step(storage) == [(second, 'i', 'k1')]


def test_import_and_orm_delete(storage: EntityStorage, tmp_path: Path) -> None:
    """An archive exported and imported again (into the same profile after deleting its nodes) brings its
    references back; deleting nodes through the ORM removes theirs."""
    folder = FolderData(storage=storage)
    folder.base.repository.put_object_from_bytes(b'content', 'x/y.dat')
    folder.store()
    other = node_with_files(storage, {'z.txt': b'zz'}).store()
    archive = tmp_path / 'a.aiida'
    create_archive(storage, archive, SqliteZipFormat)
    delete_nodes([folder.pk, other.pk], dry_run=False, storage=storage)
    assert assert_in_step(storage) == []
    import_archive(storage, archive, SqliteZipFormat)
    references = assert_in_step(storage)
    assert sorted(path for _, path, _ in references) == ['x/y.dat', 'z.txt']
