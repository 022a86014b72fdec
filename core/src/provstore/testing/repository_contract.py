"""The contract every repository backend passes: a base class of pytest tests.

Subclass :class:`RepositoryBackendContract` (or :class:`ContentAddressedContract` for a backend whose keys are
sha256 digests of the content) in a test module whose name pytest collects, set ``backend_class`` and override
the ``backend_options`` fixture::

    import pytest
    from provstore.testing import RepositoryBackendContract

    class TestMyBackendContract(RepositoryBackendContract):
        backend_class = MyBackend

        @pytest.fixture
        def backend_options(self, tmp_path):
            return {'filepath': str(tmp_path / 'repository')}

The options must be plain JSON-able keyword arguments naming a location that does not exist yet; a second
instance built from the same options, in another process, must open the same repository. The backend class
must be importable by name (not defined inside a function): the multi-process tests build it in child
processes started with the ``spawn`` method.

Tests of large objects, many objects and concurrent processes are marked ``slow`` (a marker registered by
provstore's pytest plugin); deselect them with ``-m 'not slow'`` while iterating.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import queue
import random
import re
import time
import traceback
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, cast

import pytest

from provstore.repository import CHUNK_SIZE, AbstractRepositoryBackend, MaintenanceReport, sha256_of_stream

__all__ = ['ContentAddressedContract', 'PseudoRandomStream', 'RepositoryBackendContract']

LARGE_OBJECT_SIZE = 64 * 1024 * 1024
"""Size of the object streamed in and out by the large-object test."""

MEMORY_LIMIT = 16 * 1024 * 1024
"""Peak of Python memory allowed while a large object is written or read: a quarter of its size."""

MANY_OBJECTS = 10_000
"""Number of small objects written by the many-objects tests."""

WRITER_PROCESSES = 4
"""Number of processes writing into one repository at the same time."""

WRITER_OBJECTS = 40
"""Objects each writer process stores one by one, then as many again in one batch."""

WRITER_SHARED_LARGE_SIZE = 8 * 1024 * 1024
"""Size of the object every writer process stores first, at the same moment as the others."""

PROCESS_TIMEOUT = 120.0
"""Seconds the parent waits for the writer processes before failing the test."""


class PseudoRandomStream(io.RawIOBase):
    """A read-only, non-seekable stream of ``size`` pseudo-random bytes made on the fly.

    The content depends only on ``seed`` and the position, never on how the stream is read. The stream keeps a
    sha256 digest of what it has produced, so nothing needs to hold the content to check it.

    :param size: number of bytes the stream produces before its end.
    :param seed: seed of the pseudo-random generator.
    """

    BLOCK_SIZE = 64 * 1024

    def __init__(self, size: int, seed: int = 0) -> None:
        super().__init__()
        self._size = size
        self._random = random.Random(seed)
        self._block = b''
        self._offset = 0
        self.position = 0
        """Number of bytes produced so far."""
        self.digest = hashlib.sha256()
        """sha256 of the bytes produced so far."""

    def readable(self) -> bool:
        """The stream is readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes and return how many were written (0 at the end)."""
        written = 0
        with memoryview(buffer) as view, view.cast('B') as target:
            while written < len(target) and self.position < self._size:
                if self._offset == len(self._block):
                    self._block = self._random.randbytes(min(self.BLOCK_SIZE, self._size - self.position))
                    self._offset = 0
                count = min(len(target) - written, len(self._block) - self._offset)
                with memoryview(self._block)[self._offset : self._offset + count] as piece:
                    target[written : written + count] = piece
                    self.digest.update(piece)
                self._offset += count
                self.position += count
                written += count
        return written


class _ObservedStream(io.RawIOBase):
    """A byte stream made of ``chunks`` that calls ``observe`` between chunks and keeps what it returned."""

    def __init__(self, chunks: list[bytes], observe: Callable[[], object]) -> None:
        super().__init__()
        self._chunks = list(chunks)
        self._observe = observe
        self.produced: list[bytes] = []
        self.observations: list[object] = []

    def readable(self) -> bool:
        """The stream is readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Copy the next chunk, at most ``len(buffer)`` bytes, into ``buffer``; observe once a chunk is done."""
        if not self._chunks:
            return 0
        chunk = self._chunks[0]
        with memoryview(buffer) as view, view.cast('B') as target:
            count = min(len(target), len(chunk))
            target[:count] = chunk[:count]
        self.produced.append(chunk[:count])
        if count == len(chunk):
            self._chunks.pop(0)
            if self._chunks:
                self.observations.append(self._observe())
        else:
            self._chunks[0] = chunk[count:]
        return count


@dataclass
class _Peak:
    """Peak Python memory, in bytes above what was allocated at the start, filled when the block ends."""

    size: int = 0


@contextlib.contextmanager
def _traced_peak() -> Iterator[_Peak]:
    """Measure with :mod:`tracemalloc` the peak of Python memory allocated inside the block."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    peak = _Peak()
    try:
        yield peak
    finally:
        peak.size = tracemalloc.get_traced_memory()[1] - baseline
        if not was_tracing:
            tracemalloc.stop()


def _content(label: str, size: int) -> bytes:
    """Return ``size`` deterministic pseudo-random bytes for ``label``."""
    return random.Random(label).randbytes(size)


def _writer_contents(writer: int) -> list[bytes]:
    """Return, in order, what writer process ``writer`` stores in the multi-process test.

    First one large object shared by all writers, then alternately content shared by all writers and content
    of this writer only; the second half is stored in one batch.
    """
    contents = [_content('shared-large', WRITER_SHARED_LARGE_SIZE)]
    for index in range(2 * WRITER_OBJECTS):
        size = (index * 7919) % (128 * 1024)
        label = f'shared-{index}' if index % 2 == 0 else f'writer-{writer}-{index}'
        contents.append(_content(label, size))
    return contents


def _write_in_child(
    backend_class: type[AbstractRepositoryBackend],
    options: dict[str, Any],
    writer: int,
    barrier: Any,
    results: Any,
) -> None:
    """Body of a writer process: open the repository, wait for the others, store this writer's contents.

    Puts ``(writer, keys, None)`` on ``results``, or ``(writer, [], traceback)`` when anything fails.
    """
    try:
        backend = backend_class(**options)
        contents = _writer_contents(writer)
        half = 1 + WRITER_OBJECTS
        barrier.wait(PROCESS_TIMEOUT)
        keys = [backend.put_object_from_filelike(io.BytesIO(content)) for content in contents[:half]]
        keys += backend.put_objects_from_filelikes([io.BytesIO(content) for content in contents[half:]])
        results.put((writer, keys, None))
    except BaseException:
        barrier.abort()  # the other writers stop waiting for this one
        results.put((writer, [], traceback.format_exc()))


def _collect_writer_results(processes: list[Any], results: Any) -> tuple[dict[int, list[str]], list[str]]:
    """Wait for one result per writer process; return the keys by writer and the errors reported.

    Fails the test at once if a writer dies without reporting, and after :data:`PROCESS_TIMEOUT` seconds.
    """
    deadline = time.monotonic() + PROCESS_TIMEOUT
    outcomes: dict[int, list[str]] = {}
    errors: list[str] = []
    while len(outcomes) < len(processes):
        try:
            writer, keys, error = results.get(timeout=0.5)
        except queue.Empty:
            dead = [process.name for process in processes if process.exitcode not in (None, 0)]
            if dead:
                pytest.fail(f'writer processes died without reporting: {", ".join(dead)}')
            if time.monotonic() > deadline:
                pytest.fail(f'writer processes did not finish within {PROCESS_TIMEOUT} s')
            continue
        if error is not None:
            errors.append(f'writer {writer} failed:\n{error}')
        outcomes[writer] = keys
    return outcomes, errors


def _read_all(handle: BinaryIO) -> bytes:
    """Read ``handle`` to its end in chunks, checking every chunk is ``bytes``."""
    chunks: list[bytes] = []
    while True:
        chunk = handle.read(CHUNK_SIZE)
        assert isinstance(chunk, bytes), f'a repository stream returned {type(chunk).__name__}, not bytes'
        if not chunk:
            return b''.join(chunks)
        chunks.append(chunk)


def _read_via_open(backend: AbstractRepositoryBackend, key: str) -> bytes:
    """Return the content of ``key`` read through :meth:`~AbstractRepositoryBackend.open`."""
    with backend.open(key) as handle:
        return _read_all(handle)


def _bad_stream(kind: str, folder: Path, stack: contextlib.ExitStack) -> Any:
    """Return an object of the given ``kind`` that is not a readable byte stream; files are closed by ``stack``."""
    text_file = folder / 'text.txt'
    text_file.write_text('text content')
    makers: dict[str, Callable[[], Any]] = {
        'text stream': lambda: io.StringIO('text content'),
        'file opened in text mode': lambda: stack.enter_context(open(text_file, encoding='utf-8')),
        'bytes': lambda: b'bytes content',
        'str path': lambda: str(text_file),
        'Path': lambda: text_file,
        'write-only stream': lambda: stack.enter_context(open(folder / 'write-only.bin', 'wb')),
        'None': lambda: None,
    }
    return makers[kind]()


_BAD_STREAM_KINDS = (
    'text stream',
    'file opened in text mode',
    'bytes',
    'str path',
    'Path',
    'write-only stream',
    'None',
)


class RepositoryBackendContract:
    """The behaviour every :class:`~provstore.repository.AbstractRepositoryBackend` must show.

    Subclass it (with a name starting with ``Test``), set :attr:`backend_class` and override the
    ``backend_options`` fixture. The ``backend`` fixture yields an initialised, empty repository and erases it
    afterwards.
    """

    backend_class: ClassVar[type[AbstractRepositoryBackend]]
    """The backend class under test."""

    # -- fixtures ---------------------------------------------------------------------------------------------

    @pytest.fixture
    def backend_options(self, tmp_path: Path) -> dict[str, Any]:
        """Keyword arguments of :attr:`backend_class` naming a fresh repository; subclasses must override it."""
        raise NotImplementedError(f'{type(self).__name__} must override the `backend_options` fixture')

    @pytest.fixture
    def backend(self, backend_options: dict[str, Any]) -> Iterator[AbstractRepositoryBackend]:
        """An initialised, empty repository, erased after the test if it still exists."""
        backend = self.backend_class(**backend_options)
        backend.initialise()
        try:
            yield backend
        finally:
            if backend.is_initialised:
                backend.erase()
            backend.close()

    @pytest.fixture
    def another_instance(self, backend_options: dict[str, Any]) -> Iterator[Callable[[], AbstractRepositoryBackend]]:
        """Return a function that builds another instance on the same repository; each is closed after the test."""
        instances: list[AbstractRepositoryBackend] = []

        def build() -> AbstractRepositoryBackend:
            instances.append(self.backend_class(**backend_options))
            return instances[-1]

        yield build
        for instance in instances:
            instance.close()

    @pytest.fixture
    def inputs(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A folder for input files, apart from wherever the repository lives."""
        return tmp_path_factory.mktemp('contract-inputs')

    # -- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def absent_keys(backend: AbstractRepositoryBackend, count: int) -> list[str]:
        """Return ``count`` keys in the backend's own format that name no object."""
        if backend.key_format == 'sha256':
            return [hashlib.sha256(os.urandom(32)).hexdigest() for _ in range(count)]
        keys = [backend.put_object_from_filelike(io.BytesIO(os.urandom(16))) for _ in range(count)]
        backend.delete_objects(keys)
        return keys

    @staticmethod
    def snapshot(backend: AbstractRepositoryBackend) -> dict[str, str]:
        """Return every key of ``backend`` with the sha256 of its content, read from the stored bytes."""
        result = {}
        for key in backend.list_objects():
            with backend.open(key) as handle:
                result[key] = sha256_of_stream(handle)
        return result

    # -- identity and lifecycle -------------------------------------------------------------------------------

    def test_name(self) -> None:
        """The backend class has a non-empty string ``name`` and a docstring whose first line is a summary."""
        assert isinstance(self.backend_class.name, str)
        assert self.backend_class.name
        assert self.backend_class.__doc__
        assert self.backend_class.__doc__.strip().splitlines()[0].strip()

    def test_uuid_and_key_format_types(self, backend: AbstractRepositoryBackend) -> None:
        """``uuid`` and ``key_format`` are strings or ``None``, and a uuid is not empty."""
        assert backend.uuid is None or (isinstance(backend.uuid, str) and backend.uuid)
        assert backend.key_format is None or (isinstance(backend.key_format, str) and backend.key_format)

    def test_same_options_open_same_repository(
        self,
        backend: AbstractRepositoryBackend,
        backend_options: dict[str, Any],
        another_instance: Callable[[], AbstractRepositoryBackend],
    ) -> None:
        """A second instance built from the same JSON-able options sees the same objects and the same uuid."""
        assert json.loads(json.dumps(backend_options)) == backend_options
        key = backend.put_object_from_filelike(io.BytesIO(b'shared between instances'))
        other = another_instance()
        assert other.is_initialised
        assert other.uuid == backend.uuid
        assert other.has_object(key)
        assert other.get_object_content(key) == b'shared between instances'
        key_other = other.put_object_from_filelike(io.BytesIO(b'written by the other instance'))
        assert backend.get_object_content(key_other) == b'written by the other instance'

    def test_is_initialised_only_after_initialise(
        self, another_instance: Callable[[], AbstractRepositoryBackend]
    ) -> None:
        """A backend on a fresh location is not initialised until :meth:`initialise` is called."""
        backend = another_instance()
        try:
            before = backend.is_initialised
            backend.initialise()
            after = backend.is_initialised
        finally:
            if backend.is_initialised:
                backend.erase()
            backend.close()
        assert before is False
        assert after is True

    def test_initialise_is_idempotent(self, backend: AbstractRepositoryBackend) -> None:
        """Initialising an initialised repository changes nothing: objects and uuid are kept."""
        key = backend.put_object_from_filelike(io.BytesIO(b'kept'))
        uuid_before = backend.uuid
        backend.initialise()
        assert backend.is_initialised
        assert backend.uuid == uuid_before
        assert backend.get_object_content(key) == b'kept'
        assert list(backend.list_objects()) == [key]

    def test_erase(
        self, backend: AbstractRepositoryBackend, another_instance: Callable[[], AbstractRepositoryBackend]
    ) -> None:
        """Erasing removes the repository with its objects; initialising again gives an empty repository."""
        key = backend.put_object_from_filelike(io.BytesIO(b'erased'))
        backend.erase()
        erased = backend.is_initialised
        assert erased is False
        assert another_instance().is_initialised is False
        backend.initialise()
        reinitialised = backend.is_initialised
        assert reinitialised is True
        assert list(backend.list_objects()) == []
        assert backend.has_object(key) is False

    # -- writing ----------------------------------------------------------------------------------------------

    def test_put_object_from_filelike(self, backend: AbstractRepositoryBackend) -> None:
        """A stored stream returns a string key; its content, every byte value included, reads back exactly."""
        content = bytes(range(256)) * 100 + b'\r\n\n\r'
        key = backend.put_object_from_filelike(io.BytesIO(content))
        assert isinstance(key, str)
        assert key
        assert backend.get_object_content(key) == content

    def test_put_object_reads_from_current_position_and_does_not_close(
        self, backend: AbstractRepositoryBackend
    ) -> None:
        """Only what is left in the stream is stored, and the stream is left open."""
        handle = io.BytesIO(b'skipped|stored')
        handle.read(len(b'skipped|'))
        key = backend.put_object_from_filelike(handle)
        assert not handle.closed
        assert backend.get_object_content(key) == b'stored'

    def test_put_object_from_real_file(self, backend: AbstractRepositoryBackend, inputs: Path) -> None:
        """A file opened in binary mode is a valid stream."""
        path = inputs / 'real.bin'
        path.write_bytes(b'from a real file\n' * 1000)
        with open(path, 'rb') as handle:
            key = backend.put_object_from_filelike(handle)
        assert backend.get_object_content(key) == path.read_bytes()

    def test_put_object_from_non_seekable_stream(self, backend: AbstractRepositoryBackend) -> None:
        """A stream that cannot seek (a pipe, a socket) is stored whole."""
        stream = PseudoRandomStream(3 * CHUNK_SIZE + 17, seed=3)
        key = backend.put_object_from_filelike(cast(BinaryIO, stream))
        assert stream.position == 3 * CHUNK_SIZE + 17
        assert backend.get_object_hash(key) == stream.digest.hexdigest()

    def test_object_invisible_until_written(
        self, backend: AbstractRepositoryBackend, another_instance: Callable[[], AbstractRepositoryBackend]
    ) -> None:
        """While a put is half-way, another instance sees only the objects stored before; then it sees the new one."""
        before = backend.put_object_from_filelike(io.BytesIO(b'stored before'))
        reader = another_instance()
        stream = _ObservedStream([os.urandom(CHUNK_SIZE), os.urandom(CHUNK_SIZE)], lambda: list(reader.list_objects()))
        key = backend.put_object_from_filelike(cast(BinaryIO, stream))
        assert stream.observations == [[before]]
        assert sorted(reader.list_objects()) == sorted({before, key})
        assert reader.get_object_content(key) == b''.join(stream.produced)

    @pytest.mark.parametrize('kind', _BAD_STREAM_KINDS)
    def test_put_object_refuses_non_byte_streams(
        self, backend: AbstractRepositoryBackend, inputs: Path, kind: str
    ) -> None:
        """Anything but a readable byte stream raises TypeError and stores nothing."""
        with contextlib.ExitStack() as stack:
            bad = _bad_stream(kind, inputs, stack)
            with pytest.raises(TypeError, match='stream'):
                backend.put_object_from_filelike(bad)
        assert list(backend.list_objects()) == []

    def test_empty_object(self, backend: AbstractRepositoryBackend) -> None:
        """An empty object is stored, listed, read, hashed and deleted like any other."""
        key = backend.put_object_from_filelike(io.BytesIO(b''))
        assert backend.has_object(key)
        assert list(backend.list_objects()) == [key]
        assert backend.get_object_content(key) == b''
        assert backend.get_object_hash(key) == hashlib.sha256(b'').hexdigest()
        assert [(name, stream.read()) for name, stream in backend.iter_object_streams([key])] == [(key, b'')]
        backend.delete_object(key)
        assert not backend.has_object(key)

    def test_put_object_from_file(self, backend: AbstractRepositoryBackend, inputs: Path) -> None:
        """A file given by ``str`` or :class:`~pathlib.Path` is stored with its exact content."""
        path = inputs / 'file.bin'
        path.write_bytes(b'file content\x00\xff')
        key_str = backend.put_object_from_file(str(path))
        key_path = backend.put_object_from_file(path)
        assert backend.get_object_content(key_str) == b'file content\x00\xff'
        assert backend.get_object_content(key_path) == b'file content\x00\xff'

    def test_put_object_from_missing_file(self, backend: AbstractRepositoryBackend, inputs: Path) -> None:
        """A path with no file raises FileNotFoundError and stores nothing."""
        with pytest.raises(FileNotFoundError, match=r'missing\.bin'):
            backend.put_object_from_file(inputs / 'missing.bin')
        assert list(backend.list_objects()) == []

    def test_put_objects_from_filelikes(self, backend: AbstractRepositoryBackend) -> None:
        """Keys of a batch come in the order of the streams; each reads back its own content."""
        contents = [b'batch %d' % index * (index + 1) for index in range(50)] + [b'']
        keys = backend.put_objects_from_filelikes([io.BytesIO(content) for content in contents])
        assert isinstance(keys, list)
        assert len(keys) == len(contents)
        assert [backend.get_object_content(key) for key in keys] == contents
        assert set(backend.list_objects()) == set(keys)

    def test_put_objects_from_filelikes_accepts_any_iterable(self, backend: AbstractRepositoryBackend) -> None:
        """A generator of streams is a valid batch, and an empty batch stores nothing."""
        keys = backend.put_objects_from_filelikes(io.BytesIO(b'gen %d' % index) for index in range(3))
        assert [backend.get_object_content(key) for key in keys] == [b'gen 0', b'gen 1', b'gen 2']
        assert backend.put_objects_from_filelikes([]) == []
        assert set(backend.list_objects()) == set(keys)

    @pytest.mark.parametrize('kind', _BAD_STREAM_KINDS)
    def test_put_objects_refuses_a_bad_stream_and_stores_nothing(
        self, backend: AbstractRepositoryBackend, inputs: Path, kind: str
    ) -> None:
        """One item that is not a readable byte stream raises TypeError, and none of the batch is stored."""
        with contextlib.ExitStack() as stack:
            batch = [io.BytesIO(b'good first'), _bad_stream(kind, inputs, stack), io.BytesIO(b'good last')]
            with pytest.raises(TypeError, match='stream'):
                backend.put_objects_from_filelikes(batch)
        assert list(backend.list_objects()) == []

    def test_keys_follow_key_format(self, backend: AbstractRepositoryBackend) -> None:
        """Keys are what ``key_format`` says: sha256 digests of the content, or a fresh uuid4 per object.

        A content-addressed backend must run :class:`ContentAddressedContract`, which adds the deduplication
        tests; any other backend returns a distinct key for every object, even of the same content.
        """
        keys = [backend.put_object_from_filelike(io.BytesIO(b'same')) for _ in range(3)]
        keys += backend.put_objects_from_filelikes([io.BytesIO(b'same'), io.BytesIO(b'same')])
        if backend.key_format == 'sha256':
            assert isinstance(self, ContentAddressedContract), 'a sha256 backend must run ContentAddressedContract'
            assert set(keys) == {hashlib.sha256(b'same').hexdigest()}
            return
        assert len(set(keys)) == 5
        if backend.key_format == 'uuid4':
            assert all(uuid.UUID(key).version == 4 for key in keys)
        assert sorted(backend.list_objects()) == sorted(keys)

    # -- reading ----------------------------------------------------------------------------------------------

    def test_has_object(self, backend: AbstractRepositoryBackend) -> None:
        """``has_object`` is ``True`` for a stored key and ``False`` for a missing one (a ``bool`` each time)."""
        key = backend.put_object_from_filelike(io.BytesIO(b'present'))
        (missing,) = self.absent_keys(backend, 1)
        assert backend.has_object(key) is True
        assert backend.has_object(missing) is False

    def test_has_objects(self, backend: AbstractRepositoryBackend) -> None:
        """``has_objects`` answers for each key in order, present and missing mixed, and [] for no keys."""
        keys = backend.put_objects_from_filelikes([io.BytesIO(b'one'), io.BytesIO(b'two')])
        missing = self.absent_keys(backend, 2)
        query = [missing[0], keys[0], missing[1], keys[1], keys[0]]
        assert backend.has_objects(query) == [False, True, False, True, True]
        assert backend.has_objects([]) == []

    def test_list_objects(self, backend: AbstractRepositoryBackend) -> None:
        """``list_objects`` is an iterator over exactly the stored keys, each once."""
        assert isinstance(backend.list_objects(), Iterator)
        assert list(backend.list_objects()) == []
        keys = [backend.put_object_from_filelike(io.BytesIO(b'listed %d' % index)) for index in range(20)]
        listed = list(backend.list_objects())
        assert len(listed) == len(set(listed))
        assert set(listed) == set(keys)

    @pytest.mark.parametrize('detailed', [False, True])
    def test_get_info(self, backend: AbstractRepositoryBackend, detailed: bool) -> None:
        """``get_info`` returns a JSON-serialisable dict, empty repository or not."""
        info_empty = backend.get_info(detailed=detailed)
        assert isinstance(info_empty, dict)
        json.dumps(info_empty)
        backend.put_objects_from_filelikes([io.BytesIO(b'info'), io.BytesIO(b'more info')])
        info = backend.get_info(detailed=detailed)
        assert isinstance(info, dict)
        assert json.loads(json.dumps(info)) == info

    def test_open(self, backend: AbstractRepositoryBackend) -> None:
        """``open`` is a context manager giving a binary stream that reads the content in chunks."""
        content = os.urandom(2 * CHUNK_SIZE + 5)
        key = backend.put_object_from_filelike(io.BytesIO(content))
        with backend.open(key) as handle:
            stream: object = handle
            assert not isinstance(stream, io.TextIOBase)
            first = handle.read(10)
            assert isinstance(first, bytes)
            rest = _read_all(handle)
        assert first + rest == content

    def test_open_missing(self, backend: AbstractRepositoryBackend) -> None:
        """Opening a missing key raises FileNotFoundError naming the key."""
        (missing,) = self.absent_keys(backend, 1)
        with pytest.raises(FileNotFoundError, match=re.escape(missing)), backend.open(missing):
            pass

    def test_get_object_content(self, backend: AbstractRepositoryBackend) -> None:
        """``get_object_content`` returns the bytes, and raises FileNotFoundError naming a missing key."""
        key = backend.put_object_from_filelike(io.BytesIO(b'whole content'))
        content = backend.get_object_content(key)
        assert isinstance(content, bytes)
        assert content == b'whole content'
        (missing,) = self.absent_keys(backend, 1)
        with pytest.raises(FileNotFoundError, match=re.escape(missing)):
            backend.get_object_content(missing)

    def test_iter_object_streams(self, backend: AbstractRepositoryBackend) -> None:
        """Every requested key is yielded exactly once with a stream of its content."""
        contents = {f'item {index}'.encode() * (index * 1000 + 1) for index in range(30)}
        stored = {backend.put_object_from_filelike(io.BytesIO(content)): content for content in contents}
        seen = []
        for key, stream in backend.iter_object_streams(list(stored)):
            seen.append(key)
            assert _read_all(stream) == stored[key]
        assert sorted(seen) == sorted(stored)

    def test_iter_object_streams_of_nothing(self, backend: AbstractRepositoryBackend) -> None:
        """No keys, no items."""
        backend.put_object_from_filelike(io.BytesIO(b'not requested'))
        assert list(backend.iter_object_streams([])) == []

    def test_iter_object_streams_missing(self, backend: AbstractRepositoryBackend) -> None:
        """Missing keys raise FileNotFoundError naming every one of them before anything is yielded."""
        present = backend.put_objects_from_filelikes([io.BytesIO(b'p1'), io.BytesIO(b'p2')])
        missing = self.absent_keys(backend, 2)
        yielded = []
        with pytest.raises(FileNotFoundError, match=re.escape(missing[0])) as excinfo:
            for key, _ in backend.iter_object_streams([present[0], *missing, present[1]]):
                yielded.append(key)
        assert missing[1] in str(excinfo.value)
        assert yielded == []

    def test_get_object_sizes(self, backend: AbstractRepositoryBackend) -> None:
        """Sizes come in the order of the keys asked (repeats too); a missing key raises, naming each one."""
        contents = [b'', b'small', os.urandom(CHUNK_SIZE + 3)]
        keys = [backend.put_object_from_filelike(io.BytesIO(content)) for content in contents]
        assert backend.get_object_sizes([keys[2], keys[0], keys[1], keys[2]]) == [CHUNK_SIZE + 3, 0, 5, CHUNK_SIZE + 3]
        assert backend.get_object_sizes([]) == []
        missing = self.absent_keys(backend, 2)
        with pytest.raises(FileNotFoundError, match=re.escape(missing[0])) as excinfo:
            backend.get_object_sizes([keys[1], *missing])
        assert missing[1] in str(excinfo.value)

    def test_get_object_hash(self, backend: AbstractRepositoryBackend) -> None:
        """``get_object_hash`` is the sha256 of the content whatever the key format; missing raises."""
        for content in (b'', b'hashed', os.urandom(CHUNK_SIZE + 1)):
            key = backend.put_object_from_filelike(io.BytesIO(content))
            assert backend.get_object_hash(key) == hashlib.sha256(content).hexdigest()
        (missing,) = self.absent_keys(backend, 1)
        with pytest.raises(FileNotFoundError, match=re.escape(missing)):
            backend.get_object_hash(missing)

    def test_keys_that_name_paths_are_refused(self, backend: AbstractRepositoryBackend, inputs: Path) -> None:
        """A string that is not a key, such as a path out of the repository, never reaches a file.

        ``has_objects`` says ``False`` (or raises ValueError); every other method raises FileNotFoundError or
        ValueError, and the file the string points at is neither read nor deleted.
        """
        victim = inputs / 'victim.txt'
        victim.write_bytes(b'must not be read or deleted')
        backend.put_object_from_filelike(io.BytesIO(b'must not be read or deleted'))
        bad_keys = [
            '',
            '.',
            '..',
            '../victim.txt',
            str(victim),
            '/etc/passwd',
            '../' * 40 + str(victim).lstrip('/'),
            'ab/../' + str(victim).lstrip('/'),
            'a\x00b',
        ]
        for bad in bad_keys:
            try:
                answer = backend.has_objects([bad])
            except ValueError:
                pass
            else:
                assert answer == [False], f'has_objects says {bad!r} exists'
            for action in (
                backend.get_object_content,
                backend.get_object_hash,
                backend.delete_object,
                lambda key: _read_via_open(backend, key),
                lambda key: list(backend.iter_object_streams([key])),
                lambda key: backend.delete_objects([key]),
            ):
                with pytest.raises((FileNotFoundError, ValueError)):
                    action(bad)
            assert victim.read_bytes() == b'must not be read or deleted'
        assert len(list(backend.list_objects())) == 1

    # -- deleting ---------------------------------------------------------------------------------------------

    def test_delete_object(self, backend: AbstractRepositoryBackend) -> None:
        """A deleted object is gone from every method; other objects are untouched."""
        kept, deleted = backend.put_objects_from_filelikes([io.BytesIO(b'kept'), io.BytesIO(b'deleted')])
        backend.delete_object(deleted)
        assert backend.has_object(deleted) is False
        assert list(backend.list_objects()) == [kept]
        assert backend.get_object_content(kept) == b'kept'
        with pytest.raises(FileNotFoundError, match=re.escape(deleted)):
            backend.get_object_content(deleted)
        with pytest.raises(FileNotFoundError, match=re.escape(deleted)):
            backend.get_object_hash(deleted)
        with pytest.raises(FileNotFoundError, match=re.escape(deleted)):
            backend.delete_object(deleted)

    def test_delete_objects(self, backend: AbstractRepositoryBackend) -> None:
        """Several objects are deleted at once; duplicates in the list and an empty list are fine."""
        keys = backend.put_objects_from_filelikes([io.BytesIO(b'd%d' % index) for index in range(5)])
        backend.delete_objects([keys[0], keys[2], keys[0]])
        backend.delete_objects([])
        assert sorted(backend.list_objects()) == sorted([keys[1], keys[3], keys[4]])
        assert backend.has_objects(keys) == [False, True, False, True, True]

    def test_delete_objects_missing_deletes_nothing(self, backend: AbstractRepositoryBackend) -> None:
        """Missing keys raise FileNotFoundError naming every one of them, and nothing is deleted."""
        keys = backend.put_objects_from_filelikes([io.BytesIO(b'x'), io.BytesIO(b'y')])
        missing = self.absent_keys(backend, 2)
        with pytest.raises(FileNotFoundError, match=re.escape(missing[0])) as excinfo:
            backend.delete_objects([keys[0], missing[0], keys[1], missing[1]])
        assert missing[1] in str(excinfo.value)
        assert backend.has_objects(keys) == [True, True]
        assert [backend.get_object_content(key) for key in keys] == [b'x', b'y']

    # -- maintenance ------------------------------------------------------------------------------------------

    def _populate(self, backend: AbstractRepositoryBackend) -> list[str]:
        """Store a mix of objects (empty, small, repeated, deleted, larger than a chunk) and return the keys."""
        keys = backend.put_objects_from_filelikes(
            [io.BytesIO(b''), io.BytesIO(b'small'), io.BytesIO(b'small'), io.BytesIO(os.urandom(2 * CHUNK_SIZE))]
        )
        keys += [backend.put_object_from_filelike(io.BytesIO(b'single %d' % index)) for index in range(20)]
        doomed = backend.put_object_from_filelike(io.BytesIO(b'deleted before maintenance'))
        backend.delete_object(doomed)
        return keys

    @pytest.mark.parametrize('live', [True, False])
    def test_maintain_dry_run_changes_nothing(self, backend: AbstractRepositoryBackend, live: bool) -> None:
        """A dry run returns a report saying so and leaves keys and contents identical."""
        self._populate(backend)
        before = self.snapshot(backend)
        report = backend.maintain(dry_run=True, live=live)
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is True
        assert report.live is live
        json.dumps(report.details)
        assert all(isinstance(step, str) for step in report.steps)
        assert self.snapshot(backend) == before

    @pytest.mark.parametrize('live', [True, False])
    def test_maintain_keeps_every_object(self, backend: AbstractRepositoryBackend, live: bool) -> None:
        """Maintenance returns a report and every object stays listed and readable with the same content."""
        keys = self._populate(backend)
        before = self.snapshot(backend)
        report = backend.maintain(dry_run=False, live=live)
        assert isinstance(report, MaintenanceReport)
        assert report.dry_run is False
        assert report.live is live
        json.dumps(report.details)
        assert self.snapshot(backend) == before
        assert all(backend.has_objects(keys))
        assert {key: backend.get_object_hash(key) for key in keys} == {key: before[key] for key in keys}

    def test_use_after_full_maintenance(self, backend: AbstractRepositoryBackend) -> None:
        """After full maintenance objects can still be streamed, deleted and added."""
        keys = self._populate(backend)
        backend.maintain(live=False)
        streamed = {key: _read_all(stream) for key, stream in backend.iter_object_streams(keys)}
        assert set(streamed) == set(keys)
        backend.delete_objects([keys[1]])
        assert backend.has_object(keys[1]) is False
        new = backend.put_object_from_filelike(io.BytesIO(b'after maintenance'))
        assert backend.get_object_content(new) == b'after maintenance'
        assert set(backend.list_objects()) == (set(keys) - {keys[1]}) | {new}

    # -- scale ------------------------------------------------------------------------------------------------

    @pytest.mark.slow
    def test_large_object_in_constant_memory(self, backend: AbstractRepositoryBackend) -> None:
        """A 64 MiB object is streamed in and out by chunks with a peak Python memory far below its size."""
        warm_up = backend.put_object_from_filelike(io.BytesIO(b'warm up'))  # first use may import or connect
        assert backend.get_object_content(warm_up) == b'warm up'

        source = PseudoRandomStream(LARGE_OBJECT_SIZE, seed=64)
        with _traced_peak() as peak_put:
            key = backend.put_object_from_filelike(cast(BinaryIO, source))
        assert source.position == LARGE_OBJECT_SIZE
        expected = source.digest.hexdigest()
        assert peak_put.size < MEMORY_LIMIT, f'storing a 64 MiB object took {peak_put.size} bytes of memory'

        with _traced_peak() as peak_read:
            digest = hashlib.sha256()
            size = 0
            with backend.open(key) as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
        assert size == LARGE_OBJECT_SIZE
        assert digest.hexdigest() == expected
        assert peak_read.size < MEMORY_LIMIT, f'reading a 64 MiB object took {peak_read.size} bytes of memory'

        with _traced_peak() as peak_hash:
            assert backend.get_object_hash(key) == expected
            for _, stream in backend.iter_object_streams([key]):
                assert sha256_of_stream(stream) == expected
        assert peak_hash.size < MEMORY_LIMIT, f'hashing a 64 MiB object took {peak_hash.size} bytes of memory'

    @pytest.mark.slow
    def test_many_objects_in_batch(self, backend: AbstractRepositoryBackend) -> None:
        """Ten thousand small objects stored in one batch are all listed, present and readable."""
        contents = [b'batch object %d' % index for index in range(MANY_OBJECTS)]
        keys = backend.put_objects_from_filelikes(io.BytesIO(content) for content in contents)
        self._check_many(backend, keys, contents)

    @pytest.mark.slow
    def test_many_objects_one_by_one(self, backend: AbstractRepositoryBackend) -> None:
        """Ten thousand small objects stored one at a time are all listed, present and readable."""
        contents = [b'single object %d' % index for index in range(MANY_OBJECTS)]
        keys = [backend.put_object_from_filelike(io.BytesIO(content)) for content in contents]
        self._check_many(backend, keys, contents)

    @staticmethod
    def _check_many(backend: AbstractRepositoryBackend, keys: list[str], contents: list[bytes]) -> None:
        """Check that ``keys`` are distinct, exactly listed, present, and stream back ``contents``."""
        assert len(keys) == len(contents)
        assert len(set(keys)) == len(keys)
        listed = list(backend.list_objects())
        assert len(listed) == len(keys)
        assert set(listed) == set(keys)
        assert all(backend.has_objects(keys))
        expected = dict(zip(keys, contents, strict=True))
        seen = 0
        for key, stream in backend.iter_object_streams(keys):
            assert stream.read() == expected.pop(key)
            seen += 1
        assert seen == len(keys)
        assert expected == {}

    @pytest.mark.slow
    def test_concurrent_writers(self, backend: AbstractRepositoryBackend, backend_options: dict[str, Any]) -> None:
        """Processes writing the same and different content at once lose and corrupt nothing.

        Each of several processes builds its own backend from the same options, waits for the others, then
        stores a large object common to all, and small objects both common and its own, singly and in a batch.
        """
        context = multiprocessing.get_context('spawn')
        barrier = context.Barrier(WRITER_PROCESSES)
        results = context.Queue()
        processes = [
            context.Process(
                target=_write_in_child,
                args=(self.backend_class, backend_options, writer, barrier, results),
                name=f'provstore-contract-writer-{writer}',
            )
            for writer in range(WRITER_PROCESSES)
        ]
        for process in processes:
            process.start()
        try:
            outcomes, errors = _collect_writer_results(processes, results)
        finally:
            barrier.abort()  # a writer still waiting for a dead one stops at once
            for process in processes:
                process.join(PROCESS_TIMEOUT)
                if process.is_alive():
                    process.kill()
                    process.join()
            results.close()
            results.join_thread()
        assert not errors, '\n'.join(errors)
        assert all(process.exitcode == 0 for process in processes)

        all_keys: set[str] = set()
        for writer, keys in sorted(outcomes.items()):
            contents = _writer_contents(writer)
            assert len(keys) == len(contents)
            assert all(backend.has_objects(keys))
            for key, content in zip(keys, contents, strict=True):
                with backend.open(key) as handle:
                    assert _read_all(handle) == content, f'object {key} of writer {writer} is corrupted'
            all_keys.update(keys)
        assert set(backend.list_objects()) == all_keys
        if backend.key_format == 'sha256':
            shared = {outcomes[writer][0] for writer in outcomes}
            assert shared == {hashlib.sha256(_writer_contents(0)[0]).hexdigest()}

    # -- a writer killed mid-write ----------------------------------------------------------------------------

    @staticmethod
    def _write_then_hang(backend_class: type[AbstractRepositoryBackend], options: dict[str, Any], events: Any) -> None:
        """Body of a writer process killed mid-write: store objects, report their keys, then hang inside a batch.

        Puts ``('stored', keys)`` once the first objects are stored, then ``('hanging', None)`` from inside the
        second stream of a batch, after the first stream and part of the second were read; the stream then never
        ends, so the process is inside the backend's write when the parent kills it. Failures put
        ``('error', traceback)``.
        """

        class HangingStream(io.RawIOBase):
            """A non-seekable stream: one chunk of bytes, then it reports and sleeps for ever."""

            def __init__(self) -> None:
                super().__init__()
                self.sent = False

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                if self.sent:
                    events.put(('hanging', None))
                    time.sleep(10 * PROCESS_TIMEOUT)
                self.sent = True
                with memoryview(buffer) as view, view.cast('B') as target:
                    count = min(len(target), 1024)
                    target[:count] = b'h' * count
                return count

        try:
            backend = backend_class(**options)
            keys = [backend.put_object_from_filelike(io.BytesIO(b'acknowledged before the kill'))]
            keys += backend.put_objects_from_filelikes([io.BytesIO(b'batch before the kill %d' % n) for n in range(3)])
            events.put(('stored', keys))
            first = PseudoRandomStream(3 * CHUNK_SIZE, seed=7)  # not seekable: read inside the write itself
            backend.put_objects_from_filelikes([cast(BinaryIO, first), cast(BinaryIO, HangingStream())])
            events.put(('error', 'the hanging batch returned'))
        except BaseException:
            events.put(('error', traceback.format_exc()))

    @pytest.mark.slow
    def test_writer_killed_mid_write(self, backend: AbstractRepositoryBackend, backend_options: dict[str, Any]) -> None:
        """After a writer is killed (SIGKILL) inside a batch write, writing and maintenance work and nothing is lost.

        A child process stores objects, then is killed while the backend is reading a batch's streams (with
        disk-objectstore: while it holds a pack file's lock). The next batch and single writes, live and full
        maintenance all succeed, and every object stored before the kill, or after it, is present and intact.
        """
        context = multiprocessing.get_context('spawn')
        events = context.Queue()
        process = context.Process(
            target=RepositoryBackendContract._write_then_hang,
            args=(self.backend_class, backend_options, events),
            name='provstore-contract-killed-writer',
        )
        process.start()
        try:
            kind, stored = events.get(timeout=PROCESS_TIMEOUT)
            assert kind == 'stored', f'the writer process failed before the kill:\n{stored}'
            kind, detail = events.get(timeout=PROCESS_TIMEOUT)
            assert kind == 'hanging', f'the writer process failed before the kill:\n{detail}'
        finally:
            process.kill()
            process.join(PROCESS_TIMEOUT)
            events.close()
            events.join_thread()
        assert process.exitcode is not None and process.exitcode != 0

        expected = {key: backend.get_object_content(key) for key in stored}
        assert expected[stored[0]] == b'acknowledged before the kill'
        batch = [b'batch after the kill %d' % n for n in range(3)]
        keys = backend.put_objects_from_filelikes([io.BytesIO(content) for content in batch])
        keys.append(backend.put_object_from_filelike(io.BytesIO(b'single after the kill')))
        expected.update(zip(keys, [*batch, b'single after the kill'], strict=True))
        for live in (True, False):
            report = backend.maintain(live=live)
            assert isinstance(report, MaintenanceReport)
        more = backend.put_objects_from_filelikes([io.BytesIO(b'batch after maintenance')])
        expected[more[0]] = b'batch after maintenance'
        assert set(expected) <= set(backend.list_objects())
        for key, content in expected.items():
            assert backend.get_object_content(key) == content, f'object {key} changed after the killed write'


class ContentAddressedContract(RepositoryBackendContract):
    """The contract of a content-addressed backend (``key_format == 'sha256'``): everything, plus deduplication."""

    def test_key_is_sha256_of_content(self, backend: AbstractRepositoryBackend) -> None:
        """A content-addressed backend's key is the sha256 hex digest of the content."""
        for content in (b'', b'abc', bytes(range(256)) * 1000):
            assert backend.put_object_from_filelike(io.BytesIO(content)) == hashlib.sha256(content).hexdigest()

    def test_same_content_stored_once(self, backend: AbstractRepositoryBackend, inputs: Path) -> None:
        """The same content, by any put method, gets the same key and is listed once."""
        path = inputs / 'dedup.bin'
        path.write_bytes(b'deduplicated')
        keys = [
            backend.put_object_from_filelike(io.BytesIO(b'deduplicated')),
            backend.put_object_from_filelike(io.BytesIO(b'deduplicated')),
            backend.put_object_from_file(path),
            *backend.put_objects_from_filelikes([io.BytesIO(b'deduplicated'), io.BytesIO(b'deduplicated')]),
        ]
        assert set(keys) == {hashlib.sha256(b'deduplicated').hexdigest()}
        assert list(backend.list_objects()) == [keys[0]]

    def test_batch_with_repeated_content(self, backend: AbstractRepositoryBackend) -> None:
        """A batch repeating content returns the same key at each repeated position."""
        keys = backend.put_objects_from_filelikes(
            [io.BytesIO(b'a'), io.BytesIO(b'b'), io.BytesIO(b'a'), io.BytesIO(b'a'), io.BytesIO(b'b')]
        )
        key_a, key_b = hashlib.sha256(b'a').hexdigest(), hashlib.sha256(b'b').hexdigest()
        assert keys == [key_a, key_b, key_a, key_a, key_b]
        assert sorted(backend.list_objects()) == sorted([key_a, key_b])

    def test_deduplication_after_maintenance(self, backend: AbstractRepositoryBackend) -> None:
        """Content stored before a full maintenance is still found, not duplicated, when stored again."""
        key = backend.put_object_from_filelike(io.BytesIO(b'before maintenance'))
        backend.maintain(live=False)
        assert backend.put_object_from_filelike(io.BytesIO(b'before maintenance')) == key
        assert backend.put_objects_from_filelikes([io.BytesIO(b'before maintenance')]) == [key]
        assert list(backend.list_objects()) == [key]
