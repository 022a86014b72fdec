"""The sandbox of an unstored node: small files in memory within a process-wide budget, the others in a folder."""

from __future__ import annotations

import gc
import io
import os

import pytest

from provstore.orm.nodes import sandbox as sandbox_module
from provstore.orm.nodes.sandbox import BUDGET, MEMORY_OBJECT_SIZE, NodeSandbox


def test_small_objects_stay_in_memory() -> None:
    """Objects up to MEMORY_OBJECT_SIZE make no folder; they read back whole and count against the budget."""
    gc.collect()  # NOTE: sandboxes other tests dropped give their memory back now, not during this test
    before = BUDGET.used
    sandbox = NodeSandbox()
    small = sandbox.put_object_from_filelike(io.BytesIO(b'small'))
    limit = sandbox.put_object_from_filelike(io.BytesIO(b'x' * MEMORY_OBJECT_SIZE))
    assert sandbox.disk is None
    assert sandbox.get_object_content(small) == b'small'
    assert sandbox.has_objects([small, limit, 'f' * 32]) == [True, True, False]
    assert sorted(sandbox.list_objects()) == sorted([small, limit])
    assert sandbox.get_info(detailed=True)['memory_bytes'] == 5 + MEMORY_OBJECT_SIZE
    assert BUDGET.used == before + 5 + MEMORY_OBJECT_SIZE
    sandbox.delete_object(small)
    assert BUDGET.used == before + MEMORY_OBJECT_SIZE
    sandbox.erase()
    assert BUDGET.used == before
    assert not sandbox.is_initialised


def test_large_objects_go_to_a_folder_removed_on_erase() -> None:
    """An object above MEMORY_OBJECT_SIZE is streamed into a sandbox folder, whole; erase removes the folder."""
    sandbox = NodeSandbox()
    content = os.urandom(MEMORY_OBJECT_SIZE + 10)
    key = sandbox.put_object_from_filelike(io.BytesIO(content))
    disk = sandbox.disk
    assert disk is not None and disk.name == 'sandbox'
    folder = disk.filepath  # type: ignore[attr-defined]
    assert os.listdir(folder) == [key]
    with sandbox.open(key) as handle:
        assert handle.read() == content
    assert sandbox.get_info()['objects'] == 1
    sandbox.erase()
    assert not os.path.exists(folder)
    with pytest.raises(FileNotFoundError, match=f'No object with key {key}'):
        sandbox.get_object_content(key)


def test_budget_full_sends_objects_to_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the objects in memory of all sandboxes reach MEMORY_BUDGET, further small objects go to the folder."""
    gc.collect()
    monkeypatch.setattr(sandbox_module, 'MEMORY_BUDGET', BUDGET.used + 10)
    first, second = NodeSandbox(), NodeSandbox()
    kept = first.put_object_from_filelike(io.BytesIO(b'0123456789'))
    spilled = second.put_object_from_filelike(io.BytesIO(b'one more'))
    assert first.disk is None
    assert second.disk is not None and second.disk.has_object(spilled)
    assert second.get_object_content(spilled) == b'one more'
    first.delete_object(kept)
    again = second.put_object_from_filelike(io.BytesIO(b'fits now'))
    assert not second.disk.has_object(again)
    assert second.get_object_content(again) == b'fits now'


def test_collected_sandbox_gives_its_memory_back() -> None:
    """A sandbox dropped without erase (a node never stored) gives its memory back when it is collected."""
    gc.collect()
    before = BUDGET.used
    sandbox = NodeSandbox()
    sandbox.put_object_from_filelike(io.BytesIO(b'forgotten' * 100))
    assert BUDGET.used == before + 900
    del sandbox
    gc.collect()
    assert BUDGET.used == before


def test_short_reads_are_read_to_the_end() -> None:
    """A raw stream that returns a few bytes per read is read whole, in memory or on disk."""

    class Trickle(io.RawIOBase):
        def __init__(self, content: bytes) -> None:
            super().__init__()
            self.content = content

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk, self.content = self.content[:3], self.content[3:]
            buffer[: len(chunk)] = chunk
            return len(chunk)

    sandbox = NodeSandbox()
    small = sandbox.put_object_from_filelike(Trickle(b'abcdefghij'))  # type: ignore[arg-type]
    assert sandbox.disk is None and sandbox.get_object_content(small) == b'abcdefghij'
    big = os.urandom(MEMORY_OBJECT_SIZE + 5)
    large = sandbox.put_object_from_filelike(Trickle(big))  # type: ignore[arg-type]
    assert sandbox.disk is not None and sandbox.get_object_content(large) == big
    sandbox.erase()
