"""aiida-core's own importer reads the archives provstore writes, and finds the graph provstore holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from interop_helpers import (
    aiida_snapshot,
    as_imported,
    assert_same_graph,
    opened_archive,
    provstore_snapshot,
    without_checkpoints,
)

from provstore.archive.create import create_archive
from provstore.archive.imports import import_archive as provstore_import_archive
from provstore.orm import (
    CalcJobNode,
    Comment,
    Computer,
    Dict,
    FolderData,
    Group,
    Int,
    LinkType,
    Log,
    Str,
    User,
    WorkChainNode,
    store_nodes,
)
from provstore.storage import EntityStorage, EntityType
from provstore_sqlite_zip.format import SqliteZipFormat

PRIVATE_EXTRA = '_aiida_hash'
"""An extra of aiida-core's own, which its importer leaves out of new nodes (:func:`interop_helpers.as_imported`)."""


def build_graph(storage: EntityStorage, tmp_path: Path) -> int:
    """Store a graph with every kind of entity: two users, a computer, data with attributes, extras and files in
    nested folders, a workflow calling a calculation (sealed), groups with members, comments and logs.

    :return: the pk of the calculation's result.
    """
    second = User('second@example.org', 'Ada', 'Second', 'Elsewhere Lab', storage=storage).store()
    computer = Computer(
        'cluster',
        'cluster.example.org',
        description='the cluster',
        scheduler_type='core.slurm',
        transport_type='core.ssh',
        metadata={'workdir': '/scratch/{username}', 'mpirun_command': ['mpirun', '-np', '{tot_num_mpiprocs}']},
        storage=storage,
    ).store()
    parameters = Dict(
        {'cutoff': 30.5, 'nested': {'list': [1, 2.5, 'x', None, True], 'empty': {}}, 'text': 'ünïcode → ok'},
        label='parameters',
        description='the inputs',
        storage=storage,
    )
    parameters.base.repository.put_object_from_bytes(b'top level', 'top.txt')
    parameters.base.repository.put_object_from_bytes(b'first level', 'in/input.txt')
    parameters.base.repository.put_object_from_bytes(bytes(range(256)) * 4, 'in/deeper/still/binary.dat')
    parameters.base.extras.set('tag', {'nested': [1, {'two': 2}]})
    parameters.base.extras.set(PRIVATE_EXTRA, 'not kept by aiida-core')
    tree = tmp_path / 'tree'
    (tree / 'sub' / 'empty').mkdir(parents=True)
    (tree / 'sub' / 'data.txt').write_bytes(b'data in a folder')
    (tree / 'same.txt').write_bytes(b'top level')  # the content of another node's file: one object, two paths
    folder = FolderData(tree, user=second, storage=storage)
    workflow = WorkChainNode(process_type='aiida.workflows:core.arithmetic.multiply_add', storage=storage)
    workflow.base.links.add_incoming(parameters, LinkType.INPUT_WORK, 'parameters')
    workflow.set_process_label('MultiplyAddWorkChain')
    workflow.base.attributes.set('checkpoints', '{"stepper": "left behind"}')  # aiida-core's importer drops it
    calculation = CalcJobNode(
        process_type='aiida.calculations:core.arithmetic.add', computer=computer, label='add', storage=storage
    )
    calculation.base.links.add_incoming(parameters, LinkType.INPUT_CALC, 'parameters')
    calculation.base.links.add_incoming(folder, LinkType.INPUT_CALC, 'folder')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
    calculation.base.repository.put_object_from_bytes(b'#!/bin/bash\necho 3\n', '_aiidasubmit.sh')
    calculation.base.extras.set('priority', 3)
    for process in (workflow, calculation):
        process.set_process_state('finished')
        process.set_exit_status(0)
    result = Int(3, storage=storage)
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'sum')
    note = Str('unrelated', user=second, storage=storage)
    store_nodes([parameters, folder, workflow, calculation, result, note], storage)
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    workflow.seal()
    calculation.seal()
    results = Group('results', description='what came out', storage=storage).store()
    results.add_nodes([parameters, result, calculation])
    results.set_extra('reviewed', {'by': 'ada', 'ok': True})
    Group('notes', type_string='core.upf', user=second, storage=storage).store().add_nodes([note])
    Group('empty', storage=storage).store()
    Comment(calculation, 'converged in 3 steps').store()
    Comment(note, 'from the second user', user=second).store()
    Log(calculation, 'aiida.orm.nodes.process.calculation.calcjob', 'REPORT', 'submitted', metadata={'step': 1}).store()
    Log(workflow, 'aiida.orm.nodes.process.workflow.workchain', 'WARNING', 'slow', metadata={}).store()
    assert result.pk is not None
    return result.pk


def test_aiida_core_imports_a_provstore_archive(
    provstore_storage: EntityStorage, aiida_profile: str, tmp_path: Path
) -> None:
    """aiida-core's importer brings in every node, link, group and membership, computer, user, comment, log,
    attribute, extra and file of a provstore archive, as provstore holds them (but aiida-core's private extras);
    aiida-core's export of what it imported, read in place by provstore, holds the same again, and imported into
    the profile it came from, adds and changes nothing.
    """
    from aiida.tools.archive import create_archive as aiida_create_archive
    from aiida.tools.archive import import_archive

    build_graph(provstore_storage, tmp_path)
    archive = tmp_path / 'provstore.aiida'
    create_archive(provstore_storage, archive, SqliteZipFormat)
    held = provstore_snapshot(provstore_storage)
    assert PRIVATE_EXTRA in str(held['node']) and 'checkpoints' in str(held['node'])
    assert (len(held['user']), len(held['node']), len(held['link']), len(held['group'])) == (2, 6, 6, 3)
    expected = as_imported(held)

    import_archive(archive, create_group=False)

    assert_same_graph(aiida_snapshot(), expected)
    again = tmp_path / 'again.aiida'
    aiida_create_archive(None, filename=again)
    with opened_archive(again) as opened:
        assert_same_graph(provstore_snapshot(opened), expected)
    summary = provstore_import_archive(provstore_storage, again, SqliteZipFormat, import_group=False)
    assert not any(summary.added.values()) and not any(summary.updated.values())
    assert_same_graph(provstore_snapshot(provstore_storage), held)


def test_aiida_core_imports_part_of_a_provstore_profile(
    provstore_storage: EntityStorage, aiida_profile: str, tmp_path: Path
) -> None:
    """An archive of a start set and what the export rules reach from it, stored without compression, is imported
    by aiida-core as it is: the nodes of the closure, their links, the groups holding them (with those members only),
    their users, computer, comments and logs.
    """
    from aiida.tools.archive import import_archive

    result = build_graph(provstore_storage, tmp_path)
    archive = tmp_path / 'part.aiida'
    summary = create_archive(provstore_storage, archive, SqliteZipFormat, node_ids=[result], compression=0)
    with opened_archive(archive) as opened:
        held = provstore_snapshot(opened)
    assert 1 < len(held['node']) == summary.counts['node'] < provstore_storage.count_rows(EntityType.NODE)

    import_archive(archive, create_group=False)

    assert_same_graph(aiida_snapshot(), as_imported(held))


def test_archive_leaves_checkpoints_out(provstore_storage: EntityStorage, tmp_path: Path) -> None:
    """Like aiida-core's exporter, provstore's leaves the checkpoints of process nodes out of the archive."""
    build_graph(provstore_storage, tmp_path)
    archive = tmp_path / 'provstore.aiida'
    create_archive(provstore_storage, archive, SqliteZipFormat)
    with opened_archive(archive) as opened:
        held = provstore_snapshot(opened)

    assert held['node'] == without_checkpoints(held)['node']


@pytest.mark.parametrize('provstore_storage', ['sqlite_dos'], indirect=True)
def test_verdi_reads_and_imports_a_provstore_archive(
    provstore_storage: EntityStorage, aiida_profile: str, tmp_path: Path
) -> None:
    """An AiiDA user's commands take a provstore archive: ``verdi archive version`` and ``info --detailed`` (the counts
    provstore holds), and ``verdi archive import``, after which aiida-core holds the graph.
    """
    import yaml

    build_graph(provstore_storage, tmp_path)
    archive = tmp_path / 'provstore.aiida'
    create_archive(provstore_storage, archive, SqliteZipFormat)
    expected = as_imported(provstore_snapshot(provstore_storage))

    assert "'main_0001'" in verdi('archive', 'version', str(archive)).splitlines()[-1]
    info = yaml.safe_load(verdi('archive', 'info', '--detailed', str(archive)))
    assert info['metadata']['export_version'] == 'main_0001'
    counts = {kind: provstore_storage.count_rows(kind) for kind in (EntityType.NODE, EntityType.LINK, EntityType.GROUP)}
    assert counts == {
        EntityType.NODE: info['entities']['Nodes']['count'],
        EntityType.LINK: info['entities']['Links']['count'],
        EntityType.GROUP: info['entities']['Groups']['count'],
    }
    verdi('--profile', aiida_profile, 'archive', 'import', '--no-import-group', str(archive))

    assert_same_graph(aiida_snapshot(), expected)


def verdi(*arguments: str) -> str:
    """Run this environment's ``verdi`` in a process of its own; return its output, failing on an error."""
    command = [str(Path(sys.executable).parent / 'verdi'), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f'{" ".join(arguments)}: exit {done.returncode}\n{done.stdout}{done.stderr}'
    return done.stdout
