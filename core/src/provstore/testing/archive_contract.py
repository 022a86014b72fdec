"""The archive-format contract: what every archive format plugin must do, run by its own tests.

:class:`ArchiveFormatContract` is a base class of pytest tests, parameterised by three class attributes:

- ``format_class``: the :class:`~provstore.archive.ArchiveFormat` under test;
- ``backend_class``: the read-only storage backend its :meth:`~provstore.archive.ArchiveFormat.open` returns;
- ``storage_class``: a writable storage backend (an :class:`~provstore.storage.EntityStorage`) archives are made
  from and imported into. Its profiles come from the fixture ``make_storage``, which authors override when the
  backend needs a server.

It checks the versions, a round trip (``create_archive`` -> read in place -> ``import_archive`` into an empty
storage -> export again, the same entities and files; a second import adds nothing), the refusal of garbage by
every reading method, and, being a :class:`~provstore.testing.ReadOnlyQueryConformanceContract`, every reading query
case on the query graph written through the format's writer and opened in place::

    class TestMyFormat(ArchiveFormatContract):
        format_class = MyFormat
        backend_class = MyArchiveBackend
        storage_class = SqliteDosStorageBackend
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from provstore.archive import ArchiveFormat
from provstore.archive.create import BATCH_SIZE, EXPORTED_ENTITIES, create_archive
from provstore.archive.imports import import_archive
from provstore.exceptions import ArchiveError, ReadOnlyStorageError
from provstore.storage import EntityStorage, EntityType, Row, StorageBackend
from provstore.testing.archive_graph import assert_holds, snapshot, snapshot_in_place, store_graph
from provstore.testing.profiles import new_profile, opened_storage
from provstore.testing.query_contract import ReadOnlyQueryConformanceContract
from provstore.testing.query_graph import build_query_graph

__all__ = ['ArchiveFormatContract', 'MakeStorage']

MakeStorage = Callable[[str], EntityStorage]
"""``make_storage(name)``: a new, empty, open storage of ``storage_class``, closed and erased after the test."""

GARBAGE: dict[str, Callable[[Path], Path]] = {}


def _garbage(function: Callable[[Path], Path]) -> Callable[[Path], Path]:
    GARBAGE[function.__name__] = function
    return function


@_garbage
def missing_file(folder: Path) -> Path:
    return folder / 'missing.aiida'


@_garbage
def empty_file(folder: Path) -> Path:
    path = folder / 'empty.aiida'
    path.write_bytes(b'')
    return path


@_garbage
def random_bytes(folder: Path) -> Path:
    path = folder / 'random.aiida'
    path.write_bytes(bytes(range(256)) * 64)
    return path


@_garbage
def a_folder(folder: Path) -> Path:
    path = folder / 'folder.aiida'
    path.mkdir()
    return path


@_garbage
def text_file(folder: Path) -> Path:
    path = folder / 'notes.aiida'
    path.write_text('{"export_version": "main_0001"}\n')
    return path


class ArchiveFormatContract(ReadOnlyQueryConformanceContract):
    """The archive-format contract (see the module's text). Subclass it with a name starting with ``Test``."""

    format_class: ClassVar[type[ArchiveFormat]]
    storage_class: ClassVar[type[StorageBackend]]

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> Iterator[MakeStorage]:
        """Return ``make_storage(name)``; the default makes profiles of ``storage_class`` in ``tmp_path``."""
        with contextlib.ExitStack() as stack:

            def make(name: str) -> EntityStorage:
                profile = new_profile(self.storage_class, tmp_path / name, name=name)
                storage = stack.enter_context(opened_storage(self.storage_class, profile, initialise=True, erase=True))
                assert isinstance(storage, EntityStorage), f'{self.storage_class.__name__} is not an EntityStorage'
                return storage

            yield make

    @pytest.fixture(scope='class')
    @classmethod
    def query_storage(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntityStorage]:
        """The query graph, stored in ``storage_class``, written through the format's writer, opened in place.

        NOTE: written row by row through :meth:`~provstore.archive.ArchiveFormat.open_writer`, not with
        ``create_archive``: the graph holds unsealed processes (its cases query them), which ``create_archive``
        refuses.
        """
        folder = tmp_path_factory.mktemp('archive-query-graph')
        source = new_profile(cls.storage_class, folder / 'source')
        archive = folder / 'graph.aiida'
        with opened_storage(cls.storage_class, source, initialise=True, erase=True) as writable:
            assert isinstance(writable, EntityStorage)
            build_query_graph(writable)
            _write_everything(writable, cls.format_class, archive)
        storage = cls.format_class.open(archive)
        try:
            assert isinstance(storage, EntityStorage)
            yield storage
        finally:
            storage.close()

    def _graph_archive(self, make_storage: MakeStorage, path: Path) -> tuple[EntityStorage, Path]:
        """Store :func:`~provstore.testing.archive_graph.store_graph` in a new storage and archive it at ``path``."""
        source = make_storage('source')
        store_graph(source)
        create_archive(source, path, self.format_class)
        return source, path

    # -- versions ---------------------------------------------------------------------------------------------

    def test_versions_are_class_data(self) -> None:
        """The name and versions are read from the class: the version written is one of those read."""
        assert isinstance(self.format_class.name, str)
        assert self.format_class.name
        head = self.format_class.version_head()
        assert isinstance(head, str)
        assert head in self.format_class.versions_readable()

    # -- round trip -------------------------------------------------------------------------------------------

    def test_round_trip(self, make_storage: MakeStorage, tmp_path: Path) -> None:
        """create -> read in place -> import into an empty storage -> create again: the same entities and files."""
        source, first = self._graph_archive(make_storage, tmp_path / 'first.archive')
        assert self.format_class.read_version(first) == self.format_class.version_head()
        metadata = self.format_class.read_metadata(first)
        assert (metadata.format, metadata.version) == (self.format_class.name, self.format_class.version_head())
        assert self.format_class.verify(first) == []
        expected = snapshot(source)
        assert snapshot_in_place(self.format_class, first) == expected

        target = make_storage('target')
        summary = import_archive(target, first, self.format_class, import_group=False)
        assert summary.added['node'] == len(expected['node'])
        assert_holds(expected, snapshot(target))
        second = tmp_path / 'second.archive'
        create_archive(target, second, self.format_class)
        assert snapshot_in_place(self.format_class, second) == expected

        rows = {entity: target.count_rows(entity) for entity in EntityType}
        again = import_archive(target, first, self.format_class, import_group=False)
        assert set(again.added.values()) == {0}
        assert {entity: target.count_rows(entity) for entity in EntityType} == rows

    def test_opened_archive_refuses_writes(self, make_storage: MakeStorage, tmp_path: Path) -> None:
        """The storage :meth:`open` returns, and its repository, refuse every write with ReadOnlyStorageError."""
        _, archive = self._graph_archive(make_storage, tmp_path / 'all.archive')
        opened = self.format_class.open(archive)
        try:
            assert isinstance(opened, self.backend_class)
            assert isinstance(opened, EntityStorage)
            with pytest.raises(ReadOnlyStorageError):
                opened.check_writable()
            with pytest.raises(ReadOnlyStorageError):
                opened.insert_rows(EntityType.USER, [{'email': 'intruder@example.org'}])
            with pytest.raises(ReadOnlyStorageError):
                opened.get_repository().put_object_from_filelike(io.BytesIO(b'intruder'))
        finally:
            opened.close()

    def test_interrupted_writer_leaves_nothing(self, make_storage: MakeStorage, tmp_path: Path) -> None:
        """A writer aborted half way leaves no file under the final name and nothing beside it."""
        source = make_storage('source')
        store_graph(source)
        folder = tmp_path / 'out'
        folder.mkdir()
        writer = self.format_class.open_writer(folder / 'half.archive')
        writer.write_rows(EntityType.USER, list(source.iter_text_rows(EntityType.USER)))
        writer.abort()
        assert list(folder.iterdir()) == []

    # -- garbage ----------------------------------------------------------------------------------------------

    @pytest.mark.parametrize('make_garbage', list(GARBAGE.values()), ids=list(GARBAGE))
    def test_garbage_is_refused(
        self, make_garbage: Callable[[Path], Path], make_storage: MakeStorage, tmp_path: Path
    ) -> None:
        """Every reading method refuses a file that is not an archive with an ArchiveError naming the file; an
        import of it writes nothing."""
        path = make_garbage(tmp_path)
        for read in (self.format_class.read_metadata, self.format_class.read_version, self.format_class.open):
            with pytest.raises(ArchiveError) as refused:
                read(path)
            assert str(path.name) in str(refused.value)
            assert '\n' not in str(refused.value)
        problems = self.format_class.verify(path)
        assert problems
        assert all(path.name in problem for problem in problems)
        target = make_storage('target')
        rows = {entity: target.count_rows(entity) for entity in EntityType}
        with pytest.raises(ArchiveError):
            import_archive(target, path, self.format_class)
        assert {entity: target.count_rows(entity) for entity in EntityType} == rows

    def test_truncated_archive_is_refused(self, make_storage: MakeStorage, tmp_path: Path) -> None:
        """The first half of a sound archive is refused by every reading method, naming the file."""
        _, archive = self._graph_archive(make_storage, tmp_path / 'all.archive')
        truncated = tmp_path / 'truncated.archive'
        truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        with pytest.raises(ArchiveError, match='truncated'):
            self.format_class.open(truncated)
        assert self.format_class.verify(truncated)


def _write_everything(storage: EntityStorage, archive_format: type[ArchiveFormat], path: Path) -> None:
    """Write every row and object of ``storage`` through the format's writer protocol."""
    writer = archive_format.open_writer(path)
    try:
        for entity in dict.fromkeys([*EXPORTED_ENTITIES, EntityType.AUTHINFO]):
            batch: list[Row] = []
            for row in storage.iter_text_rows(entity, BATCH_SIZE):
                batch.append(row)
                if len(batch) >= BATCH_SIZE:
                    writer.write_rows(entity, batch)
                    batch = []
            if batch:
                writer.write_rows(entity, batch)
        repository = storage.get_repository()
        for key, stream in repository.iter_object_streams(sorted(repository.list_objects())):
            writer.write_object(key, stream)
        writer.write_metadata({})
        writer.finish()
    except BaseException:
        writer.abort()
        raise
