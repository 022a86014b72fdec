"""Live maintenance deletes unreferenced objects, and never one a writer is about to refer to (the object guard of
:mod:`provstore.storage.objectguard`), on both backends, with real writer processes.

The deterministic tests hold a writer between its objects and its commit while maintenance runs: with the protocol
the object survives, without it (a test-only switch) it is lost, which shows the tests can fail. The race test lets
writers and repeated maintenance run freely and checks nothing is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from orm_helpers import open_storage

from provstore.orm import Int
from provstore.orm.delete import delete_nodes
from provstore.orm.integrity import check_integrity
from provstore.storage import EntityStorage, collect

HELD_WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from provstore.manager import get_manager
    from provstore.orm import Int

    profile, content = sys.argv[1], sys.argv[2].encode()
    written, go = pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
    storage = get_manager().load_profile(profile) and get_manager().get_profile_storage()
    with storage.transaction():
        node = Int(1)
        node.base.repository.put_object_from_bytes(content, 'f.txt')
        node.store()
        written.touch()
        while not go.exists():
            time.sleep(0.01)
    print(node.pk)
    """
)

RACING_WRITER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from provstore.manager import get_manager
    from provstore.orm import Int, store_nodes

    profile, worker, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    storage = get_manager().load_profile(profile) and get_manager().get_profile_storage()
    stored, end, round = [], time.monotonic() + seconds, 0
    while time.monotonic() < end:
        round += 1
        with storage.transaction():
            nodes = []
            for i in range(3):
                node = Int(i)
                node.base.repository.put_object_from_bytes(f'w{worker} r{round} n{i}'.encode(), 'own.txt')
                node.base.repository.put_object_from_bytes(f'orphan {round % 7}'.encode(), 'reused.txt')
                nodes.append(node)
            store_nodes(nodes)
            time.sleep(0.005)
        stored.extend(node.pk for node in nodes)
    print(json.dumps(stored))
    """
)


def _orphan(storage: EntityStorage, content: bytes) -> str:
    """Store a node with ``content`` as its file, delete the node: return the key of the now unreferenced object."""
    node = Int(0, storage=storage)
    node.base.repository.put_object_from_bytes(content, 'f.txt')
    node.store()
    key = node.base.repository.get_object('f.txt').key
    assert key is not None
    delete_nodes([node.pk], dry_run=False, storage=storage)
    return key


@pytest.mark.parametrize('protocol', [True, False], ids=['guarded', 'unguarded'])
@pytest.mark.parametrize('reused', [False, True], ids=['new-object', 'orphan-reused'])
def test_maintenance_while_a_writer_holds_its_objects(
    profile_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: bool, reused: bool
) -> None:
    """A writer has written its object (or found it stored, unreferenced: an orphan) and not committed yet when
    live maintenance runs. Guarded, maintenance keeps it (and says writers were busy); unguarded, it deletes it and
    the writer commits a node whose file is gone."""
    storage = open_storage(profile_name)
    content = 'the content the writer stores'
    if reused:
        _orphan(storage, content.encode())
    monkeypatch.setattr(collect, 'PROTOCOL', protocol)
    monkeypatch.setattr(collect, 'GUARD_TIMEOUT', 0.5)
    written, go = tmp_path / 'written', tmp_path / 'go'
    writer = subprocess.Popen(
        [sys.executable, '-c', HELD_WRITER, profile_name, content, str(written), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not written.exists():
            assert writer.poll() is None, writer.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        report = storage.maintain(full=False)
        go.touch()
        out, err = writer.communicate(timeout=60)
    finally:
        go.touch()
        writer.kill()
    assert writer.returncode == 0, err
    pk = int(out)
    unreferenced = report.details['unreferenced']
    assert unreferenced['found'] == 1
    checks = {check.name: check for check in check_integrity(storage, hashes=False)}
    if protocol:
        assert unreferenced['kept_busy'] and unreferenced['deleted'] == 0
        assert not checks['objects'].problems
        assert storage.maintain(full=False).details['unreferenced']['found'] == 0
    else:
        assert unreferenced['deleted'] == 1
        assert checks['objects'].problems == 1
        assert f'of node {pk} ' in checks['objects'].examples[0]


def test_writers_race_repeated_live_maintenance(profile_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writer processes store nodes (new files, and files whose content was an orphan) for a few seconds while
    live maintenance runs again and again: every node they stored has its files afterwards, integrity is clean,
    and maintenance did delete orphans meanwhile."""
    storage = open_storage(profile_name)
    for index in range(7):
        _orphan(storage, f'orphan {index}'.encode())
    for index in range(5):
        _orphan(storage, f'never reused {index}'.encode())
    monkeypatch.setattr(collect, 'GUARD_TIMEOUT', 0.2)
    writers = [
        subprocess.Popen(
            [sys.executable, '-c', RACING_WRITER, profile_name, str(worker), '4'],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(2)
    ]
    deleted = passes = 0
    try:
        while any(writer.poll() is None for writer in writers):
            deleted += storage.maintain(full=False).details['unreferenced']['deleted']
            passes += 1
        results = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    assert all(writer.returncode == 0 for writer in writers), [err for _, err in results]
    stored = [pk for out, _ in results for pk in json.loads(out)]
    assert passes >= 2 and deleted >= 5
    assert len(stored) >= 6
    checks = {check.name: check for check in check_integrity(storage, hashes=True)}
    assert not [check.name for check in checks.values() if check.failed], checks
    referenced_by = {node for node, _, _ in storage.iter_file_references()}
    assert set(stored) <= referenced_by


def test_cli_maintain_asks_before_full_and_deletes_orphans(profile_name: str) -> None:
    """``storage maintain``: a dry run counts the unreferenced objects and their bytes and deletes nothing; live
    maintenance deletes them; --full asks first (no answer: nothing done, exit 1) unless --yes; --compress is
    accepted."""
    from cli_helpers import invoke, ok

    storage = open_storage(profile_name)
    key = _orphan(storage, b'an orphan of twenty bytes'[:20])
    dry = json.loads(ok('storage', 'maintain', '--dry-run', '--json').stdout)
    assert dry['details']['unreferenced'] == {'found': 1, 'deleted': 1, 'deleted_bytes': 20, 'kept_busy': False}
    assert 'would delete 1 unreferenced objects (20 bytes) [repository]' in ok('storage', 'maintain', '-n').stdout
    assert storage.get_repository().has_objects([key]) == [True]
    refused = invoke('storage', 'maintain', '--full', input='n\n')
    assert refused.exit_code == 1
    assert storage.get_repository().has_objects([key]) == [True]
    assert 'delete 1 unreferenced objects (20 bytes) [repository]' in ok('storage', 'maintain', '--compress').stdout
    assert storage.get_repository().has_objects([key]) == [False]
    storage.close()  # type: ignore[attr-defined]
    assert 'nothing unreferenced to delete' in ok('storage', 'maintain', '--full', '--yes', '--compress').stdout
