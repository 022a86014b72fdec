"""The plugin as provstore sees it (its entry point), and what only this backend promises."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pluggy
import pytest

import provstore.hookspecs
from provstore.exceptions import RepositoryError
from provstore.registry import Kind, PluginRegistry, PluginStatus
from provstore.repository import AbstractRepositoryBackend
from provstore_plainfolder.backend import PlainFolderRepositoryBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[PlainFolderRepositoryBackend]:
    """Return an initialised repository in ``tmp_path / 'repo'``, erased afterwards."""
    repository = PlainFolderRepositoryBackend(filepath=str(tmp_path / 'repo'))
    repository.initialise()
    yield repository
    repository.erase()


def temporary_files(backend: PlainFolderRepositoryBackend) -> list[str]:
    """Return the names in the repository's temporary folder."""
    return os.listdir(os.path.join(backend.folder, 'tmp'))


# -- the entry point ------------------------------------------------------------------------------------------


def plainfolder_entry_point() -> EntryPoint:
    """Return the installed ``plainfolder`` entry point of the ``provstore`` group."""
    (entry_point,) = [ep for ep in entry_points(group='provstore') if ep.name == 'plainfolder']
    return entry_point


def test_entry_point_is_declared() -> None:
    """The distribution declares the entry point ``plainfolder`` naming the hook module."""
    entry_point = plainfolder_entry_point()
    assert entry_point.value == 'provstore_plainfolder.hooks'
    assert entry_point.dist is not None
    assert entry_point.dist.name == 'provstore-plainfolder'
    assert entry_point.dist.version == '0.1.0'


def test_entry_point_loads_and_registers_the_backend() -> None:
    """Loading the entry point gives the hook module, whose hook returns the backend class."""
    hooks = plainfolder_entry_point().load()
    backends = hooks.register_repository_backends()
    assert backends == [PlainFolderRepositoryBackend]
    (backend_class,) = backends
    assert issubclass(backend_class, AbstractRepositoryBackend)
    assert not inspect.isabstract(backend_class)
    assert backend_class.name == 'example.plainfolder'
    assert inspect.getdoc(backend_class).splitlines()[0] == (  # type: ignore[union-attr]
        'Objects as plain files named by their sha256, in one folder you can browse and rsync.'
    )


def test_hooks_match_the_specs() -> None:
    """pluggy accepts the hook module against provstore's specs, with no hook left unmatched."""
    manager = pluggy.PluginManager(provstore.hookspecs.PROJECT_NAME)
    manager.add_hookspecs(provstore.hookspecs)
    manager.register(plainfolder_entry_point().load(), name='plainfolder')
    manager.check_pending()
    assert manager.hook.register_repository_backends() == [[PlainFolderRepositoryBackend]]


def test_provstore_resolves_the_backend_name(plugin_registry: PluginRegistry) -> None:
    """provstore's own registry loads the plugin and maps ``example.plainfolder`` to the backend class."""
    record = plugin_registry.get_plugin('plainfolder')
    assert record.status is PluginStatus.LOADED
    assert record.distribution == 'provstore-plainfolder'
    assert record.provides[Kind.REPOSITORY] == ('example.plainfolder',)
    assert plugin_registry.get_repository_backend('example.plainfolder') is PlainFolderRepositoryBackend


def test_hook_module_does_not_import_the_backend() -> None:
    """Importing the hook module, as listing plugins does, leaves the backend module unimported."""
    code = (
        'import sys, provstore_plainfolder.hooks; '
        "print('provstore_plainfolder.backend' in sys.modules, 'provstore.repository' in sys.modules)"
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['False', 'False']


# -- layout and identity --------------------------------------------------------------------------------------


def test_objects_are_plain_files_named_by_sha256(backend: PlainFolderRepositoryBackend) -> None:
    """An object is stored as ``objects/<first two hex>/<rest>`` holding exactly its content."""
    content = b'plain content'
    key = backend.put_object_from_filelike(io.BytesIO(content))
    assert key == hashlib.sha256(content).hexdigest()
    assert Path(backend.folder, 'objects', key[:2], key[2:]).read_bytes() == content


def test_uuid_is_written_once(backend: PlainFolderRepositoryBackend) -> None:
    """The uuid is a uuid4 in ``<folder>/uuid``, kept by a second initialise and seen by a second instance."""
    first = backend.uuid
    assert first is not None
    assert uuid.UUID(first).version == 4
    assert Path(backend.folder, 'uuid').read_text().strip() == first
    backend.initialise()
    assert backend.uuid == first
    assert PlainFolderRepositoryBackend(filepath=backend.folder).uuid == first


def test_uuid_is_none_before_initialise(tmp_path: Path) -> None:
    """A repository that was never initialised has no uuid and creates no folder by being constructed."""
    repository = PlainFolderRepositoryBackend(filepath=str(tmp_path / 'repo'))
    assert repository.uuid is None
    assert not repository.is_initialised
    assert not (tmp_path / 'repo').exists()


def test_initialise_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    """A folder already holding other files is refused, so that erase() could never delete them."""
    (tmp_path / 'notes.txt').write_text('mine')
    repository = PlainFolderRepositoryBackend(filepath=str(tmp_path))
    with pytest.raises(RepositoryError, match=r'not empty \(found notes.txt\)'):
        repository.initialise()
    assert not repository.is_initialised


def test_initialise_takes_no_options(tmp_path: Path) -> None:
    """An option this backend does not know is an error naming it, not silently ignored."""
    repository = PlainFolderRepositoryBackend(filepath=str(tmp_path / 'repo'))
    with pytest.raises(TypeError, match='takes no options, got compress'):
        repository.initialise(compress=True)


def test_erase_removes_the_folder(backend: PlainFolderRepositoryBackend) -> None:
    """erase() deletes the objects, the uuid and the folder itself."""
    backend.put_object_from_filelike(io.BytesIO(b'gone'))
    backend.erase()
    assert not os.path.exists(backend.folder)
    assert not backend.is_initialised
    assert backend.uuid is None


def test_put_before_initialise_is_an_error(tmp_path: Path) -> None:
    """Writing to a repository that was never initialised names the folder and the fix."""
    repository = PlainFolderRepositoryBackend(filepath=str(tmp_path / 'repo'))
    with pytest.raises(RepositoryError, match='is not initialised: call initialise'):
        repository.put_object_from_filelike(io.BytesIO(b'data'))


def test_empty_filepath_is_refused() -> None:
    """An empty filepath, which would mean the current directory, is refused."""
    with pytest.raises(ValueError, match='filepath must be a non-empty path'):
        PlainFolderRepositoryBackend(filepath='')


# -- atomic writes --------------------------------------------------------------------------------------------


def test_write_leaves_no_temporary_file(backend: PlainFolderRepositoryBackend) -> None:
    """A completed write, new content or a duplicate, leaves the temporary folder empty."""
    for _ in range(2):
        backend.put_object_from_filelike(io.BytesIO(b'x' * 3_000_000))
    assert temporary_files(backend) == []
    assert len(list(backend.list_objects())) == 1


class FailingStream(io.BytesIO):
    """A byte stream that gives two chunks, then fails as a broken network connection would."""

    def __init__(self) -> None:
        super().__init__(b'a' * 3 * 1024 * 1024)
        self.reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        """Return the next chunk, or raise on the third call."""
        self.reads += 1
        if self.reads > 2:
            raise ConnectionError('connection reset while reading')
        return super().read(size)


def test_failed_write_leaves_nothing(backend: PlainFolderRepositoryBackend) -> None:
    """A stream that fails half-way stores no object and leaves no temporary file."""
    with pytest.raises(ConnectionError, match='connection reset'):
        backend.put_object_from_filelike(FailingStream())
    assert temporary_files(backend) == []
    assert list(backend.list_objects()) == []


def test_concurrent_writers_of_the_same_content(backend: PlainFolderRepositoryBackend) -> None:
    """Many threads writing the same content at once all get its key, and one complete object remains."""
    content = os.urandom(2_000_000)

    def put(_: int) -> str:
        return backend.put_object_from_filelike(io.BytesIO(content))

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(put, range(32)))
    assert keys == {hashlib.sha256(content).hexdigest()}
    assert list(backend.list_objects()) == list(keys)
    assert backend.get_object_content(keys.pop()) == content
    assert temporary_files(backend) == []


def test_concurrent_writers_in_separate_processes(backend: PlainFolderRepositoryBackend, tmp_path: Path) -> None:
    """Processes writing the same content into the same folder agree on the key and leave one object."""
    source = tmp_path / 'source.bin'
    source.write_bytes(os.urandom(1_000_000))
    code = (
        'import sys\n'
        'from provstore_plainfolder.backend import PlainFolderRepositoryBackend\n'
        'print(PlainFolderRepositoryBackend(filepath=sys.argv[1]).put_object_from_file(sys.argv[2]))\n'
    )
    processes = [
        subprocess.Popen([sys.executable, '-c', code, backend.folder, str(source)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {process.communicate()[0].strip() for process in processes}
    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    assert keys == {hashlib.sha256(source.read_bytes()).hexdigest()}
    assert list(backend.list_objects()) == list(keys)
    assert temporary_files(backend) == []


# -- keys that are not keys -----------------------------------------------------------------------------------

VALID = hashlib.sha256(b'').hexdigest()
BAD_KEYS = [
    pytest.param('', id='empty'),
    pytest.param('abc', id='short'),
    pytest.param(VALID.upper(), id='uppercase'),
    pytest.param(VALID + '0', id='too-long'),
    pytest.param(VALID + '\n', id='trailing-newline'),
    pytest.param('g' * 64, id='not-hex'),
    pytest.param(VALID[:2] + '/' + VALID[3:], id='slash'),
    pytest.param('/etc/passwd'.ljust(64, 'a'), id='absolute'),
]


@pytest.mark.parametrize('key', BAD_KEYS)
def test_bad_keys_are_missing(backend: PlainFolderRepositoryBackend, key: str) -> None:
    """A key that is not 64 lowercase hex characters is never found, opened, hashed or deleted."""
    backend.put_object_from_filelike(io.BytesIO(b''))
    assert backend.has_objects([key, VALID]) == [False, True]
    with pytest.raises(FileNotFoundError, match='with key'):
        backend.open(key)
    with pytest.raises(FileNotFoundError, match='with key'):
        backend.get_object_hash(key)
    with pytest.raises(FileNotFoundError, match='nothing deleted'):
        backend.delete_objects([VALID, key])
    with pytest.raises(FileNotFoundError, match='with key'):
        backend.iter_object_streams([VALID, key])
    assert backend.has_object(VALID)


def test_a_key_cannot_reach_outside_the_folder(tmp_path: Path) -> None:
    """A 64-character key built to climb out of ``objects/`` neither reads nor deletes the file it points at."""
    folder = tmp_path / 'repo'
    repository = PlainFolderRepositoryBackend(filepath=str(folder))
    repository.initialise()
    key = '..../' + 's' * 59  # split as '..' and '../sss…', it names <folder>/objects/../../sss…
    secret = tmp_path / key[5:]
    secret.write_bytes(b'secret')
    assert Path(os.path.normpath(os.path.join(folder, 'objects', key[:2], key[2:]))) == secret
    assert not repository.has_object(key)
    with pytest.raises(FileNotFoundError, match='with key'):
        repository.open(key)
    with pytest.raises(FileNotFoundError, match='nothing deleted'):
        repository.delete_object(key)
    assert secret.read_bytes() == b'secret'


def test_stray_files_are_not_objects(backend: PlainFolderRepositoryBackend) -> None:
    """Files under ``objects/`` whose names do not make a key (editor backups, notes) are not listed."""
    key = backend.put_object_from_filelike(io.BytesIO(b'data'))
    prefix = Path(backend.folder, 'objects', key[:2])
    (prefix / (key[2:] + '~')).write_bytes(b'backup')
    (prefix.parent / 'README').write_text('not an object')
    (prefix.parent / 'zz').mkdir()
    assert list(backend.list_objects()) == [key]
    assert backend.get_info() == {'folder': backend.folder, 'objects': 1}


# -- reading, info and maintenance ----------------------------------------------------------------------------


def test_iter_object_streams_checks_keys_before_yielding(backend: PlainFolderRepositoryBackend) -> None:
    """Missing keys are all named when iter_object_streams() is called, before any stream is opened."""
    key = backend.put_object_from_filelike(io.BytesIO(b'one'))
    missing = ['1' * 64, '2' * 64]
    with pytest.raises(FileNotFoundError, match=f'{missing[0]}, {missing[1]}'):
        backend.iter_object_streams([key, *missing])
    assert [(k, stream.read()) for k, stream in backend.iter_object_streams([key])] == [(key, b'one')]


def test_get_info_counts_and_sizes(backend: PlainFolderRepositoryBackend) -> None:
    """get_info() counts objects; detailed, it also sums their sizes and counts temporary files."""
    for content in (b'a', b'bb', b'ccc', b'ccc'):
        backend.put_object_from_filelike(io.BytesIO(content))
    Path(backend.folder, 'tmp', 'put-left-over').write_bytes(b'partial')
    assert backend.get_info() == {'folder': backend.folder, 'objects': 3}
    assert backend.get_info(detailed=True) == {
        'folder': backend.folder,
        'objects': 3,
        'objects_size_bytes': 6,
        'temporary_files': 1,
    }


@pytest.fixture
def left_overs(backend: PlainFolderRepositoryBackend) -> tuple[Path, Path]:
    """Leave a stale temporary file (two hours old) and a fresh one, as crashed and running writers would."""
    stale = Path(backend.folder, 'tmp', 'put-stale')
    stale.write_bytes(b'12345')
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = Path(backend.folder, 'tmp', 'put-fresh')
    fresh.write_bytes(b'in progress')
    return stale, fresh


def test_maintain_live_removes_nothing(backend: PlainFolderRepositoryBackend, left_overs: tuple[Path, Path]) -> None:
    """Live maintenance counts stale temporary files but leaves them, since a slow writer may own them."""
    report = backend.maintain(live=True)
    assert report.details['stale_temporary_files'] == 1
    assert report.details['removed_temporary_files'] == 0
    assert all(path.exists() for path in left_overs)


def test_maintain_dry_run_reports(backend: PlainFolderRepositoryBackend, left_overs: tuple[Path, Path]) -> None:
    """A dry run of full maintenance reports the stale file and its size and removes nothing."""
    key = backend.put_object_from_filelike(io.BytesIO(b'deleted'))
    backend.delete_object(key)
    report = backend.maintain(dry_run=True, live=False)
    assert report.dry_run
    assert report.steps == (
        'Would remove 1 stale temporary file(s) (5 bytes)',
        'Would remove 1 empty object folder(s)',
    )
    assert all(path.exists() for path in left_overs)
    assert Path(backend.folder, 'objects', key[:2]).is_dir()


def test_maintain_full_removes_left_overs(backend: PlainFolderRepositoryBackend, left_overs: tuple[Path, Path]) -> None:
    """Full maintenance removes the stale temporary file and empty folders, keeping fresh files and objects."""
    stale, fresh = left_overs
    kept = backend.put_object_from_filelike(io.BytesIO(b'kept'))
    deleted = backend.put_object_from_filelike(io.BytesIO(b'deleted'))
    backend.delete_object(deleted)
    report = backend.maintain(live=False)
    assert report.details == {
        'stale_temporary_files': 1,
        'stale_temporary_bytes': 5,
        'removed_temporary_files': 1,
        'removed_folders': 1,
    }
    assert not stale.exists()
    assert fresh.exists()
    assert not Path(backend.folder, 'objects', deleted[:2]).exists()
    assert list(backend.list_objects()) == [kept]


def test_maintain_refuses_unknown_options(backend: PlainFolderRepositoryBackend) -> None:
    """An option meant for another backend is an error naming it."""
    with pytest.raises(TypeError, match='takes no other options, got compress'):
        backend.maintain(compress=True)
