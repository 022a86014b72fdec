"""Wrong results and tracebacks found by probes, each shown gone on ``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provstore.cli import cli
from provstore.config import load_config
from provstore.exceptions import ConfigError
from provstore.orm import Data, Dict, FolderData, Int, Node, QueryBuilder, store_nodes
from provstore.storage import EntityStorage


@pytest.mark.parametrize(
    ('classes', 'subclassing', 'expected'),
    [
        (Node, True, ['data', 'dict-1', 'dict-2', 'int']),
        (Node, False, []),
        (Data, True, ['data', 'dict-1', 'dict-2', 'int']),
        (Data, False, ['data']),
        (Dict, True, ['dict-1', 'dict-2']),
        (Dict, False, ['dict-1', 'dict-2']),
        ((Node, Int), False, ['int']),
        ((Data, Int), False, ['data', 'int']),
    ],
)
def test_subclassing_false_matches_the_exact_type_only(
    storage: EntityStorage, classes: type[Node] | tuple[type[Node], ...], subclassing: bool, expected: list[str]
) -> None:
    """``subclassing=False`` matches only nodes whose ``node_type`` is the class's own: no node is a plain Node.

    The query gives the same rows after a round trip through ``as_dict``/``from_dict``.
    """
    store_nodes([Data(label='data'), Dict({'a': 1}, label='dict-1'), Dict({}, label='dict-2'), Int(3, label='int')])
    query = QueryBuilder().append(classes, subclassing=subclassing, project='label')
    assert sorted(query.all(flat=True)) == expected
    assert sorted(QueryBuilder.from_dict(query.as_dict()).all(flat=True)) == expected
    assert query.count() == len(expected)


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args), input=input)


def error_line(*args: str, input: str | None = None) -> str:
    """Run the CLI, check that it failed with exit code 1 and one line on stderr (no traceback); return that line."""
    result = invoke(*args, input=input)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


HUGE = str(10**30)
"""A limit beyond signed 64 bits."""

LIMIT_REFUSED = f'Error: limit must be at most {2**63 - 1} (2**63 - 1), got {HUGE}'


@pytest.mark.usefixtures('storage')
def test_node_list_with_a_limit_beyond_64_bits() -> None:
    """``node list --limit 10**30`` is one clear error line and exit code 1, not an OverflowError."""
    assert error_line('node', 'list', '--limit', HUGE) == LIMIT_REFUSED


@pytest.mark.usefixtures('storage')
def test_query_with_a_limit_beyond_64_bits() -> None:
    """A query whose limit, in the JSON or from ``--limit``, is beyond 64 bits: one clear error line, exit code 1."""
    query = {'path': [{'tag': 'n', 'entity_type': 'node'}], 'project': {'n': ['id']}}
    assert error_line('query', '--limit', HUGE, input=json.dumps(query)) == LIMIT_REFUSED
    assert error_line('query', input=json.dumps({**query, 'limit': 10**30})) == LIMIT_REFUSED
    offset = error_line('query', input=json.dumps({**query, 'offset': 10**30}))
    assert offset == LIMIT_REFUSED.replace('limit', 'offset')


@pytest.mark.usefixtures('storage')
@pytest.mark.parametrize('opening', ['[', '{"a": '])
def test_query_nested_too_deeply(opening: str) -> None:
    """A query file nested 100,000 levels deep is one clear error line and exit code 1, not a RecursionError."""
    closing = ']' if opening == '[' else '}'
    text = opening * 100_000 + '1' + closing * 100_000
    assert error_line('query', input=text) == 'Error: The query is nested too deeply to be read as JSON'


@pytest.mark.usefixtures('storage')
@pytest.mark.parametrize(
    ('identifier', 'shown'),
    [
        ('1' * 5000, '11111111111111111111... (5000 digits)'),
        ('9' * 19, '9' * 19),
        ('0' * 10 + str(2**63), '0' * 10 + str(2**63)),
    ],
)
def test_node_show_with_a_pk_beyond_64_bits(identifier: str, shown: str) -> None:
    """``node show`` of a pk no node can have (5,000 digits, or just beyond 64 bits) is one clear error line."""
    line = error_line('node', 'show', identifier)
    assert line == f'Error: No node with pk {shown}: a pk is at most {2**63 - 1}'


def test_config_file_of_random_bytes_names_the_file(config_folder: Path) -> None:
    """A configuration file of random bytes (not UTF-8, or not JSON) gives one error line naming the file."""
    path = config_folder / 'config.json'
    for content in (bytes(range(256)) * 4, b'\x00garbage\xff' * 100, b'[' * 100_000):
        path.write_bytes(content)
        line = error_line('profile', 'list')
        assert line.startswith(f'Error: {path}: '), line
        with pytest.raises(ConfigError, match=f'^{re.escape(str(path))}: '):
            load_config(config_folder)


@pytest.mark.parametrize('full', [False, True])
def test_a_dead_writers_pack_lock_fails_no_store_and_maintenance_clears_it(storage: EntityStorage, full: bool) -> None:
    """A ``packs/N.lock`` left by a killed writer never fails a batch store of files; ``storage maintain`` removes it.

    (A real writer killed mid-write is the repository contract's ``test_writer_killed_mid_write``.)
    """
    packs = Path(storage.get_repository().get_info()['filepath']) / 'packs'
    first = FolderData()
    first.base.repository.put_object_from_bytes(b'first', 'a.txt')
    store_nodes([first])
    (packs / '0.lock').touch()
    second = FolderData()
    second.base.repository.put_object_from_bytes(b'second', 'b.txt')
    store_nodes([second])
    assert second.base.repository.get_object_content('b.txt', mode='rb') == b'second'
    (packs / '0.lock').touch()
    result = invoke('storage', 'maintain', *(['--full', '--yes'] if full else []))
    assert result.exit_code == 0, result.output
    assert 'removed pack locks left by dead writers: packs/0.lock' in result.output
    assert not list(packs.glob('*.lock'))
