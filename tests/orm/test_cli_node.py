"""``provstore node``: show, list, delete and the files of nodes, on real storage (sqlite_dos and psql_dos)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import error, invoke, ok
from orm_helpers import EMAIL, counts

from provstore.cli.node import compact_ranges
from provstore.cli.output import progress
from provstore.orm import (
    CalcJobNode,
    Dict,
    FolderData,
    Int,
    LinkType,
    Node,
    SinglefileData,
    WorkChainNode,
    store_nodes,
)
from provstore.repository import CHUNK_SIZE
from provstore.storage import EntityStorage, EntityType

BINARY = bytes(range(256)) * 3 + b'\r\n\x00\x1a'
"""File content no text decoding survives."""

LARGE = os.urandom(CHUNK_SIZE * 2 + 17)
"""Content larger than the chunks files are streamed in."""


@dataclass
class Graph:
    """A workflow that calls a calculation: parameters and a structure in, a folder and an energy out."""

    parameters: Node
    structure: Node
    workflow: Node
    calculation: Node
    retrieved: Node
    energy: Node


@pytest.fixture
def graph(storage: EntityStorage) -> Graph:
    """Store the graph of :class:`Graph`, with binary and large files, and return it."""
    parameters = Dict({'cutoff': 30.0, 'kpoints': [4, 4, 4]}, label='parameters', storage=storage)
    structure = SinglefileData(io.BytesIO(BINARY), filename='structure.bin', storage=storage)
    workflow = WorkChainNode(label='relax', storage=storage)
    workflow.base.links.add_incoming(parameters, LinkType.INPUT_WORK, 'parameters')
    calculation = CalcJobNode(label='scf', process_type='aiida.calculations:quantumespresso.pw', storage=storage)
    calculation.base.links.add_incoming(parameters, LinkType.INPUT_CALC, 'parameters')
    calculation.base.links.add_incoming(structure, LinkType.INPUT_CALC, 'structure')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'scf')
    retrieved = FolderData(storage=storage)
    retrieved.put_object_from_bytes(b'total energy = -15.8 Ry\n', 'aiida.out')
    retrieved.put_object_from_bytes(LARGE, 'data/wavefunctions.dat')
    retrieved.put_object_from_bytes(BINARY, 'data/binary.bin')
    retrieved.base.links.add_incoming(calculation, LinkType.CREATE, 'retrieved')
    energy = Int(-15, label='energy', storage=storage)
    energy.base.links.add_incoming(calculation, LinkType.CREATE, 'energy')
    store_nodes([parameters, structure, workflow, calculation, retrieved, energy], storage)
    energy.base.links.add_incoming(workflow, LinkType.RETURN, 'energy')
    energy.base.extras.set('checked', True)
    return Graph(parameters, structure, workflow, calculation, retrieved, energy)


def with_uuids(storage: EntityStorage, *uuids: str) -> list[Node]:
    """Store one Int node per given uuid and return them."""
    nodes = [
        Node.from_row({'uuid': value, 'node_type': 'data.core.int.Int.', 'attributes': {'value': 1}}) for value in uuids
    ]
    return store_nodes(nodes, storage)


# -- show -------------------------------------------------------------------------------------------------------


def test_show_by_pk_uuid_and_prefix(graph: Graph) -> None:
    """A node is found by pk, by its uuid in any case, and by a unique prefix (dashes ignored) of at least 4 digits."""
    calculation = graph.calculation
    uuid = calculation.uuid
    forms = [str(calculation.pk), uuid, uuid.upper(), uuid[:13], uuid.replace('-', '')[:10], f'uuid:{uuid[:8]}']
    for form in forms:
        shown = json.loads(ok('node', 'show', form, '--json').stdout)
        assert (shown['pk'], shown['uuid']) == (calculation.pk, uuid), form
    text = ok('node', 'show', str(calculation.pk)).stdout
    assert f'uuid:         {uuid}' in text
    assert 'process_type: aiida.calculations:quantumespresso.pw' in text
    assert 'incoming links: 3' in text
    assert 'outgoing links: 2' in text
    assert 'files: 0' in text


def test_show_json_shape(graph: Graph) -> None:
    """``show --json`` gives the node's columns, user, attributes, extras, sorted file paths and both link lists."""
    energy = json.loads(ok('node', 'show', str(graph.energy.pk), '--json').stdout)
    assert set(energy) == {
        'pk',
        'uuid',
        'node_type',
        'process_type',
        'label',
        'description',
        'ctime',
        'mtime',
        'user',
        'computer',
        'attributes',
        'extras',
        'files',
        'incoming',
        'outgoing',
    }
    assert energy['node_type'] == 'data.core.int.Int.'
    assert (energy['label'], energy['user'], energy['computer']) == ('energy', EMAIL, None)
    assert (energy['attributes'], energy['extras']) == ({'value': -15}, {'checked': True})
    assert graph.energy.ctime is not None
    assert energy['ctime'] == graph.energy.ctime.isoformat()
    assert energy['incoming'] == [
        {
            'pk': graph.calculation.pk,
            'uuid': graph.calculation.uuid,
            'node_type': 'process.calculation.calcjob.CalcJobNode.',
            'link_type': 'create',
            'link_label': 'energy',
        },
        {
            'pk': graph.workflow.pk,
            'uuid': graph.workflow.uuid,
            'node_type': 'process.workflow.workchain.WorkChainNode.',
            'link_type': 'return',
            'link_label': 'energy',
        },
    ]
    assert energy['outgoing'] == []
    retrieved = json.loads(ok('node', 'show', str(graph.retrieved.pk), '--json').stdout)
    assert retrieved['files'] == ['aiida.out', 'data/binary.bin', 'data/wavefunctions.dat']
    parameters = json.loads(ok('node', 'show', str(graph.parameters.pk), '--json').stdout)
    assert [(link['pk'], link['link_type']) for link in parameters['outgoing']] == [
        (graph.workflow.pk, 'input_work'),
        (graph.calculation.pk, 'input_calc'),
    ]


@pytest.mark.parametrize(
    ('identifier', 'message'),
    [
        ('abc', "uuid prefix 'abc' is too short: give at least 4 hex digits, or a pk"),
        ('uuid:12', "uuid prefix '12' is too short"),
        ('xyz1', "'xyz1' is not a node ID: give a pk, a uuid or at least 4 hex digits of one"),
        ('12ab!', "'12ab!' is not a node ID"),
        ('', "'' is not a node ID"),
        ('a' * 33, 'a uuid has 32 hex digits, this has 33'),
        ('999999', 'No node with pk 999999'),
        ('ffffffff-ffff', "No node with a uuid starting with 'ffffffff-ffff'"),
    ],
)
def test_bad_ids_are_one_line_errors(storage: EntityStorage, identifier: str, message: str) -> None:
    """Too short, not hex, too long or unknown: one line naming the ID, exit code 1."""
    with_uuids(storage, '0000abcd-0000-4000-8000-000000000000')
    assert message in error('node', 'show', identifier)


def test_ambiguous_prefix_names_candidates(storage: EntityStorage) -> None:
    """A prefix several nodes share is refused, naming a few of them; more digits find the one."""
    nodes = with_uuids(storage, *(f'abcd{index:04x}-0000-4000-8000-000000000000' for index in range(8)))
    line = error('node', 'show', 'ABCD')
    assert "uuid prefix 'ABCD' is ambiguous: nodes pk" in line
    assert f'pk {nodes[-1].pk} (abcd0007-0000-4000-8000-000000000000, Int)' in line
    assert line.endswith(', ... have it; give more digits or the pk')
    assert json.loads(ok('node', 'show', 'abcd0003', '--json').stdout)['pk'] == nodes[3].pk
    few = with_uuids(storage, 'eeee0000-0000-4000-8000-000000000000', 'eeee0001-0000-4000-8000-000000000000')
    line = error('node', 'show', 'eeee')
    assert line == (
        f"Error: uuid prefix 'eeee' is ambiguous: nodes pk {few[1].pk} (eeee0001-0000-4000-8000-000000000000, Int), "
        f'pk {few[0].pk} (eeee0000-0000-4000-8000-000000000000, Int) have it; give more digits or the pk'
    )


def test_digits_are_a_pk_unless_marked(storage: EntityStorage) -> None:
    """An ID of digits only is a pk; ``uuid:`` makes it a uuid prefix."""
    [node] = with_uuids(storage, '12345678-0000-4000-8000-000000000000')
    assert error('node', 'show', '1234') == (
        'Error: No node with pk 1234 (digits only make a pk: write uuid:1234 for a uuid prefix)'
    )
    assert error('node', 'show', '123') == 'Error: No node with pk 123'
    assert json.loads(ok('node', 'show', 'uuid:1234', '--json').stdout)['pk'] == node.pk


# -- list -------------------------------------------------------------------------------------------------------


def test_list_newest_first_with_filters(graph: Graph) -> None:
    """``list`` shows the most recently stored first; --type takes a class (with subclasses) or a prefix."""

    def pks(*args: str) -> list[int]:
        return [row['pk'] for row in json.loads(ok('node', 'list', '--json', *args).stdout)]

    everything = [graph.energy, graph.retrieved, graph.calculation, graph.workflow, graph.structure, graph.parameters]
    assert pks() == [node.pk for node in everything]
    assert pks('--type', 'Data') == [graph.energy.pk, graph.retrieved.pk, graph.structure.pk, graph.parameters.pk]
    assert pks('--type', 'ProcessNode') == [graph.calculation.pk, graph.workflow.pk]
    assert pks('--type', 'CalcJobNode') == [graph.calculation.pk]
    assert pks('--type', 'Node', '--limit', '2') == [graph.energy.pk, graph.retrieved.pk]
    assert pks('--type', 'data.core.int.') == [graph.energy.pk]
    assert pks('--type', 'data.core.in') == [graph.energy.pk]
    assert pks('--label', 'relax') == [graph.workflow.pk]
    assert pks('--label', 'rel') == []
    assert pks('--type', 'Data', '--label', 'relax') == []
    assert pks('-t', 'WorkflowNode', '-l', 'relax') == [graph.workflow.pk]


def test_list_json_and_table(graph: Graph) -> None:
    """The JSON rows have a fixed set of keys; the table has a row per node and says when the limit cut it."""
    [row] = json.loads(ok('node', 'list', '--json', '--limit', '1').stdout)
    assert row == {
        'pk': graph.energy.pk,
        'uuid': graph.energy.uuid,
        'node_type': 'data.core.int.Int.',
        'process_type': None,
        'label': 'energy',
        'description': '',
        'ctime': graph.energy.ctime.isoformat() if graph.energy.ctime else '',
        'mtime': json.loads(ok('node', 'show', str(graph.energy.pk), '--json').stdout)['mtime'],
    }
    table = ok('node', 'list', '--limit', '3')
    lines = table.stdout.splitlines()
    assert lines[0].split() == ['PK', 'UUID', 'TYPE', 'LABEL', 'CTIME']
    assert lines[1].split()[:4] == [str(graph.energy.pk), graph.energy.uuid, 'Int', 'energy']
    assert len(lines) == 4
    assert '(the 3 most recent; --limit shows more)' in table.stderr
    assert ok('node', 'list', '--label', 'none such').stdout == 'No nodes match.\n'


def test_list_refuses_unknown_class(storage: EntityStorage) -> None:
    """A capitalised --type that is no node class is an error listing the classes."""
    line = error('node', 'list', '--type', 'Integer')
    assert "No node class 'Integer'; the classes are " in line
    assert 'CalcJobNode' in line
    assert 'No nodes yet.' in ok('node', 'list').stdout


# -- delete -----------------------------------------------------------------------------------------------------


def test_delete_dry_run_writes_nothing(storage: EntityStorage, graph: Graph) -> None:
    """--dry-run lists counts by node_type and the pks, and changes nothing."""
    before = counts(storage)
    result = ok('node', 'delete', str(graph.parameters.pk), '--dry-run')
    assert counts(storage) == before
    text = result.stdout
    assert f'Deleting 1 node ({graph.parameters.pk}) deletes 5 nodes:' in text
    lines = [line.split() for line in text.splitlines()]
    assert ['1', 'process.calculation.calcjob.CalcJobNode.'] in lines
    assert ['1', 'data.core.folder.FolderData.'] in lines
    doomed = (graph.parameters, graph.workflow, graph.calculation, graph.retrieved, graph.energy)
    assert f'pks: {compact_ranges(sorted(node.pk or 0 for node in doomed))}' in text
    assert 'Dry run: nothing was deleted.' in text


def test_delete_asks_first(storage: EntityStorage, graph: Graph) -> None:
    """Without --yes the command asks; no, or no answer at all, deletes nothing and exits 1; yes deletes."""
    before = counts(storage)
    declined = invoke('node', 'delete', str(graph.energy.pk), input='n\n')
    assert declined.exit_code == 1
    assert 'Delete these 4 nodes? [y/N]' in declined.stderr
    assert 'Nothing was deleted.' in declined.stderr
    unanswered = invoke('node', 'delete', f'uuid:{graph.energy.uuid[:8]}')
    assert unanswered.exit_code == 1
    assert counts(storage) == before
    accepted = invoke('node', 'delete', graph.energy.uuid, input='y\n')
    assert accepted.exit_code == 0, accepted.output
    assert 'Deleted 4 nodes.' in accepted.stdout
    left = [row['id'] for row in storage.iter_rows(EntityType.NODE)]
    assert left == [graph.parameters.pk, graph.structure.pk]
    lonely = invoke('node', 'delete', str(graph.structure.pk), input='y\n')
    assert 'Delete this node? [y/N]' in lonely.stderr
    assert 'Deleted 1 node.' in lonely.stdout


def test_delete_yes_follows_the_graph(storage: EntityStorage, graph: Graph) -> None:
    """--yes deletes the nodes and what cannot exist without them (the workflow that called the calculation, ...)."""
    ok('node', 'delete', str(graph.structure.pk), str(graph.calculation.pk), '--yes')
    assert [row['id'] for row in storage.iter_rows(EntityType.NODE)] == [graph.parameters.pk]
    assert storage.count_rows(EntityType.LINK) == 0
    assert f'No node with pk {graph.calculation.pk}' in error('node', 'delete', str(graph.calculation.pk), '--yes')
    assert 'No node with pk 999999' in error('node', 'delete', str(graph.parameters.pk), '999999', '--yes')
    assert [row['id'] for row in storage.iter_rows(EntityType.NODE)] == [graph.parameters.pk]


def test_delete_refuses_when_the_graph_grew_meanwhile(
    storage: EntityStorage, graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If more nodes would go once the answer is given (another process linked one), nothing is deleted."""
    late = CalcJobNode(label='late', storage=storage)

    def answer_after_a_link(*args: Any, **kwargs: Any) -> bool:
        late.base.links.add_incoming(graph.parameters, LinkType.INPUT_CALC, 'parameters')
        late.store()
        return True

    monkeypatch.setattr('click.confirm', answer_after_a_link)
    before = counts(storage)
    line = error('node', 'delete', str(graph.parameters.pk))
    assert line == 'Error: The nodes to delete changed while the command ran; nothing was deleted: run it again'
    assert counts(storage) == {**before, 'node': before['node'] + 1, 'link': before['link'] + 1}


def test_compact_ranges() -> None:
    """The pks of a delete print as ranges."""
    assert compact_ranges([1, 2, 3, 5, 7, 8, 10]) == '1-3 5 7-8 10'
    assert compact_ranges([4]) == '4'
    assert compact_ranges([]) == ''


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A progress bar is drawn on stderr when it is a terminal, and nothing at all is printed otherwise."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, 'stderr', stream)
        with progress(10, 'Deleting nodes') as advance:
            advance(4)
            advance(6)
        assert ('Deleting nodes' in stream.getvalue()) is drawn
        assert bool(stream.getvalue()) is drawn


# -- files ------------------------------------------------------------------------------------------------------


def test_repo_ls(graph: Graph) -> None:
    """``repo ls`` lists a directory (subdirectories with a /), or names a file; a missing path is an error."""
    pk = str(graph.retrieved.pk)
    assert ok('node', 'repo', 'ls', pk).stdout == 'aiida.out\ndata/\n'
    assert ok('node', 'repo', 'ls', pk, 'data').stdout == 'binary.bin\nwavefunctions.dat\n'
    assert ok('node', 'repo', 'ls', pk, 'data/binary.bin').stdout == 'binary.bin\n'
    assert ok('node', 'repo', 'ls', str(graph.calculation.pk)).stdout == ''
    assert f"node {pk} has no file or directory 'nope'" in error('node', 'repo', 'ls', pk, 'nope')
    assert 'is a file, not a directory' in error('node', 'repo', 'ls', pk, 'aiida.out/x')
    assert 'must be relative' in error('node', 'repo', 'ls', pk, '/etc')


def test_repo_cat_is_binary_safe(graph: Graph) -> None:
    """``repo cat`` writes the exact bytes, also of content larger than the chunks it streams."""
    assert ok('node', 'repo', 'cat', str(graph.structure.pk), 'structure.bin').stdout_bytes == BINARY
    pk = str(graph.retrieved.pk)
    assert ok('node', 'repo', 'cat', pk, 'data/wavefunctions.dat').stdout_bytes == LARGE
    assert ok('node', 'repo', 'cat', pk, 'data/binary.bin').stdout_bytes == BINARY
    assert f"'data' of node {pk} is a directory: list it with" in error('node', 'repo', 'cat', pk, 'data')
    assert f"node {pk} has no file or directory 'data/x'" in error('node', 'repo', 'cat', pk, 'data/x')


def test_repo_cat_through_a_real_pipe(storage: EntityStorage, graph: Graph, config_folder: Path) -> None:
    """The real ``provstore`` command pipes the bytes unchanged, and a reader that stops early is no error."""
    assert isinstance(storage, EntityStorage)
    command = [sys.executable, '-m', 'provstore.cli', 'node', 'repo', 'cat', str(graph.retrieved.pk)]
    result = subprocess.run([*command, 'data/wavefunctions.dat'], capture_output=True, timeout=120, check=True)
    assert result.stdout == LARGE
    head = subprocess.run(
        f'{" ".join(command)} data/wavefunctions.dat | head -c 10',
        shell=True,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert head.stdout == LARGE[:10]
    assert head.stderr == b''


def test_repo_dump(graph: Graph, tmp_path: Path) -> None:
    """``repo dump`` copies the tree into a new or empty folder; a non-empty one needs --force, a file is refused."""
    pk = str(graph.retrieved.pk)
    target = tmp_path / 'new' / 'dump'
    assert f'Copied 3 file(s) of node {pk} into {target}' in ok('node', 'repo', 'dump', pk, str(target)).stdout
    assert (target / 'aiida.out').read_bytes() == b'total energy = -15.8 Ry\n'
    assert (target / 'data' / 'wavefunctions.dat').read_bytes() == LARGE
    assert (target / 'data' / 'binary.bin').read_bytes() == BINARY
    (target / 'aiida.out').write_bytes(b'mine')
    assert f'{target} is not empty: give a new or empty folder, or --force' in error(
        'node', 'repo', 'dump', pk, str(target)
    )
    assert (target / 'aiida.out').read_bytes() == b'mine'
    ok('node', 'repo', 'dump', pk, str(target), '--force')
    assert (target / 'aiida.out').read_bytes() == b'total energy = -15.8 Ry\n'
    empty = tmp_path / 'empty'
    empty.mkdir()
    ok('node', 'repo', 'dump', str(graph.structure.pk), str(empty))
    assert (empty / 'structure.bin').read_bytes() == BINARY
    afile = tmp_path / 'file'
    afile.write_bytes(b'x')
    assert 'exists and is not a folder' in error('node', 'repo', 'dump', pk, str(afile), '--force')


# -- everywhere -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'command',
    [
        ['node'],
        ['node', 'show'],
        ['node', 'list'],
        ['node', 'delete'],
        ['node', 'repo'],
        ['node', 'repo', 'ls'],
        ['node', 'repo', 'cat'],
        ['node', 'repo', 'dump'],
    ],
)
def test_help_everywhere(command: list[str]) -> None:
    """Every node command has --help (and -h), which needs no profile."""
    for flag in ('--help', '-h'):
        result = invoke(*command, flag)
        assert result.exit_code == 0, result.output
        assert f'Usage: cli {" ".join(command)}' in result.output


def test_profile_option_and_missing_profile(storage: EntityStorage, graph: Graph) -> None:
    """-p chooses the profile; an unknown profile is a one-line error."""
    name = storage.profile.name  # type: ignore[attr-defined]
    assert json.loads(ok('-p', name, 'node', 'show', str(graph.energy.pk), '--json').stdout)['label'] == 'energy'
    assert "'nope'" in error('-p', 'nope', 'node', 'list')
