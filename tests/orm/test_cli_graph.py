"""``provstore node graph``: the provenance around a node as DOT, SVG and PNG, on real storage (sqlite_dos and
psql_dos), drawn by the real Graphviz ``dot``.

The tests that draw need ``dot`` on PATH: without it they are skipped with a reason in capitals, or fail when the
environment variable ``CI`` is ``true`` (``.ci/run`` installs Graphviz), as the PostgreSQL tests do.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import error, invoke, ok

from provstore.orm import CalcFunctionNode, Int, LinkType, Node, WorkFunctionNode, store_nodes
from provstore.storage import EntityStorage

SVG = '{http://www.w3.org/2000/svg}'


@pytest.fixture
def dot_program() -> str:
    """Return the path of Graphviz ``dot``; skip loudly without it, or fail when ``CI=true``."""
    program = shutil.which('dot')
    if program is None:
        reason = 'GRAPHVIZ `dot` NOT ON PATH: the SVG and PNG tests of `node graph` DID NOT RUN'
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(f'{reason}; CI=true makes this a failure (.ci/run installs Graphviz)', pytrace=False)
        pytest.skip(f'{reason}; install graphviz, or set CI=true to make this a failure')
    return program


@dataclass
class Chain:
    """x and y go into calc (called by work, which also takes x), calc creates total (which work returns);
    total goes into calc2, which creates out."""

    x: Node
    y: Node
    work: Node
    calc: Node
    total: Node
    calc2: Node
    out: Node

    def name(self, node: Node) -> str:
        """The name of ``node`` in the DOT text."""
        return f'N{node.pk}'


@pytest.fixture
def chain(storage: EntityStorage) -> Chain:
    """Store the graph of :class:`Chain`."""
    x, y = Int(1, storage=storage), Int(2, label='y value', storage=storage)
    work = WorkFunctionNode(label='add_work', storage=storage)
    work.base.links.add_incoming(x, LinkType.INPUT_WORK, 'x')
    calc = CalcFunctionNode(label='add', storage=storage)
    calc.base.links.add_incoming(x, LinkType.INPUT_CALC, 'x')
    calc.base.links.add_incoming(y, LinkType.INPUT_CALC, 'y')
    calc.base.links.add_incoming(work, LinkType.CALL_CALC, 'CALL')
    total = Int(3, storage=storage)
    total.base.links.add_incoming(calc, LinkType.CREATE, 'result')
    calc2 = CalcFunctionNode(label='double', storage=storage)
    calc2.base.links.add_incoming(total, LinkType.INPUT_CALC, 'value')
    out = Int(6, storage=storage)
    out.base.links.add_incoming(calc2, LinkType.CREATE, 'result')
    store_nodes([x, y, work, calc, total, calc2, out], storage)
    total.base.links.add_incoming(work, LinkType.RETURN, 'result')
    return Chain(x, y, work, calc, total, calc2, out)


def dot_graph(text: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The node names and the (source, target, link type) edges of DOT text written by ``node graph``."""
    nodes = set(re.findall(r'^\s+(N\d+) \[', text, re.MULTILINE))
    edges = {
        (source, target, link_type)
        for source, target, link_type in re.findall(r'^\s+(N\d+) -> (N\d+) \[label="(\w+)\\n', text, re.MULTILINE)
    }
    return nodes, edges


def svg_graph(content: bytes) -> tuple[set[str], set[tuple[str, str]], list[str]]:
    """The node names, the (source, target) edges and all the texts of an SVG drawn by Graphviz, read as XML."""
    root = ET.fromstring(content)
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for element in root.iter(f'{SVG}g'):
        title = element.find(f'{SVG}title')
        if title is None or title.text is None:
            continue
        if element.get('class') == 'node':
            nodes.add(title.text)
        elif element.get('class') == 'edge':
            source, _, target = title.text.partition('->')
            edges.add((source, target))
    texts = [text.text or '' for text in root.iter(f'{SVG}text')]
    return nodes, edges, texts


def test_dot_depth_one(chain: Chain) -> None:
    """By default one link each way along every link type: the calculation's inputs, caller and output, and every
    link between them (the caller's input and return included)."""
    c = chain
    result = ok('node', 'graph', str(c.calc.pk))
    nodes, edges = dot_graph(result.stdout)
    assert nodes == {c.name(node) for node in (c.x, c.y, c.work, c.calc, c.total)}
    assert edges == {
        (c.name(c.x), c.name(c.calc), 'input_calc'),
        (c.name(c.y), c.name(c.calc), 'input_calc'),
        (c.name(c.work), c.name(c.calc), 'call_calc'),
        (c.name(c.calc), c.name(c.total), 'create'),
        (c.name(c.x), c.name(c.work), 'input_work'),
        (c.name(c.work), c.name(c.total), 'return'),
    }
    assert result.stdout.startswith('digraph provenance {')
    assert f'{c.name(c.calc)} [label="CalcFunctionNode ({c.calc.pk})\\nadd"' in result.stdout
    assert 'Int (' in result.stdout
    assert '\\ny value"' in result.stdout


def test_dot_depths_and_link_types(chain: Chain) -> None:
    """Depths and link types choose the nodes: data links only, all descendants, no ancestors."""
    c = chain
    nodes, edges = dot_graph(ok('node', 'graph', str(c.calc.pk), '-l', 'data').stdout)
    assert nodes == {c.name(node) for node in (c.x, c.y, c.calc, c.total)}
    assert {edge[2] for edge in edges} == {'input_calc', 'create'}
    nodes, _ = dot_graph(ok('node', 'graph', str(c.x.pk), '-a', '0', '-d', 'all', '-l', 'data').stdout)
    assert nodes == {c.name(node) for node in (c.x, c.calc, c.total, c.calc2, c.out)}
    nodes, _ = dot_graph(ok('node', 'graph', str(c.out.pk), '--ancestor-depth', '2', '-d', '0').stdout)
    assert nodes == {c.name(node) for node in (c.out, c.calc2, c.total)}
    nodes, edges = dot_graph(ok('node', 'graph', str(c.total.pk), '-l', 'return', '-l', 'call_calc').stdout)
    assert nodes == {c.name(c.total), c.name(c.work)}
    assert edges == {(c.name(c.work), c.name(c.total), 'return')}
    nodes, edges = dot_graph(ok('node', 'graph', str(c.y.pk), '-a', '0', '-d', '0').stdout)
    assert (nodes, edges) == ({c.name(c.y)}, set())


def test_svg_has_the_nodes_and_edges(chain: Chain, dot_program: str, tmp_path: Path) -> None:
    """The SVG Graphviz draws holds exactly the nodes and edges of the graph, with their labels."""
    c = chain
    target = tmp_path / 'calc.svg'
    assert 'Wrote the graph of 5 node(s)' in ok('node', 'graph', c.calc.uuid, '-o', str(target)).stdout
    nodes, edges, texts = svg_graph(target.read_bytes())
    assert nodes == {c.name(node) for node in (c.x, c.y, c.work, c.calc, c.total)}
    assert edges == {
        (c.name(c.x), c.name(c.calc)),
        (c.name(c.y), c.name(c.calc)),
        (c.name(c.work), c.name(c.calc)),
        (c.name(c.calc), c.name(c.total)),
        (c.name(c.x), c.name(c.work)),
        (c.name(c.work), c.name(c.total)),
    }
    assert f'CalcFunctionNode ({c.calc.pk})' in texts
    assert 'add_work' in texts
    assert {'input_calc', 'call_calc', 'create', 'return', 'input_work'} <= set(texts)
    stdout = ok('node', 'graph', str(c.calc.pk), '--format', 'svg').stdout_bytes
    assert svg_graph(stdout)[:2] == (nodes, edges)


def test_png(chain: Chain, dot_program: str, tmp_path: Path) -> None:
    """PNG is drawn by Graphviz, to a file (format from its extension) or to a pipe."""
    target = tmp_path / 'graph.png'
    ok('node', 'graph', str(chain.calc.pk), '-o', str(target))
    assert target.read_bytes().startswith(b'\x89PNG\r\n\x1a\n')
    assert ok('node', 'graph', str(chain.calc.pk), '-f', 'png').stdout_bytes.startswith(b'\x89PNG')


def test_without_graphviz(chain: Chain, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without ``dot`` on PATH, SVG and PNG fail with one plain line and nothing is written; DOT still works."""
    empty = tmp_path / 'empty-bin'
    empty.mkdir()
    monkeypatch.setenv('PATH', str(empty))
    for args in (('-f', 'svg'), ('-o', str(tmp_path / 'graph.png'))):
        message = error('node', 'graph', str(chain.calc.pk), *args)
        assert 'Graphviz program `dot` is not on PATH' in message
        assert '--format dot' in message
    assert not (tmp_path / 'graph.png').exists()
    nodes, _ = dot_graph(ok('node', 'graph', str(chain.calc.pk)).stdout)
    assert len(nodes) == 5
    ok('node', 'graph', str(chain.calc.pk), '-o', str(tmp_path / 'graph.dot'))
    assert dot_graph((tmp_path / 'graph.dot').read_text())[0] == nodes


def test_errors(chain: Chain) -> None:
    """Unknown nodes, bad depths and graphs larger than --max-nodes are refused plainly."""
    assert 'No node with pk 999999' in error('node', 'graph', '999999')
    assert 'more than --max-nodes 3' in error('node', 'graph', str(chain.calc.pk), '--max-nodes', '3')
    bad = invoke('node', 'graph', str(chain.calc.pk), '-a', 'deep')
    assert bad.exit_code == 2
    assert 'is not a depth' in bad.stderr
