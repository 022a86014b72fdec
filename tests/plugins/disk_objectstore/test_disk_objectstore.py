"""Behaviour of the ``disk_objectstore`` backend beyond the contract: packs, the pack lock, maintenance, info."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from disk_objectstore import Container
from disk_objectstore.dataclasses import ObjectCount

from provstore.exceptions import RepositoryError
from provstore.repository import MaintenanceReport
from provstore_disk_objectstore import hooks
from provstore_disk_objectstore.backend import PACK_LOCK_NAME, DiskObjectStoreRepositoryBackend


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the container lives; it does not exist yet."""
    return tmp_path / 'container'


@pytest.fixture
def backend(folder: Path) -> Iterator[DiskObjectStoreRepositoryBackend]:
    """An initialised, empty backend, closed and erased afterwards."""
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    backend.initialise()
    yield backend
    backend.erase()


def count(folder: Path) -> ObjectCount:
    """Count loose objects, packed objects and pack files with a container of our own."""
    with Container(folder) as container:
        return container.count_objects()


def is_compressed(folder: Path, key: str) -> bool:
    """Whether ``key`` is stored compressed in a pack."""
    with Container(folder) as container:
        return bool(container.get_object_meta(key).pack_compressed)


def pack_files_size(folder: Path) -> int:
    """Total size in bytes of the pack files."""
    return sum(path.stat().st_size for path in (folder / 'packs').iterdir() if path.name.isdigit())


def disk_state(folder: Path) -> dict[str, str]:
    """Return every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob('*'))
        if path.is_file()
    }


@contextmanager
def held_pack_lock(folder: Path) -> Iterator[None]:
    """Hold the pack lock as another writer would, through a separate open file."""
    import fcntl

    with open(folder / PACK_LOCK_NAME, 'ab') as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def streams(contents: list[bytes]) -> list[io.BytesIO]:
    """Return one stream per content."""
    return [io.BytesIO(content) for content in contents]


# -- plugin and import --------------------------------------------------------------------------------------------


def test_import_and_hook_do_not_load_disk_objectstore() -> None:
    """Importing the hook and backend modules, calling the hook and building a backend load no SQLAlchemy."""
    script = textwrap.dedent(
        """
        import json, sys
        import provstore_disk_objectstore.hooks as hooks
        import provstore_disk_objectstore.backend as backend
        classes = hooks.register_repository_backends()
        classes[0]('/nonexistent/container')
        heavy = sorted(name for name in sys.modules if name.split('.')[0] in ('sqlalchemy', 'disk_objectstore'))
        print(json.dumps({'heavy': heavy, 'names': [cls.name for cls in classes]}))
        """
    )
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True)
    outcome = json.loads(result.stdout)
    assert outcome['names'] == ['disk_objectstore']
    assert outcome['heavy'] == []


def test_entry_point_and_hook() -> None:
    """The distribution declares the entry point and the hook returns the backend class."""
    (entry_point,) = [ep for ep in entry_points(group='provstore') if ep.name == 'disk_objectstore']
    assert entry_point.value == 'provstore_disk_objectstore.hooks'
    assert hooks.register_repository_backends() == [DiskObjectStoreRepositoryBackend]
    summary = (DiskObjectStoreRepositoryBackend.__doc__ or '').strip().splitlines()[0]
    assert (
        summary == 'Content-addressed objects in a disk-objectstore container: loose files packed during maintenance.'
    )
    assert DiskObjectStoreRepositoryBackend.name == 'disk_objectstore'


# -- identity, options, lifecycle ---------------------------------------------------------------------------------


def test_uuid_is_container_id(folder: Path) -> None:
    """``uuid`` is ``None`` before initialise and then the ``container_id`` of the container's config.json."""
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    assert backend.uuid is None
    backend.initialise()
    config = json.loads((folder / 'config.json').read_text())
    assert backend.uuid == config['container_id']
    assert DiskObjectStoreRepositoryBackend(str(folder)).uuid == config['container_id']
    assert backend.key_format == 'sha256'


def test_options_are_used_at_creation_only(folder: Path) -> None:
    """The constructor's options go into config.json when initialise creates the container; later ones are ignored."""
    first = DiskObjectStoreRepositoryBackend(
        str(folder), pack_size_target=12345, loose_prefix_len=3, compression_algorithm='zlib+9'
    )
    first.initialise()
    config = json.loads((folder / 'config.json').read_text())
    assert (config['pack_size_target'], config['loose_prefix_len'], config['hash_type']) == (12345, 3, 'sha256')
    assert config['compression_algorithm'] == 'zlib+9'
    second = DiskObjectStoreRepositoryBackend(str(folder), pack_size_target=99, loose_prefix_len=0)
    second.initialise()
    info = second.get_info()
    assert (info['pack_size_target'], info['loose_prefix_len'], info['compression_algorithm']) == (12345, 3, 'zlib+9')
    key = second.put_object_from_filelike(io.BytesIO(b'prefix'))
    assert (folder / 'loose' / key[:3] / key[3:]).is_file()


@pytest.mark.parametrize(
    ('options', 'error', 'match'),
    [
        ({'pack_size_target': 0}, ValueError, 'pack_size_target'),
        ({'pack_size_target': True}, ValueError, 'pack_size_target'),
        ({'pack_size_target': '4GB'}, ValueError, 'pack_size_target'),
        ({'loose_prefix_len': -1}, ValueError, 'loose_prefix_len'),
        ({'loose_prefix_len': 64}, ValueError, 'loose_prefix_len'),
        ({'compression_algorithm': 1}, TypeError, 'compression_algorithm'),
    ],
)
def test_constructor_refuses_bad_options(folder: Path, options: dict[str, object], error: type, match: str) -> None:
    """Options that cannot make a container are refused when the backend is built, naming the option."""
    with pytest.raises(error, match=match):
        DiskObjectStoreRepositoryBackend(str(folder), **options)  # type: ignore[arg-type]


def test_unknown_compression_algorithm_is_refused_at_initialise(folder: Path) -> None:
    """disk-objectstore checks the compression algorithm when the container is created, and creates nothing."""
    backend = DiskObjectStoreRepositoryBackend(str(folder), compression_algorithm='lzma+1')
    with pytest.raises(ValueError, match='lzma'):
        backend.initialise()
    assert backend.is_initialised is False


def test_use_before_initialise_is_refused(folder: Path) -> None:
    """Reading or writing a container that does not exist raises RepositoryError naming the folder."""
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    with pytest.raises(RepositoryError, match='initialise'):
        backend.has_object('0' * 64)
    with pytest.raises(RepositoryError, match=str(folder.name)):
        backend.put_object_from_filelike(io.BytesIO(b'nowhere'))
    assert not folder.exists()


def test_initialise_refuses_a_non_empty_folder(folder: Path) -> None:
    """A folder with other files in it is not turned into a container."""
    folder.mkdir()
    (folder / 'precious.txt').write_text('keep me')
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    with pytest.raises(RepositoryError, match='not empty'):
        backend.initialise()
    assert (folder / 'precious.txt').read_text() == 'keep me'


def test_container_with_another_hash_type_is_refused(folder: Path) -> None:
    """A container made with sha1 keys is not used: its keys would not be what ``key_format`` promises."""
    with Container(folder) as container:
        container.init_container(hash_type='sha1')
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    with pytest.raises(RepositoryError, match='sha1'):
        backend.has_object(hashlib.sha1(b'').hexdigest())


def test_erase_removes_the_folder(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Erasing deletes the whole container folder, lock file included; erasing again is harmless."""
    backend.put_objects_from_filelikes(streams([b'one', b'two']))
    assert (folder / PACK_LOCK_NAME).exists()
    backend.erase()
    assert not folder.exists()
    backend.erase()
    assert backend.uuid is None


# -- writing ------------------------------------------------------------------------------------------------------


def test_single_write_is_loose(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """One object is written as a loose file named by its sha256."""
    key = backend.put_object_from_filelike(io.BytesIO(b'loose'))
    assert key == hashlib.sha256(b'loose').hexdigest()
    assert (folder / 'loose' / key[:2] / key[2:]).read_bytes() == b'loose'
    assert count(folder) == ObjectCount(packed=0, loose=1, pack_files=0)


def test_batch_writes_land_in_packs(folder: Path) -> None:
    """A batch goes straight into pack files, starting a new pack when one passes the size target."""
    backend = DiskObjectStoreRepositoryBackend(str(folder), pack_size_target=1000)
    backend.initialise()
    contents = [bytes([index]) * 600 for index in range(5)]
    keys = backend.put_objects_from_filelikes(streams(contents))
    assert keys == [hashlib.sha256(content).hexdigest() for content in contents]
    assert count(folder) == ObjectCount(packed=5, loose=0, pack_files=3)
    assert [backend.get_object_content(key) for key in keys] == contents


def test_dedup_across_loose_and_packed(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """The same content written loose and in a batch has one key, is stored and listed once, survives maintenance."""
    loose_key = backend.put_object_from_filelike(io.BytesIO(b'twice'))
    packed_keys = backend.put_objects_from_filelikes(streams([b'twice', b'twice', b'other']))
    assert packed_keys[:2] == [loose_key, loose_key]
    assert count(folder) == ObjectCount(packed=1, loose=1, pack_files=1)
    assert sorted(backend.list_objects()) == sorted({loose_key, packed_keys[2]})
    backend.maintain()
    assert count(folder) == ObjectCount(packed=2, loose=0, pack_files=1)
    assert backend.get_object_content(loose_key) == b'twice'


def test_batch_falls_back_to_loose_when_pack_lock_is_busy(
    backend: DiskObjectStoreRepositoryBackend, folder: Path
) -> None:
    """While another writer holds the pack lock, a batch is written as loose objects and nothing waits."""
    backend.put_object_from_filelike(io.BytesIO(b'creates nothing but a loose file'))
    (folder / PACK_LOCK_NAME).touch()
    with held_pack_lock(folder):
        started = time.monotonic()
        keys = backend.put_objects_from_filelikes(streams([b'a', b'b', b'c']))
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert count(folder) == ObjectCount(packed=0, loose=4, pack_files=0)
    assert [backend.get_object_content(key) for key in keys] == [b'a', b'b', b'c']
    backend.put_objects_from_filelikes(streams([b'd']))
    assert count(folder).packed == 1


@pytest.mark.parametrize('live', [True, False])
def test_maintenance_removes_pack_locks_of_dead_writers(
    backend: DiskObjectStoreRepositoryBackend, folder: Path, live: bool
) -> None:
    """A ``packs/N.lock`` nobody holds the pack lock for (its writer died) is removed by maintenance, which says so."""
    backend.put_objects_from_filelikes(streams([b'first pack']))
    (folder / 'packs' / '0.lock').touch()
    report = backend.maintain(live=live)
    assert not list((folder / 'packs').glob('*.lock'))
    assert report.steps[0] == 'removed pack locks left by dead writers: packs/0.lock'
    assert report.details['stale_pack_locks'] == ['packs/0.lock']
    assert backend.maintain(live=live).steps[0].startswith('packed ')


def test_batch_write_removes_pack_locks_of_dead_writers(
    backend: DiskObjectStoreRepositoryBackend, folder: Path
) -> None:
    """A batch write that takes the pack lock first removes a dead writer's ``packs/N.lock`` and writes into packs."""
    backend.put_objects_from_filelikes(streams([b'first pack']))
    (folder / 'packs' / '0.lock').touch()
    keys = backend.put_objects_from_filelikes(streams([b'after the dead writer']))
    assert not (folder / 'packs' / '0.lock').exists()
    assert count(folder) == ObjectCount(packed=2, loose=0, pack_files=1)
    assert backend.get_object_content(keys[0]) == b'after the dead writer'


def test_pack_lock_of_a_live_writer_is_never_removed(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """While another writer holds the pack lock, its ``packs/N.lock`` survives batch writes and live maintenance."""
    backend.put_objects_from_filelikes(streams([b'first pack']))
    (folder / 'packs' / '0.lock').touch()
    with held_pack_lock(folder):
        keys = backend.put_objects_from_filelikes(streams([b'written loose']))
        report = backend.maintain(live=True)
        assert (folder / 'packs' / '0.lock').exists()
    assert report.steps[0].startswith('skipped packing')
    assert count(folder) == ObjectCount(packed=1, loose=1, pack_files=1)
    assert backend.get_object_content(keys[0]) == b'written loose'


def test_batch_after_another_process_wrote_packs(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """A batch still goes into packs after another process committed to the pack index since our last read."""
    first = backend.put_objects_from_filelikes(streams([b'first']))
    assert backend.has_objects(first) == [True]
    script = textwrap.dedent(
        f"""
        import io
        from provstore_disk_objectstore.backend import DiskObjectStoreRepositoryBackend
        DiskObjectStoreRepositoryBackend({str(folder)!r}).put_objects_from_filelikes([io.BytesIO(b'other process')])
        """
    )
    subprocess.run([sys.executable, '-c', script], check=True)
    keys = backend.put_objects_from_filelikes(streams([b'after']))
    assert count(folder) == ObjectCount(packed=3, loose=0, pack_files=1)
    assert backend.has_object(hashlib.sha256(b'other process').hexdigest())
    assert backend.get_object_content(keys[0]) == b'after'


def test_list_objects_while_writing(backend: DiskObjectStoreRepositoryBackend) -> None:
    """Writing batches while a listing is under way neither breaks the listing nor the writes."""
    keys = set(backend.put_objects_from_filelikes(streams([b'listed %d' % index for index in range(2500)])))
    listed = set()
    for index, key in enumerate(backend.list_objects()):
        listed.add(key)
        if index % 1000 == 0:
            backend.put_objects_from_filelikes(streams([b'written while listing %d' % index]))
    assert keys <= listed
    assert len(set(backend.list_objects())) == 2503


def test_keys_that_are_not_sha256_digests(backend: DiskObjectStoreRepositoryBackend) -> None:
    """Upper-case, short and path-like strings are never keys: missing, and named in the error."""
    key = backend.put_object_from_filelike(io.BytesIO(b'real'))
    bad = [key.upper(), key[:-1], 'xx/etc/passwd', key + '0']
    assert backend.has_objects([key, *bad]) == [True, False, False, False, False]
    for name in bad:
        with pytest.raises(FileNotFoundError, match=re.escape(name)):
            backend.get_object_content(name)
    with pytest.raises(FileNotFoundError, match='xx/etc/passwd'), backend.open('xx/etc/passwd'):
        pytest.fail('opened a path that is not a key')


# -- reading ------------------------------------------------------------------------------------------------------


def test_reading_compressed_packed_objects_does_not_loosen_them(
    backend: DiskObjectStoreRepositoryBackend, folder: Path
) -> None:
    """Compressed packed objects read through open and iter_object_streams get no loose copy."""
    contents = [b'compressible %d ' % index * 5000 for index in range(3)]
    keys = [backend.put_object_from_filelike(stream) for stream in streams(contents)]
    backend.maintain(compress=True)
    assert all(is_compressed(folder, key) for key in keys)
    assert count(folder).loose == 0
    with backend.open(keys[0]) as handle:
        assert handle.read() == contents[0]
    assert {key: stream.read() for key, stream in backend.iter_object_streams(keys)} == dict(
        zip(keys, contents, strict=True)
    )
    assert backend.get_object_hash(keys[1]) == keys[1]
    assert count(folder).loose == 0


def test_iter_object_streams_checks_before_returning(backend: DiskObjectStoreRepositoryBackend) -> None:
    """Missing keys are reported when iter_object_streams is called, all of them, before any iteration."""
    key = backend.put_object_from_filelike(io.BytesIO(b'present'))
    missing = [hashlib.sha256(b'absent %d' % index).hexdigest() for index in range(2)]
    with pytest.raises(FileNotFoundError, match=f'{min(missing)}.*{max(missing)}'):
        backend.iter_object_streams([key, *missing])


# -- info ---------------------------------------------------------------------------------------------------------


def test_get_info(folder: Path) -> None:
    """get_info reports settings and counts, and sizes in bytes when detailed; all JSON-serialisable."""
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    backend.initialise()
    backend.put_objects_from_filelikes(streams([b'x' * 100, b'y' * 200]))
    backend.put_object_from_filelike(io.BytesIO(b'z' * 50))
    info = backend.get_info()
    json.dumps(info)
    assert info['objects'] == {'loose': 1, 'packed': 2}
    assert info['pack_files'] == 1
    assert info['container_id'] == backend.uuid
    assert info['hash_type'] == 'sha256'
    assert 'sizes_bytes' not in info
    detailed = backend.get_info(detailed=True)
    json.dumps(detailed)
    sizes = detailed['sizes_bytes']
    assert (sizes['loose'], sizes['packed'], sizes['packed_on_disk'], sizes['pack_files']) == (50, 300, 300, 300)
    assert sizes['pack_index'] > 0


# -- maintenance --------------------------------------------------------------------------------------------------


def test_maintain_live_packs_loose_objects(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Live maintenance packs every loose object, removes the loose files, and every object stays readable."""
    contents = [b'loose %d' % index * 100 for index in range(30)]
    keys = [backend.put_object_from_filelike(stream) for stream in streams(contents)]
    batch = backend.put_objects_from_filelikes(streams([b'already packed']))
    report = backend.maintain()
    assert isinstance(report, MaintenanceReport)
    assert (report.dry_run, report.live) == (False, True)
    assert report.steps[0] == 'packed 30 loose objects into pack files'
    assert report.details['packed_objects'] == 30
    assert report.details['before']['loose'] == 30
    assert (report.details['after']['loose'], report.details['after']['packed']) == (0, 31)
    json.dumps(report.details)
    assert count(folder) == ObjectCount(packed=31, loose=0, pack_files=1)
    assert [backend.get_object_content(key) for key in keys] == contents
    assert sorted(backend.list_objects()) == sorted([*keys, *batch])


def test_maintain_live_never_deletes_or_reclaims(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Live maintenance keeps every object and leaves the bytes of deleted packed objects for full maintenance."""
    keys = backend.put_objects_from_filelikes(streams([b'a' * 1000, b'b' * 1000]))
    backend.delete_object(keys[0])
    size = pack_files_size(folder)
    backend.maintain(live=True)
    assert pack_files_size(folder) == size
    assert list(backend.list_objects()) == [keys[1]]


def test_maintain_full_reclaims_space_after_deletes(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Full maintenance rewrites the packs without deleted objects: they shrink."""
    contents = [os.urandom(10_000) for _ in range(10)]
    keys = backend.put_objects_from_filelikes(streams(contents))
    backend.delete_objects(keys[:5])
    assert pack_files_size(folder) == 100_000
    report = backend.maintain(live=False)
    assert pack_files_size(folder) == 50_000
    assert report.details['reclaimed_bytes'] == 50_000
    assert report.details['after']['pack_files_bytes'] == 50_000
    assert any('VACUUM' in step for step in report.steps)
    assert [backend.get_object_content(key) for key in keys[5:]] == contents[5:]
    assert sorted(backend.list_objects()) == sorted(keys[5:])


def test_maintain_full_compress(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """With compress, full maintenance also compresses objects already packed, where that saves space."""
    compressible = b'abc' * 10_000
    keys = backend.put_objects_from_filelikes(streams([compressible, os.urandom(30_000)]))
    backend.maintain(live=False, compress=True)
    assert is_compressed(folder, keys[0])
    assert not is_compressed(folder, keys[1])
    assert pack_files_size(folder) < 40_000
    assert backend.get_object_content(keys[0]) == compressible


def test_batch_writes_each_content_once(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Content already stored, or repeated within a batch, is not written into the packs again."""
    contents = [os.urandom(10_000) for _ in range(4)]
    keys = backend.put_objects_from_filelikes(streams([*contents, contents[0], contents[1]]))
    assert keys[4:] == keys[:2]
    assert pack_files_size(folder) == 40_000
    again = backend.put_objects_from_filelikes(streams([contents[2], os.urandom(10_000), contents[3]]))
    assert again[0] == keys[2]
    assert again[2] == keys[3]
    assert pack_files_size(folder) == 50_000
    assert [backend.get_object_content(key) for key in keys] == [*contents, contents[0], contents[1]]


@pytest.mark.parametrize('live', [True, False])
def test_maintain_dry_run_changes_nothing_on_disk(folder: Path, live: bool) -> None:
    """A dry run reports what it would do and leaves every byte under the container folder as it was."""
    backend = DiskObjectStoreRepositoryBackend(str(folder))
    backend.initialise()
    keys = backend.put_objects_from_filelikes(streams([b'packed %d' % index * 100 for index in range(6)]))
    backend.delete_objects(keys[:2])
    for index in range(4):
        backend.put_object_from_filelike(io.BytesIO(b'loose %d' % index))
    backend.put_object_from_filelike(io.BytesIO(b'packed 5' * 100))  # loose copy of a packed object
    backend.close()
    before = disk_state(folder)

    other = DiskObjectStoreRepositoryBackend(str(folder))
    report = other.maintain(dry_run=True, live=live)
    listed = sorted(other.list_objects())
    other.close()

    assert disk_state(folder) == before
    assert (report.dry_run, report.live) == (True, live)
    assert report.details['objects_to_pack'] == 4
    assert report.steps[0] == 'would pack 4 loose objects into pack files'
    assert report.details['before']['loose'] == 5
    assert 'after' not in report.details
    if not live:
        assert report.details['reclaimable_bytes'] == 2 * 800
    json.dumps(report.details)
    assert len(listed) == 8


def test_maintain_live_skips_when_pack_lock_is_busy(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Live maintenance does not wait for another pack writer: it skips its steps and says so."""
    backend.put_object_from_filelike(io.BytesIO(b'stays loose'))
    (folder / PACK_LOCK_NAME).touch()
    with held_pack_lock(folder):
        report = backend.maintain(live=True)
    assert report.steps == (f'skipped packing and cleaning: another process holds the pack lock {PACK_LOCK_NAME}',)
    assert count(folder) == ObjectCount(packed=0, loose=1, pack_files=0)


def test_maintain_full_refuses_when_pack_lock_is_busy(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Full maintenance needs exclusive use: a held pack lock is an error, and nothing is changed."""
    backend.put_object_from_filelike(io.BytesIO(b'stays loose'))
    (folder / PACK_LOCK_NAME).touch()
    with held_pack_lock(folder), pytest.raises(RepositoryError, match='exclusive use'):
        backend.maintain(live=False)
    assert count(folder) == ObjectCount(packed=0, loose=1, pack_files=0)


@pytest.mark.parametrize(
    ('options', 'error', 'match'),
    [
        ({'live': True, 'vacuum': True}, ValueError, 'vacuum=True needs live=False'),
        ({'repack': True}, TypeError, 'repack'),
    ],
)
def test_maintain_refuses_bad_options(
    backend: DiskObjectStoreRepositoryBackend, options: dict[str, object], error: type, match: str
) -> None:
    """VACUUM during live maintenance and unknown options are refused before anything is done."""
    with pytest.raises(error, match=match):
        backend.maintain(**options)  # type: ignore[arg-type]


# -- several processes --------------------------------------------------------------------------------------------

_WRITER = """
import hashlib, io, json, os, sys, time
from provstore_disk_objectstore.backend import DiskObjectStoreRepositoryBackend

folder, writer, start = sys.argv[1], int(sys.argv[2]), sys.argv[3]
backend = DiskObjectStoreRepositoryBackend(folder)
while not os.path.exists(start):
    time.sleep(0.005)
keys = {}
for batch in range(8):
    contents = [b'shared %d %d' % (batch, index) * 300 for index in range(15)]
    contents += [b'writer %d batch %d item %d' % (writer, batch, index) * 300 for index in range(15)]
    for key, content in zip(backend.put_objects_from_filelikes([io.BytesIO(c) for c in contents]), contents):
        keys[key] = hashlib.sha256(content).hexdigest()
    single = b'writer %d single %d' % (writer, batch)
    keys[backend.put_object_from_filelike(io.BytesIO(single))] = hashlib.sha256(single).hexdigest()
print(json.dumps(keys))
"""

_MAINTAINER = """
import json, os, sys
from provstore_disk_objectstore.backend import DiskObjectStoreRepositoryBackend

folder, start, stop = sys.argv[1], sys.argv[2], sys.argv[3]
backend = DiskObjectStoreRepositoryBackend(folder)
while not os.path.exists(start):
    pass
steps = []
while not os.path.exists(stop):
    steps.extend(backend.maintain(live=True).steps)
print(json.dumps(steps))
"""


def test_concurrent_batch_writers_and_live_maintenance_lose_nothing(folder: Path, tmp_path: Path) -> None:
    """Processes writing batches and single objects at once, while another runs live maintenance, lose nothing.

    They take turns on the pack lock or fall back to loose writes; every key is the sha256 of its content and
    every object reads back.
    """
    backend = DiskObjectStoreRepositoryBackend(str(folder), pack_size_target=1024 * 1024)
    backend.initialise()
    start, stop = tmp_path / 'start', tmp_path / 'stop'
    writers = [
        subprocess.Popen(
            [sys.executable, '-c', _WRITER, str(folder), str(writer), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(4)
    ]
    maintainer = subprocess.Popen(
        [sys.executable, '-c', _MAINTAINER, str(folder), str(start), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    start.touch()
    outputs = [writer.communicate(timeout=120) for writer in writers]
    stop.touch()
    maintainer_output, maintainer_errors = maintainer.communicate(timeout=120)

    assert [writer.returncode for writer in writers] == [0, 0, 0, 0], [errors for _, errors in outputs]
    assert maintainer.returncode == 0, maintainer_errors
    assert json.loads(maintainer_output)
    expected: dict[str, str] = {}
    for output, _ in outputs:
        expected.update(json.loads(output))
    assert all(key == digest for key, digest in expected.items())
    assert len(expected) == 8 * 15 + 4 * 8 * 16
    assert sorted(backend.list_objects()) == sorted(expected)
    for key, stream in backend.iter_object_streams(list(expected)):
        assert hashlib.sha256(stream.read()).hexdigest() == key
    backend.maintain(live=False)
    assert count(folder).loose == 0
    assert sorted(backend.list_objects()) == sorted(expected)


def test_maintain_full_refuses_after_an_interrupted_repack(
    backend: DiskObjectStoreRepositoryBackend, folder: Path
) -> None:
    """The temporary pack of an interrupted repack is reported with a clear error before anything is changed."""
    backend.put_object_from_filelike(io.BytesIO(b'stays loose'))
    (folder / 'packs' / '-1').write_bytes(b'left over')
    with pytest.raises(RepositoryError, match='interrupted repack'):
        backend.maintain(live=False)
    assert count(folder) == ObjectCount(packed=0, loose=1, pack_files=0)


def test_object_sizes_come_from_the_index(backend: DiskObjectStoreRepositoryBackend, folder: Path) -> None:
    """Sizes of loose, packed and compressed packed objects are the sizes of their content, answered from the
    container's records: with every pack file's bytes overwritten, the sizes are still given."""
    compressible = b'a' * 100_000
    packed = backend.put_objects_from_filelikes(streams([b'packed', compressible]))
    loose = backend.put_object_from_filelike(io.BytesIO(b'loose object'))
    backend.maintain(compress=True, live=False)
    assert is_compressed(folder, packed[1])
    later = backend.put_object_from_filelike(io.BytesIO(b'written after'))
    for pack in (folder / 'packs').iterdir():
        if pack.name.isdigit():
            pack.write_bytes(b'\0' * pack.stat().st_size)
    with pytest.raises(ValueError, match='Error while uncompressing data'):
        backend.get_object_content(packed[1])
    assert backend.get_object_sizes([*packed, loose, later]) == [6, 100_000, 12, 13]
