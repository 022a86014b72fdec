"""``archive verify`` over a corpus of hostile and odd-but-legal archives (built by ``corpus.py``, once a session).

Each hostile archive is reported with its own clear line, by ``SqliteZipFormat.verify`` and by ``provstore archive
verify``; those whose defect is in the zip, the metadata or the database's structure are refused by ``open`` too,
with one of the lines ``verify`` reports. Each odd archive is sound: it verifies, opens and answers queries.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from corpus import HOSTILE, MANY_FILES, ODD, SQL_LABEL, Corpus, write_zip

from provstore.cli import cli
from provstore.exceptions import ArchiveError
from provstore.orm import Group, Node, QueryBuilder
from provstore.repository import Repository
from provstore.storage import EntityStorage, EntityType
from provstore_sqlite_zip.format import SqliteZipFormat
from provstore_sqlite_zip.zipped import Problems

HOSTILE_BY_ID = {case.id: case for case in HOSTILE}
ODD_BY_ID = {case.id: case for case in ODD}


@pytest.fixture
def cache(config_folder: Path) -> Path:
    """The folder of cached databases of this test (under its ``$PROVSTORE_PATH``)."""
    return config_folder / 'cache' / 'sqlite_zip'


def cached_files(cache: Path) -> list[Path]:
    """Return every file in the cache folder (temporary files too)."""
    return sorted(path for path in cache.rglob('*') if path.is_file()) if cache.exists() else []


def invoke(*args: str) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args))


def test_the_corpus_is_large_enough() -> None:
    """At least forty archives, ids unique, each hostile one with a fragment to find."""
    ids = [case.id for case in (*HOSTILE, *ODD)]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert all(case.expected for case in HOSTILE)


@pytest.mark.parametrize('case_id', list(HOSTILE_BY_ID))
def test_hostile_archive_is_reported(case_id: str, corpus: Corpus, cache: Path) -> None:
    """verify reports the defect in one line naming the file, caches nothing; open refuses it when it should."""
    case = HOSTILE_BY_ID[case_id]
    path = corpus.path(case_id)
    problems = SqliteZipFormat.verify(path)
    assert any(case.expected in line for line in problems), problems
    assert all(line.startswith(f'{path}: ') and '\n' not in line and len(line) <= 400 for line in problems)
    assert cached_files(cache) == [], 'verify kept a database of an archive that is not sound'
    if not case.needs_hashes:
        assert any(case.expected in line for line in SqliteZipFormat.verify(path, check_hashes=False))
    else:
        assert not any(case.expected in line for line in SqliteZipFormat.verify(path, check_hashes=False))
    if case.open_refuses:
        with pytest.raises(ArchiveError) as refused:
            SqliteZipFormat.open(path)
        assert str(refused.value) in problems
    else:
        SqliteZipFormat.open(path).close()


@pytest.mark.parametrize('case_id', list(ODD_BY_ID))
def test_odd_archive_is_sound(case_id: str, corpus: Corpus, cache: Path) -> None:
    """verify finds nothing (and keeps the database in the cache for open); the archive opens, answers a query and
    gives the files of its nodes, their content hashing to their keys."""
    case = ODD_BY_ID[case_id]
    path = corpus.path(case_id)
    assert SqliteZipFormat.verify(path) == []
    assert [file.suffix for file in cached_files(cache)] == ['.sqlite3']
    storage = SqliteZipFormat.open(path)
    try:
        assert isinstance(storage, EntityStorage)
        assert QueryBuilder(storage).append(Node).count() == case.nodes
        assert len(cached_files(cache)) == 1, 'open extracted the database again'
        repository = storage.get_repository()
        files = 0
        for row in storage.iter_rows(EntityType.NODE):
            keys = Repository.from_serialized(repository, row['repository_metadata'] or {}).get_file_keys()
            files += len(keys)
            for key in keys[:3]:
                assert hashlib.sha256(repository.get_object_content(key)).hexdigest() == key
        assert (files > 0) == (case.nodes > 0)
        if case_id == 'hundred-thousand-files':
            assert files >= MANY_FILES
        if case_id == 'sql-looking-labels':
            labels = QueryBuilder(storage).append(Node, project='label').all(flat=True)
            assert labels == [SQL_LABEL] * case.nodes
            groups = QueryBuilder(storage).append(Group, project='label').all(flat=True)
            assert groups and all(label.startswith(SQL_LABEL) for label in groups)
    finally:
        storage.close()


def test_every_problem_is_reported_not_only_the_first(corpus: Corpus, tmp_path: Path) -> None:
    """An archive with defects of several kinds gets a line for each: member names, rows and objects."""
    path = tmp_path / 'many.aiida'
    with zipfile.ZipFile(corpus.path('row-link-self')) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    objects = [name for name, _ in members if name.startswith('repo/')]
    members = [(name, content) for name, content in members if name != objects[0]]
    write_zip(path, [*members, ('../evil', b'x'), ('repo/' + 'a' * 64, b'not its hash')])
    problems = SqliteZipFormat.verify(path)
    for expected in ('escapes the archive', 'links from a node to itself', 'missing from the zip', 'not to its name'):
        assert any(expected in line for line in problems), (expected, problems)


def test_many_defects_of_one_kind_make_a_bounded_report(corpus: Corpus, tmp_path: Path) -> None:
    """Thirty escaping names give the first lines and one line counting the rest."""
    path = tmp_path / 'names.aiida'
    with zipfile.ZipFile(corpus.sound) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    write_zip(path, [*members, *((f'../evil{number}', b'x') for number in range(30))])
    problems = SqliteZipFormat.verify(path)
    escaping = [line for line in problems if 'escapes the archive' in line]
    assert len(escaping) == Problems.per_kind
    assert f'{path}: ... and {30 - Problems.per_kind} more member names that escape' in problems


def test_a_missing_file(tmp_path: Path) -> None:
    """A path where there is no file: one line."""
    assert SqliteZipFormat.verify(tmp_path / 'nowhere.aiida') == [f'{tmp_path / "nowhere.aiida"}: no such archive file']


def test_cli_sound_archive_exits_0(corpus: Corpus) -> None:
    """A sound archive: one line saying so, exit 0; --json gives no problems."""
    path = corpus.path('sound')
    result = invoke('archive', 'verify', str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f'{path}: sound, no problem found\n'
    result = invoke('archive', 'verify', str(path), '--json')
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {'file': str(path), 'problems': []}


def test_cli_prints_each_problem_and_exits_1(corpus: Corpus) -> None:
    """A hostile archive: one line per problem on stdout, exit 1; --json lists them."""
    path = corpus.path('row-link-create-from-data')
    result = invoke('archive', 'verify', str(path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(f'{path}: ') for line in lines)
    assert any('links of a type not allowed between their nodes' in line for line in lines)
    report = json.loads(invoke('archive', 'verify', str(path), '--json').stdout)
    assert report == {'file': str(path), 'problems': lines}


def test_cli_no_hash_skips_the_contents(corpus: Corpus) -> None:
    """An object whose content does not match its name passes with --no-hash and fails without."""
    path = corpus.path('object-wrong-content')
    assert invoke('archive', 'verify', str(path), '--no-hash').exit_code == 0
    refused = invoke('archive', 'verify', str(path))
    assert refused.exit_code == 1
    assert 'not to its name' in refused.stdout


def test_cli_usage_exits_2() -> None:
    """No FILE is a usage error."""
    assert invoke('archive', 'verify').exit_code == 2
