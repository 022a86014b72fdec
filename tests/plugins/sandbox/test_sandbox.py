"""Tests of the ``sandbox`` repository backend: the shared contract and what only a sandbox does."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from provstore.repository import MaintenanceReport
from provstore.testing import RepositoryBackendContract
from provstore_sandbox.backend import SandboxRepositoryBackend


class TestSandboxContract(RepositoryBackendContract):
    """The sandbox passes the repository backend contract."""

    backend_class = SandboxRepositoryBackend

    @pytest.fixture
    def backend_options(self, tmp_path: Path) -> dict[str, Any]:
        """A sandbox in a folder that does not exist yet."""
        return {'filepath': str(tmp_path / 'sandbox')}


@pytest.fixture
def sandbox(tmp_path: Path) -> SandboxRepositoryBackend:
    """An initialised sandbox in ``tmp_path / 'sandbox'``."""
    backend = SandboxRepositoryBackend(str(tmp_path / 'sandbox'))
    backend.initialise()
    return backend


class _FailingStream(io.RawIOBase):
    """A byte stream that produces some bytes and then raises OSError."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if getattr(self, 'done', False):
            raise OSError('the source disappeared')
        self.done = True
        memoryview(buffer)[:4] = b'part'
        return 4


class _SpyingStream(io.RawIOBase):
    """A byte stream that, half-way through, records what a reader of the sandbox sees."""

    def __init__(self, sandbox: SandboxRepositoryBackend) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.chunks = [b'first half', b'second half']
        self.seen: list[tuple[list[str], Any]] = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.chunks:
            return 0
        if len(self.chunks) == 1:
            self.seen.append((list(self.sandbox.list_objects()), self.sandbox.get_info()['objects']))
        chunk = self.chunks.pop(0)
        memoryview(buffer)[: len(chunk)] = chunk
        return len(chunk)


def test_identity() -> None:
    """The backend is named ``sandbox``, has no uuid and makes uuid4 keys."""
    backend = SandboxRepositoryBackend()
    assert SandboxRepositoryBackend.name == 'sandbox'
    assert backend.uuid is None
    assert backend.key_format == 'uuid4'
    assert SandboxRepositoryBackend.__doc__
    assert SandboxRepositoryBackend.__doc__.splitlines()[0] == (
        'A throw-away folder of objects with random keys, for nodes not stored yet.'
    )
    assert repr(backend) == f'SandboxRepositoryBackend({backend.filepath!r})'


def test_entry_point_and_hook() -> None:
    """The distribution declares the ``sandbox`` entry point, whose hook returns the backend class."""
    (entry_point,) = [ep for ep in entry_points(group='provstore') if ep.name == 'sandbox']
    assert entry_point.value == 'provstore_sandbox.hooks'
    hooks = entry_point.load()
    assert hooks.register_repository_backends() == [SandboxRepositoryBackend]


def test_hook_module_imports_backend_lazily() -> None:
    """Importing the hook module does not import the backend module."""
    code = (
        'import sys, provstore_sandbox.hooks\n'
        'assert "provstore_sandbox.backend" not in sys.modules, "backend imported eagerly"\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_owned_folder_is_a_fresh_initialised_folder() -> None:
    """Without a filepath the sandbox owns a new, empty temporary folder, ready to use."""
    first, second = SandboxRepositoryBackend(), SandboxRepositoryBackend()
    assert first.filepath != second.filepath
    assert first.is_initialised
    assert os.listdir(first.filepath) == []
    key = first.put_object_from_filelike(io.BytesIO(b'owned'))
    assert first.get_object_content(key) == b'owned'
    assert not second.has_object(key)


def test_owned_folder_removed_when_collected() -> None:
    """The temporary folder of a sandbox without filepath disappears when the instance is garbage-collected."""
    backend = SandboxRepositoryBackend()
    backend.put_object_from_filelike(io.BytesIO(b'temporary'))
    filepath = backend.filepath
    assert os.path.isdir(filepath)
    del backend
    gc.collect()
    assert not os.path.exists(filepath)


def test_owned_folder_removed_on_erase_and_made_anew() -> None:
    """``erase`` removes the owned folder; ``initialise`` then makes a new one, still removed on collection."""
    backend = SandboxRepositoryBackend()
    old = backend.filepath
    backend.put_object_from_filelike(io.BytesIO(b'erased'))
    backend.erase()
    assert not os.path.exists(old)
    assert backend.is_initialised is False
    backend.initialise()
    new = backend.filepath
    assert os.path.isdir(new)
    assert list(backend.list_objects()) == []
    del backend
    gc.collect()
    assert not os.path.exists(new)


def test_given_folder_kept_when_collected(tmp_path: Path) -> None:
    """A folder given by the caller survives the instance; a new instance finds the objects."""
    filepath = str(tmp_path / 'kept')
    backend = SandboxRepositoryBackend(filepath)
    backend.initialise()
    key = backend.put_object_from_filelike(io.BytesIO(b'kept'))
    del backend
    gc.collect()
    assert os.path.isdir(filepath)
    assert SandboxRepositoryBackend(filepath).get_object_content(key) == b'kept'


def test_given_folder_removed_on_erase(tmp_path: Path) -> None:
    """``erase`` removes a folder given by the caller, and is harmless when repeated."""
    backend = SandboxRepositoryBackend(tmp_path / 'erased')
    backend.initialise()
    backend.put_object_from_filelike(io.BytesIO(b'gone'))
    backend.erase()
    assert not (tmp_path / 'erased').exists()
    backend.erase()
    assert backend.is_initialised is False


def test_writes_leave_only_objects(sandbox: SandboxRepositoryBackend) -> None:
    """After writes and deletes, the folder holds exactly one file per object, named by its key."""
    keys = [sandbox.put_object_from_filelike(io.BytesIO(b'one %d' % index)) for index in range(5)]
    keys += sandbox.put_objects_from_filelikes([io.BytesIO(b''), io.BytesIO(b'batch')])
    sandbox.delete_objects(keys[:2])
    assert sorted(os.listdir(sandbox.filepath)) == sorted(keys[2:])


def test_failed_write_leaves_nothing(sandbox: SandboxRepositoryBackend) -> None:
    """A stream that fails part-way raises its error and leaves neither an object nor a temporary file."""
    with pytest.raises(OSError, match='the source disappeared'):
        sandbox.put_object_from_filelike(_FailingStream())  # type: ignore[arg-type]
    assert os.listdir(sandbox.filepath) == []


def test_object_invisible_while_written(sandbox: SandboxRepositoryBackend) -> None:
    """While an object is being written, readers see no object at all; afterwards they see it whole."""
    stream = _SpyingStream(sandbox)
    key = sandbox.put_object_from_filelike(stream)  # type: ignore[arg-type]
    assert stream.seen == [([], 0)]
    assert sandbox.get_object_content(key) == b'first halfsecond half'


@pytest.mark.parametrize(
    'bad_key',
    ['', '.', '..', '../victim', '/etc/passwd', 'a/b', 'victim', '0' * 31, '0' * 33, 'A' * 32, '0' * 32 + '\n'],
)
def test_bad_keys_are_missing(sandbox: SandboxRepositoryBackend, tmp_path: Path, bad_key: str) -> None:
    """A string that is not a uuid4 hex key is treated as missing and never touches a path."""
    (tmp_path / 'victim').write_bytes(b'outside the sandbox')
    (Path(sandbox.filepath) / 'victim').write_bytes(b'stray file inside the sandbox')
    assert sandbox.has_object(bad_key) is False
    assert sandbox.has_objects([bad_key]) == [False]
    with pytest.raises(FileNotFoundError, match=r'No (an )?objects? with key'):
        sandbox.open(bad_key)
    with pytest.raises(FileNotFoundError, match='with key'):
        sandbox.delete_object(bad_key)
    with pytest.raises(FileNotFoundError, match='with key'):
        sandbox.iter_object_streams([bad_key])
    assert (tmp_path / 'victim').read_bytes() == b'outside the sandbox'
    assert (Path(sandbox.filepath) / 'victim').exists()
    assert list(sandbox.list_objects()) == []


def test_partial_file_is_not_a_key(sandbox: SandboxRepositoryBackend) -> None:
    """A leftover temporary file is neither listed, counted nor readable as an object."""
    key = sandbox.put_object_from_filelike(io.BytesIO(b'whole'))
    (Path(sandbox.filepath) / f'.{key}.part').write_bytes(b'partial')
    assert list(sandbox.list_objects()) == [key]
    assert sandbox.get_info(detailed=True)['objects'] == 1
    assert sandbox.has_object(f'.{key}.part') is False


def test_iter_object_streams_checks_keys_eagerly(sandbox: SandboxRepositoryBackend) -> None:
    """Missing keys are reported when ``iter_object_streams`` is called, before any iteration."""
    key = sandbox.put_object_from_filelike(io.BytesIO(b'present'))
    missing = '0' * 32
    with pytest.raises(FileNotFoundError, match=missing):
        sandbox.iter_object_streams([key, missing])


def test_iter_object_streams_yields_each_key_once(sandbox: SandboxRepositoryBackend) -> None:
    """A key repeated in the request is yielded once, in the order of first appearance."""
    first, second = sandbox.put_objects_from_filelikes([io.BytesIO(b'1'), io.BytesIO(b'2')])
    items = [(key, stream.read()) for key, stream in sandbox.iter_object_streams([second, first, second])]
    assert items == [(second, b'2'), (first, b'1')]


def test_get_info(sandbox: SandboxRepositoryBackend) -> None:
    """``get_info`` counts objects, and with ``detailed`` adds their total size in bytes."""
    sandbox.put_objects_from_filelikes([io.BytesIO(b'12345'), io.BytesIO(b'678'), io.BytesIO(b'')])
    assert sandbox.get_info() == {'filepath': sandbox.filepath, 'objects': 3}
    assert sandbox.get_info(detailed=True) == {'filepath': sandbox.filepath, 'objects': 3, 'total_size_bytes': 8}


@pytest.mark.parametrize('live', [True, False])
def test_maintain_does_nothing(sandbox: SandboxRepositoryBackend, live: bool) -> None:
    """Maintenance of a sandbox has no steps and leaves the folder as it was."""
    key = sandbox.put_object_from_filelike(io.BytesIO(b'untouched'))
    report = sandbox.maintain(dry_run=False, live=live, compress=True)
    assert report == MaintenanceReport(dry_run=False, live=live, steps=(), details={})
    assert os.listdir(sandbox.filepath) == [key]
