"""Wrong results and tracebacks found by probes, each shown gone on ``sqlite_dos`` and ``psql_dos``."""

from __future__ import annotations

import pytest

from provstore.orm import Data, Dict, Int, Node, QueryBuilder, store_nodes
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
