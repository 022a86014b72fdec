"""Storing many nodes at once: links and files together, in one transaction, rows and files in batches."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from orm_helpers import EMAIL, counts, object_count

from provstore.orm import (
    CalcJobNode,
    Data,
    Dict,
    Int,
    LinkType,
    Node,
    StoringNotAllowedError,
    WorkChainNode,
    store_nodes,
)
from provstore.orm.nodes import store as store_module
from provstore.storage import EntityStorage, EntityType


def build_graph(storage: EntityStorage, workflows: int = 2, calculations: int = 3) -> list[Node]:
    """Return the unstored nodes of a small provenance graph (W3 of the benchmark, scaled down), with files."""
    nodes: list[Node] = []
    for w in range(workflows):
        workflow = WorkChainNode(storage=storage)
        nodes.append(workflow)
        for c in range(calculations):
            calculation = CalcJobNode(storage=storage)
            calculation.base.repository.put_object_from_bytes(f'input {w} {c}'.encode(), 'aiida.in')
            for name in ('x', 'y'):
                data = Int(w * 100 + c, storage=storage)
                calculation.base.links.add_incoming(data, LinkType.INPUT_CALC, name)
                nodes.append(data)
            calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, f'step_{c}')
            result = Dict({'sum': w + c}, storage=storage)
            result.base.repository.put_object_from_bytes(f'output {w} {c}'.encode(), 'out.txt')
            result.base.links.add_incoming(calculation, LinkType.CREATE, 'result')
            nodes.extend([calculation, result])
    return nodes


def test_store_nodes_stores_a_graph_with_links_and_files(storage: EntityStorage) -> None:
    """store_nodes stores every node, link and file of a batch, in any order of the nodes."""
    nodes = build_graph(storage)
    stored = store_nodes(reversed(nodes), storage)
    assert len(stored) == len(nodes) == 2 * (1 + 3 * 4)
    assert all(node.is_stored for node in nodes)
    assert counts(storage)['node'] == len(nodes)
    assert counts(storage)['link'] == 2 * 3 * 4
    results = Dict.collection(storage).all()
    assert len(results) == 6
    for result in results:
        (creator,) = result.base.links.get_incoming(link_type=LinkType.CREATE).all_nodes()
        assert isinstance(creator, CalcJobNode)
        w, c = divmod(
            creator.base.links.get_incoming(link_type='input_calc').all_nodes()[0].base.attributes.get('value'), 100
        )
        assert result.get_dict() == {'sum': w + c}
        assert result.base.repository.get_object_content('out.txt') == f'output {w} {c}'
        assert creator.base.repository.get_object_content('aiida.in') == f'input {w} {c}'


def test_store_many_through_the_collection(storage: EntityStorage) -> None:
    """Node.collection(storage).store_many is the same batch path; nodes stored already are left alone."""
    first = Int(1, storage=storage).store()
    pk = first.pk
    nodes = Node.collection(storage).store_many([first, Int(2, storage=storage), Int(3, storage=storage)])
    assert nodes[0] is first and first.pk == pk
    assert all(node.is_stored for node in nodes)
    assert Int.collection(storage).count() == 3


def test_a_failure_inside_the_transaction_writes_no_row(
    storage: EntityStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If inserting the links fails after the node rows went in, the whole batch is rolled back."""
    nodes = build_graph(storage, workflows=1, calculations=2)
    real_insert = storage.insert_rows

    def insert_then_fail_on_links(entity: EntityType, rows: Any) -> list[int]:
        if entity is EntityType.LINK:
            raise RuntimeError('simulated crash while inserting links')
        return real_insert(entity, rows)

    store_nodes([Int(0, storage=storage)], storage)
    before = counts(storage)
    monkeypatch.setattr(storage, 'insert_rows', insert_then_fail_on_links)
    with pytest.raises(RuntimeError, match='simulated crash while inserting links'):
        store_nodes(nodes, storage)
    monkeypatch.undo()
    assert counts(storage) == before
    assert not any(node.is_stored for node in nodes)
    store_nodes(nodes, storage)
    assert counts(storage)['node'] == before['node'] + len(nodes)


def test_rows_and_files_are_written_in_batches(storage: EntityStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Node and link rows go in batches of ROWS_PER_INSERT, files in bulk writes of FILES_PER_WRITE."""
    monkeypatch.setattr(store_module, 'ROWS_PER_INSERT', 5)
    monkeypatch.setattr(store_module, 'FILES_PER_WRITE', 4)
    inserts: list[tuple[str, int]] = []
    writes: list[int] = []
    real_insert = storage.insert_rows
    backend = storage.get_repository()
    real_write = backend.put_objects_from_filelikes

    def counted_insert(entity: EntityType, rows: Any) -> list[int]:
        inserts.append((entity.value, len(rows)))
        return real_insert(entity, rows)

    def counted_write(handles: Any) -> list[str]:
        handles = list(handles)
        writes.append(len(handles))
        return real_write(handles)

    nodes = build_graph(storage, workflows=1, calculations=3)
    Int(0, storage=storage).store()  # the default user exists before counting
    inserts.clear()
    monkeypatch.setattr(storage, 'insert_rows', counted_insert)
    monkeypatch.setattr(backend, 'put_objects_from_filelikes', counted_write)
    store_nodes(nodes, storage)
    assert inserts == [('node', 5), ('node', 5), ('node', 3), ('link', 5), ('link', 5), ('link', 2)]
    assert writes == [4, 2]


def test_duplicate_and_stored_uuids_are_refused(storage: EntityStorage) -> None:
    """Two nodes with one uuid, or a uuid stored already, are refused before anything is written."""
    stored = Int(1, storage=storage).store()
    before, objects = counts(storage), object_count(storage)
    node_uuid = str(uuid.uuid4())
    twins = [Node.from_row({'uuid': node_uuid, 'node_type': 'data.core.int.Int.'}) for _ in range(2)]
    with pytest.raises(StoringNotAllowedError, match=f'two nodes to store have the same uuid {node_uuid}'):
        store_nodes(twins, storage)
    again = Node.from_row({'uuid': stored.uuid, 'node_type': 'data.core.int.Int.'})
    again.base.repository.put_object_from_bytes(b'never written', 'f.txt')
    with pytest.raises(StoringNotAllowedError, match=f'a node with uuid {stored.uuid} is stored already'):
        store_nodes([Int(2), again], storage)
    assert counts(storage) == before and object_count(storage) == objects


def test_nodes_made_for_another_storage_are_refused(storage: EntityStorage) -> None:
    """A batch never mixes storages: nodes made for another storage are refused, nothing is written."""
    from provstore.cli.profile import create_profile
    from provstore.manager import Manager

    create_profile('other', 'sqlite_dos', {}, email=EMAIL)
    other_manager = Manager()
    other_manager.load_profile('other')
    other = other_manager.get_profile_storage()
    assert isinstance(other, EntityStorage)
    with pytest.raises(StoringNotAllowedError, match='was made for another storage than the one given'):
        store_nodes([Int(1, storage=other)], storage)
    with pytest.raises(StoringNotAllowedError, match='the nodes were made for different storages'):
        store_nodes([Int(1, storage=other), Int(2, storage=storage)])
    stored_elsewhere = Data(storage=other).store()
    target = CalcJobNode(storage=storage)
    target.base.links.add_incoming(stored_elsewhere, LinkType.INPUT_CALC, 'x')
    with pytest.raises(StoringNotAllowedError, match='which is stored in another storage'):
        target.store()
    assert counts(storage)['node'] == 0
    other_manager.unload_profile()


@pytest.mark.parametrize('storage', ['sqlite_dos', 'psql_dos'], indirect=True)
def test_the_default_storage_is_the_loaded_profiles(storage: EntityStorage) -> None:
    """Nodes made without storage= go to the storage of the profile the manager loaded."""
    node = Int(7).store()
    assert node.storage is storage
    assert Int.collection.get(pk=node.pk).value == 7
    assert Node.collection.count() == 1
