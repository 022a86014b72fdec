"""The frontend ``Repository``: a virtual file tree over every installed first-party backend."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from provstore.exceptions import InvalidPathError, ReadOnlyStorageError
from provstore.registry import get_repository_backend
from provstore.repository import AbstractRepositoryBackend, File, FileType, Repository
from provstore.repository.repository import clean_path

BACKENDS = ['sandbox', 'disk_objectstore']

# The shape aiida-core stores in db_dbnode.repository_metadata (a CalcJobNode from its export fixtures).
AIIDA_SHAPE = {
    'o': {
        '.gitignore': {'k': 'k-gitignore'},
        '.aiida': {'o': {'job_tmpl.json': {'k': 'k-tmpl'}, 'calcinfo.json': {'k': 'k-calcinfo'}}},
        'out': {'o': {'.gitignore': {'k': 'k-gitignore'}}},
        'empty': {},
        '_aiidasubmit.sh': {'k': 'k-submit'},
    }
}

BAD_PATHS = ['../x', '/etc/passwd', 'a//b', 'a/../b', './a', 'a/.', '..', 'a\\b', 'nul\x00byte', '//']


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AbstractRepositoryBackend]:
    """An initialised backend of each first-party kind, found through the registry."""
    instance = get_repository_backend(request.param)(filepath=str(tmp_path / 'repo'))
    instance.initialise()
    yield instance
    instance.erase()


@pytest.fixture
def repository(backend: AbstractRepositoryBackend) -> Repository:
    """An empty repository over ``backend``."""
    return Repository(backend)


def make_tree(root: Path) -> Path:
    """Write a small real folder tree under ``root`` and return it."""
    (root / 'sub' / 'deeper').mkdir(parents=True)
    (root / 'empty').mkdir()
    (root / 'a.txt').write_bytes(b'alpha')
    (root / 'sub' / 'b.bin').write_bytes(bytes(range(256)))
    (root / 'sub' / 'deeper' / 'c.txt').write_bytes(b'alpha')
    return root


def test_put_from_bytes_stream_and_file(repository: Repository, tmp_path: Path) -> None:
    """Files put from bytes, a stream and a real file read back byte-exact, creating parent directories."""
    source = tmp_path / 'source.dat'
    source.write_bytes(b'from a file')
    repository.put_object_from_bytes(b'from bytes', 'x/bytes.txt')
    repository.put_object_from_filelike(io.BytesIO(b'from a stream'), PurePosixPath('x/y/stream.txt'))
    repository.put_object_from_file(source, 'file.dat')
    assert repository.get_object_content('x/bytes.txt') == b'from bytes'
    with repository.open('x/y/stream.txt') as handle:
        assert handle.read() == b'from a stream'
    assert repository.get_object_content('file.dat') == b'from a file'
    assert repository.list_object_names() == ['file.dat', 'x']
    assert repository.get_object('x') == File('x', FileType.DIRECTORY)
    assert repository.get_object('x/bytes.txt').file_type is FileType.FILE


def test_put_replaces_a_file_but_not_a_directory(repository: Repository) -> None:
    """Writing to an existing file replaces it; writing to a directory or through a file is refused."""
    repository.put_object_from_bytes(b'one', 'f')
    repository.put_object_from_bytes(b'two', 'f')
    assert repository.get_object_content('f') == b'two'
    repository.create_directory('d/e')
    with pytest.raises(IsADirectoryError, match="'d/e' is a directory"):
        repository.put_object_from_bytes(b'x', 'd/e')
    with pytest.raises(NotADirectoryError, match="'f' is a file"):
        repository.put_object_from_bytes(b'x', 'f/inside')
    with pytest.raises(NotADirectoryError, match="'f' is a file"):
        repository.create_directory('f/sub')
    with pytest.raises(IsADirectoryError, match='give a file name'):
        repository.put_object_from_bytes(b'x', '')


def test_non_byte_input_is_refused(repository: Repository) -> None:
    """Text streams and text content are refused with TypeError, and nothing is added."""
    with pytest.raises(TypeError, match='byte stream'):
        repository.put_object_from_filelike(io.StringIO('text'), 'a.txt')  # type: ignore[arg-type]
    with pytest.raises(TypeError, match='content must be bytes, got str'):
        repository.put_object_from_bytes('text', 'a.txt')  # type: ignore[arg-type]
    assert repository.is_empty()


def test_put_object_from_tree_and_walk(repository: Repository, tmp_path: Path) -> None:
    """A real folder tree is stored under a prefix, empty folders included, and walked bottom-up, in aiida-core's
    order: each directory after everything below it."""
    repository.put_object_from_tree(make_tree(tmp_path / 'tree'), 'in')
    walked = [(str(path), dirs, files) for path, dirs, files in repository.walk()]
    assert walked == [
        ('in/empty', [], []),
        ('in/sub/deeper', [], ['c.txt']),
        ('in/sub', ['deeper'], ['b.bin']),
        ('in', ['empty', 'sub'], ['a.txt']),
        ('.', ['in'], []),
    ]
    assert repository.get_object_content('in/sub/b.bin') == bytes(range(256))
    assert [str(p) for p, _, _ in repository.walk('in/sub')] == ['in/sub/deeper', 'in/sub']
    assert len(repository.get_file_keys()) == 3


def test_put_object_from_tree_refuses_directory_symlinks(repository: Repository, tmp_path: Path) -> None:
    """A symlink to a directory inside the tree is refused, so a tree can never loop; file symlinks are read."""
    tree = make_tree(tmp_path / 'tree')
    (tree / 'link.txt').symlink_to(tree / 'a.txt')
    repository.put_object_from_tree(tree)
    assert repository.get_object_content('link.txt') == b'alpha'
    (tree / 'loop').symlink_to(tree)
    with pytest.raises(InvalidPathError, match='symlink to a directory'):
        Repository(repository.backend).put_object_from_tree(tree)
    with pytest.raises(NotADirectoryError, match='is not a directory'):
        repository.put_object_from_tree(tree / 'a.txt')


def test_listing_errors(repository: Repository) -> None:
    """Listing a missing path or a file, and opening a directory or a missing file, raise clear errors."""
    repository.put_object_from_bytes(b'x', 'd/f')
    with pytest.raises(FileNotFoundError, match="No file or directory 'nope'"):
        repository.list_objects('nope')
    with pytest.raises(NotADirectoryError, match="'d/f' is a file"):
        repository.list_objects('d/f')
    with pytest.raises(IsADirectoryError, match="'d' is a directory"), repository.open('d'):
        pass
    with pytest.raises(FileNotFoundError, match="'d/g'"):
        repository.get_object_content('d/g')
    assert repository.has_object('d/f')
    assert repository.has_object('d')
    assert not repository.has_object('d/g')
    assert not repository.has_object('d/f/g')


def test_delete_object(repository: Repository) -> None:
    """Deleting a file removes it from the tree; hard delete also removes the backend object."""
    soft = repository.put_object_from_bytes(b'soft', 'd/soft')
    hard = repository.put_object_from_bytes(b'hard', 'd/hard')
    with pytest.raises(OSError, match="directory 'd' is not empty"):
        repository.delete_object('d')
    repository.delete_object('d/soft')
    repository.delete_object('d/hard', hard_delete=True)
    assert repository.list_object_names('d') == []
    assert repository.backend.has_objects([soft, hard]) == [True, False]
    repository.delete_object('d')
    assert repository.is_empty()
    with pytest.raises(FileNotFoundError, match="'d'"):
        repository.delete_object('d')
    with pytest.raises(InvalidPathError, match='cannot delete the root'):
        repository.delete_object('')


def test_erase_and_reset(repository: Repository) -> None:
    """Erase empties the tree and deletes its objects (shared ones once); reset only forgets the tree."""
    keys = [repository.put_object_from_bytes(b'same', name) for name in ('a', 'b')]
    other = Repository(repository.backend)
    kept = other.put_object_from_bytes(b'kept', 'k')
    other.reset()
    assert other.is_empty()
    assert repository.backend.has_object(kept)
    repository.erase()
    assert repository.is_empty()
    assert not any(repository.backend.has_objects(keys))


@pytest.mark.parametrize('bad', BAD_PATHS)
def test_bad_paths_are_refused(repository: Repository, bad: str) -> None:
    """Absolute paths, '..' and '.' parts, empty parts, backslashes and NUL are refused, and nothing is written."""
    with pytest.raises(InvalidPathError, match='repository path'):
        repository.put_object_from_bytes(b'evil', bad)
    with pytest.raises(InvalidPathError, match='repository path'):
        repository.create_directory(bad)
    with pytest.raises(InvalidPathError, match='repository path'):
        repository.has_object(bad)
    assert repository.is_empty()
    assert list(repository.backend.list_objects()) == []


def test_clean_path_accepts_clean_paths() -> None:
    """Clean relative paths, with or without a trailing slash, and the root are accepted."""
    assert clean_path('a/b.txt') == PurePosixPath('a/b.txt')
    assert clean_path('a/b/') == PurePosixPath('a/b')
    assert clean_path(None) == clean_path('') == PurePosixPath()
    with pytest.raises(InvalidPathError, match='must be a string, got int'):
        clean_path(3)  # type: ignore[arg-type]


def test_serialize_round_trip_in_aiida_shape(backend: AbstractRepositoryBackend) -> None:
    """aiida-core's repository_metadata is read and written back identically, empty folders included."""
    repository = Repository.from_serialized(backend, AIIDA_SHAPE)
    assert repository.serialize() == AIIDA_SHAPE
    assert json.loads(json.dumps(repository.serialize())) == AIIDA_SHAPE
    assert repository.get_object('.aiida/calcinfo.json').key == 'k-calcinfo'
    assert repository.list_object_names('empty') == []
    assert sorted(repository.get_file_keys()) == sorted(
        ['k-gitignore', 'k-tmpl', 'k-calcinfo', 'k-gitignore', 'k-submit']
    )
    assert Repository(backend).serialize() == {}
    assert Repository.from_serialized(backend, {}).is_empty()


def test_serialize_of_written_files(repository: Repository) -> None:
    """A written tree serialises to nested "o" objects with "k" keys of the backend."""
    key = repository.put_object_from_bytes(b'content', 'dir/file.txt')
    repository.create_directory('empty')
    assert repository.serialize() == {'o': {'dir': {'o': {'file.txt': {'k': key}}}, 'empty': {}}}
    rebuilt = Repository.from_serialized(repository.backend, repository.serialize())
    assert rebuilt.get_object_content('dir/file.txt') == b'content'


@pytest.mark.parametrize(
    ('serialized', 'error', 'match'),
    [
        ({'o': {'..': {'k': 'x'}}}, InvalidPathError, r"'\.\.'"),
        ({'o': {'a/b': {'k': 'x'}}}, InvalidPathError, 'single path part'),
        ({'o': {'/etc': {}}}, InvalidPathError, 'absolute'),
        ({'o': {'': {'k': 'x'}}}, InvalidPathError, 'single path part'),
        ({'o': {'a': {'k': 3}}}, ValueError, 'must be'),
        ({'o': {'a': {'k': 'x', 'extra': 1}}}, ValueError, 'must be'),
        ({'o': {'a': 'not an object'}}, ValueError, 'must be an object'),
        ({'o': ['list']}, ValueError, '"o" must be an object'),
        ({'x': {}}, ValueError, 'unknown keys'),
        ([], ValueError, 'must be an object'),
    ],
)
def test_from_serialized_refuses_untrusted_shapes(
    backend: AbstractRepositoryBackend, serialized: Any, error: type[Exception], match: str
) -> None:
    """Metadata from an archive with escaping names or a wrong shape is refused with a clear error."""
    with pytest.raises(error, match=match):
        Repository.from_serialized(backend, serialized)


def test_copy_tree(repository: Repository, tmp_path: Path) -> None:
    """copy_tree writes the whole tree, a subtree or a single file into a real folder."""
    repository.put_object_from_tree(make_tree(tmp_path / 'tree'))
    repository.copy_tree(tmp_path / 'all')
    assert (tmp_path / 'all' / 'sub' / 'deeper' / 'c.txt').read_bytes() == b'alpha'
    assert (tmp_path / 'all' / 'empty').is_dir()
    repository.copy_tree(tmp_path / 'part', 'sub')
    assert sorted(os.listdir(tmp_path / 'part')) == ['b.bin', 'deeper']
    with pytest.raises(NotADirectoryError, match=r'sub/b\.bin'):  # as aiida-core: copy_tree copies a directory
        repository.copy_tree(tmp_path / 'one', 'sub/b.bin')
    assert not (tmp_path / 'one').exists()
    with pytest.raises(FileNotFoundError, match="'missing'"):
        repository.copy_tree(tmp_path / 'none', 'missing')


@pytest.mark.parametrize('target', ['.', 'relative/path', Path('relative')])
def test_copy_tree_refuses_a_relative_target(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str | Path
) -> None:
    """A target that is not an absolute path is refused, naming it, and nothing is written in the working directory."""
    repository.put_object_from_bytes(b'payload', 'sub/file.txt')
    working = tmp_path / 'working'
    working.mkdir()
    monkeypatch.chdir(working)
    with pytest.raises(InvalidPathError, match=rf"copy_tree target '{os.fspath(target)}' is not an absolute path"):
        repository.copy_tree(target)
    assert list(working.iterdir()) == []


def test_copy_tree_never_writes_outside_target(repository: Repository, tmp_path: Path) -> None:
    """A symlink planted in the target, to a folder or a file outside it, is never written through."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    repository.put_object_from_bytes(b'payload', 'sub/file.txt')
    repository.put_object_from_bytes(b'payload', 'top.txt')

    target = tmp_path / 'target'
    target.mkdir()
    (target / 'sub').symlink_to(outside)
    with pytest.raises(InvalidPathError, match='refusing to write'):
        repository.copy_tree(target)
    assert list(outside.iterdir()) == []

    other = tmp_path / 'target2'
    other.mkdir()
    victim = outside / 'victim.txt'
    victim.write_bytes(b'untouched')
    (other / 'top.txt').symlink_to(victim)
    with pytest.raises(InvalidPathError, match='refusing to write'):
        repository.copy_tree(other)
    assert victim.read_bytes() == b'untouched'


def test_hash_depends_on_content_and_layout_only(tmp_path: Path) -> None:
    """The tree hash is the same for the same files on any backend and changes with any content or name."""
    hashes = []
    for name in BACKENDS:
        backend = get_repository_backend(name)(filepath=str(tmp_path / name))
        backend.initialise()
        repository = Repository(backend)
        repository.put_object_from_bytes(b'one', 'a/x')
        repository.create_directory('b')
        hashes.append(repository.hash())
        repository.put_object_from_bytes(b'two', 'a/x')
        assert repository.hash() != hashes[-1]
        repository.put_object_from_bytes(b'one', 'a/x')
        repository.create_directory('c')
        assert repository.hash() != hashes[-1]
        backend.erase()
    assert len(set(hashes)) == 1


def test_clone_across_backends(tmp_path: Path) -> None:
    """Cloning streams every file of a sandbox repository into a disk-objectstore one, keeping the tree."""
    sandbox = get_repository_backend('sandbox')(filepath=str(tmp_path / 'sandbox'))
    store = get_repository_backend('disk_objectstore')(filepath=str(tmp_path / 'dos'))
    for backend in (sandbox, store):
        backend.initialise()
    source = Repository(sandbox)
    source.put_object_from_tree(make_tree(tmp_path / 'tree'))
    target = Repository(store)
    target.clone(source)
    assert target.hash() == source.hash()
    assert [list(w) for w in target.walk()] == [list(w) for w in source.walk()]
    assert target.get_object_content('sub/b.bin') == bytes(range(256))
    assert set(target.get_file_keys()) <= set(store.list_objects())
    with pytest.raises(ValueError, match='only clone into an empty repository'):
        target.clone(source)
    sandbox.erase()
    store.erase()


def test_a_read_only_backend_refuses_every_put_and_delete(backend: AbstractRepositoryBackend, tmp_path: Path) -> None:
    """With ``read_only`` set, every put and delete of the base class raises ReadOnlyStorageError naming the backend,
    before reading its argument, and the objects stay as they were."""
    key = backend.put_object_from_filelike(io.BytesIO(b'kept'))
    read_only = type(backend)
    frozen: Any = type('Frozen', (read_only,), {'read_only': True})(filepath=str(tmp_path / 'repo'))
    source = tmp_path / 'source.bin'
    source.write_bytes(b'new')
    handle = io.BytesIO(b'new')
    attempts = [
        lambda: frozen.put_object_from_filelike(handle),
        lambda: frozen.put_object_from_file(source),
        lambda: frozen.put_objects_from_filelikes([handle]),
        lambda: frozen.delete_objects([key]),
        lambda: frozen.delete_object(key),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyStorageError, match=rf'\({read_only.name}\) is read-only'):
            attempt()
    assert handle.tell() == 0
    assert sorted(frozen.list_objects()) == [key]
    assert frozen.get_object_content(key) == b'kept'
    backend.check_writable()


def test_directories_and_files_as_aiida_core_reads_them(repository: Repository, tmp_path: Path) -> None:
    """get_directory and get_file return the entry (a directory's entries under objects) or raise aiida-core's
    errors; '.' and None are the root."""
    repository.put_object_from_tree(make_tree(tmp_path / 'tree'))
    root = repository.get_directory()
    assert root == repository.get_directory('.') == repository.get_directory(None)
    assert root.is_dir
    assert sorted(root.objects) == repository.list_object_names()
    sub = repository.get_directory('sub')
    assert sorted(sub.objects) == ['b.bin', 'deeper']
    assert sub.objects['deeper'].objects['c.txt'].key == repository.get_file('sub/deeper/c.txt').key
    assert repository.get_file('sub/b.bin').objects == {}
    assert repository.list_object_names('.') == repository.list_object_names()
    with pytest.raises(NotADirectoryError, match=r'sub/b\.bin'):
        repository.get_directory('sub/b.bin')
    with pytest.raises(IsADirectoryError, match="'sub'"):
        repository.get_file('sub')
    with pytest.raises(FileNotFoundError, match='missing'):
        repository.get_file('missing')
    with pytest.raises(TypeError, match='None'):
        repository.get_file(None)  # type: ignore[arg-type]


@pytest.mark.parametrize('bad', [3, b'a/b', ['a'], '/absolute/path'])
def test_paths_of_the_wrong_type_or_absolute_raise_type_error(repository: Repository, bad: object) -> None:
    """As aiida-core: a TypeError (still an InvalidPathError, naming the path)."""
    with pytest.raises(TypeError, match='repository path must be') as caught:
        repository.has_object(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidPathError)
    with pytest.raises(TypeError, match='repository path must be'):
        repository.put_object_from_bytes(b'x', bad)  # type: ignore[arg-type]
    assert repository.is_empty()


def test_copy_tree_target_must_be_absolute_type_error(repository: Repository) -> None:
    with pytest.raises(TypeError, match='not an absolute path'):
        repository.copy_tree('relative')


def test_flatten_uuid_and_is_initialised(repository: Repository) -> None:
    """flatten lists files with their keys and directories (ending in the delimiter) with None."""
    file_key = repository.put_object_from_bytes(b'one', 'a/b/file.txt')
    top_key = repository.put_object_from_bytes(b'two', 'top.txt')
    repository.create_directory('a/empty')
    assert Repository.flatten(repository.serialize()) == {
        'a/': None,
        'a/b/': None,
        'a/b/file.txt': file_key,
        'a/empty/': None,
        'top.txt': top_key,
    }
    assert Repository.flatten(repository.serialize(), delimiter=':')['a:b:file.txt'] == file_key
    assert Repository.flatten(None) == {}
    assert Repository.flatten({}) == {}
    assert repository.uuid == repository.backend.uuid
    assert repository.is_initialised is repository.backend.is_initialised is True


def test_directory_and_tree_arguments_raise_type_error(repository: Repository, tmp_path: Path) -> None:
    """As aiida-core: create_directory(None), and put_object_from_tree of no folder or a relative one."""
    with pytest.raises(TypeError, match='None'):
        repository.create_directory(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match='absolute'):
        repository.put_object_from_tree(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match='absolute'):
        repository.put_object_from_tree('relative/folder')
    repository.create_directory('.')
    assert repository.is_empty()
