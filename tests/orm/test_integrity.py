"""``provstore storage integrity`` (:func:`provstore.orm.integrity.check_integrity`) on both backends: an untouched
profile is clean (exit 0); each damage inflicted on purpose is found by its check, with an example naming it, and
the command exits 1."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke, ok
from sqlalchemy import text

from provstore.orm import Group, Int, LinkType, WorkChainNode, store_nodes
from provstore.orm.integrity import check_integrity
from provstore.storage import EntityStorage, EntityType
from provstore.testing.archive_graph import Graph


@pytest.fixture
def files(storage: EntityStorage, graph: Graph) -> list[Int]:
    """Three nodes with a file each (beside the archive graph), stored."""
    nodes = []
    for index in range(3):
        node = Int(index, storage=storage)
        node.base.repository.put_object_from_bytes(f'content of file {index}'.encode() * 50, f'dir/f{index}.txt')
        nodes.append(node)
    store_nodes(nodes, storage)
    return nodes


def run_integrity(*options: str) -> tuple[int, dict[str, Any]]:
    """Run the command with --json; return its exit code and the checks by name."""
    result = invoke('storage', 'integrity', '--json', *options)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report['clean'] == (result.exit_code == 0)
    return result.exit_code, {check['name']: check for check in report['checks']}


def failed(checks: dict[str, Any]) -> set[str]:
    return {name for name, check in checks.items() if check['problems'] and not check['informational']}


def key_of(node: Int) -> str:
    key = node.base.repository.get_object(f'dir/f{node.value}.txt').key
    assert key is not None
    return key


def execute(storage: EntityStorage, statement: str) -> None:
    """Run ``statement`` on the profile's database with foreign keys not enforced (to inflict what they forbid)."""
    if storage.profile.storage_backend == 'sqlite_dos':  # type: ignore[attr-defined]
        connection = sqlite3.connect(storage.database_file(storage.profile))  # type: ignore[attr-defined]
        try:
            connection.execute(statement)  # NOTE: a plain sqlite3 connection does not enforce foreign keys
            connection.commit()
        finally:
            connection.close()
        return
    with storage.connection(write=True) as connection:  # type: ignore[attr-defined]
        connection.execute(text('SET LOCAL session_replication_role = replica'))  # NOTE: no foreign key triggers
        connection.execute(text(statement))


def test_untouched_profile_is_clean(storage: EntityStorage, files: list[Int]) -> None:
    """Every check runs and finds nothing; the text form says clean and lists the checks."""
    code, checks = run_integrity()
    assert code == 0
    assert set(checks) == {'links', 'references', 'objects', 'hashes', 'unreferenced', 'file_references'}
    assert checks['objects']['checked'] >= 3
    assert checks['hashes']['checked'] == checks['objects']['checked']
    assert checks['links']['checked'] == storage.count_rows(EntityType.LINK) > 0
    assert not failed(checks)
    output = ok('storage', 'integrity').output
    assert output.strip().splitlines()[-1] == 'clean'
    _, fast = run_integrity('--no-hash')
    assert fast['hashes']['skipped'] and fast['hashes']['checked'] == 0


def test_deleted_object(storage: EntityStorage, files: list[Int]) -> None:
    """An object deleted from the repository: the objects check names it, its node and its file; --no-hash too."""
    key = key_of(files[1])
    storage.get_repository().delete_objects([key])
    code, checks = run_integrity('--no-hash')
    assert code == 1
    assert failed(checks) == {'objects'}
    assert checks['objects']['examples'] == [f"object {key} of node {files[1].pk} (file 'dir/f1.txt') is missing"]


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_loose_and_packed_objects(storage: EntityStorage, files: list[Int]) -> None:
    """A byte flipped in a loose object, then (after packing) in a pack: the hashes check names the object; the
    existence-only pass sees nothing wrong."""
    repository = storage.get_repository()
    container = Path(repository.filepath)  # type: ignore[attr-defined]
    key = repository.put_object_from_filelike(io.BytesIO(b'a loose object' * 100))  # NOTE: one object goes loose
    storage.insert_rows(
        EntityType.NODE,
        [{'user_id': files[0].user.pk, 'node_type': 'data.x.', 'repository_metadata': {'o': {'l.txt': {'k': key}}}}],
    )
    loose = container / 'loose' / key[:2] / key[2:]
    assert loose.is_file()
    _flip_byte(loose, 3)
    code, checks = run_integrity()
    assert code == 1
    assert failed(checks) == {'hashes'}
    assert checks['hashes']['examples'][0].startswith(f'object {key} hashes to ')
    _flip_byte(loose, 3)  # NOTE: whole again, then packed
    repository.maintain(live=False)
    assert not loose.exists()
    assert run_integrity()[0] == 0
    packs = sorted((container / 'packs').iterdir())
    _flip_byte(packs[0], packs[0].stat().st_size // 2)
    code, checks = run_integrity()
    assert code == 1
    assert failed(checks) == {'hashes'}
    assert run_integrity('--no-hash')[0] == 0


def test_link_breaking_a_rule(storage: EntityStorage, files: list[Int]) -> None:
    """A create link between two data nodes, and a second call link into a workflow: the links check names both."""
    workflow, caller, other = (
        WorkChainNode(storage=storage),
        WorkChainNode(storage=storage),
        WorkChainNode(storage=storage),
    )
    for node in (workflow, caller, other):
        node.seal()
    store_nodes([workflow, caller, other], storage)
    storage.insert_rows(
        EntityType.LINK,
        [
            {'input_id': files[0].pk, 'output_id': files[1].pk, 'type': LinkType.CREATE.value, 'label': 'result'},
            {'input_id': caller.pk, 'output_id': workflow.pk, 'type': LinkType.CALL_WORK.value, 'label': 'CALL'},
            {'input_id': other.pk, 'output_id': workflow.pk, 'type': LinkType.CALL_WORK.value, 'label': 'CALL'},
        ],
    )
    code, checks = run_integrity('--no-hash')
    assert code == 1
    assert failed(checks) == {'links'}
    examples = checks['links']['examples']
    assert any(
        f'({files[0].pk} -[create:result]-> {files[1].pk}): the source must be a calculation' in e for e in examples
    )
    assert f'node {workflow.pk} has 2 incoming call_work links where one is allowed' in examples


def test_dangling_group_member(storage: EntityStorage, files: list[Int]) -> None:
    """A membership of a node that does not exist (written with foreign keys off): the references check names it."""
    group = Group('g', storage=storage).store()
    group.add_nodes([files[0]])
    execute(storage, f'INSERT INTO db_dbgroup_dbnodes (dbgroup_id, dbnode_id) VALUES ({group.pk}, 999999)')
    code, checks = run_integrity('--no-hash')
    assert code == 1
    assert failed(checks) == {'references'}
    assert checks['references']['examples'] == [f'group {group.pk} holds node 999999, which does not exist']


def test_file_reference_out_of_step(storage: EntityStorage, files: list[Int]) -> None:
    """A row of the file-reference table changed, and one removed: the file_references check names both."""
    execute(storage, f"UPDATE provstore_node_file SET key = 'abc' WHERE node_id = {files[0].pk}")
    execute(storage, f'DELETE FROM provstore_node_file WHERE node_id = {files[2].pk}')
    checks = {check.name: check for check in check_integrity(storage, hashes=False)}
    # NOTE: the object check reads the table, so it misses the object 'abc' the changed row names
    assert {name for name, check in checks.items() if check.failed} == {'file_references', 'objects'}
    assert checks['file_references'].examples == [
        f"node {files[0].pk} file 'dir/f0.txt': the table says abc, the metadata {key_of(files[0])}",
        f"node {files[2].pk}: files ['dir/f2.txt'] in the metadata, none in the table",
    ]
    assert run_integrity('--no-hash')[0] == 1


def test_unreferenced_objects_are_reported_not_failed(storage: EntityStorage, files: list[Int]) -> None:
    """An object no node refers to is listed under unreferenced; the profile is still clean (exit 0)."""
    (orphan,) = storage.get_repository().put_objects_from_filelikes([io.BytesIO(b'orphan bytes')])
    code, checks = run_integrity('--no-hash')
    assert code == 0
    assert checks['unreferenced']['examples'] == [f'object {orphan}']
    assert checks['unreferenced']['problems'] == 1
