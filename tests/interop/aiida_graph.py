"""A graph built with aiida-core, with every kind of entity, for the tests that start from aiida-core's side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# NOTE: aiida-core's ORM puts a new entity in the collections of the rows it refers to (a node in its user's
# `dbnodes`, a comment in its node's `dbcomments`), and SQLAlchemy 2 warns when a query flushes the session before the
# entity is stored: harmless, in aiida-core's own code, which is not under test here.
AIIDA_SESSION_WARNINGS = pytest.mark.filterwarnings(
    r'ignore:Object of type <Db\w+> not in session:sqlalchemy.exc.SAWarning'
)
"""The mark of the test modules that build graphs with aiida-core (``pytestmark = AIIDA_SESSION_WARNINGS``)."""


def build_aiida_graph(tmp_path: Path) -> None:
    """Store, with aiida-core, a graph with every kind of entity: two users, a computer, data with attributes, extras
    and files in nested folders (of aiida-core's types too: code, array, structure, remote folder), a workflow calling
    a calculation and a calculation function (sealed), groups with members (an automatic one too), comments and logs.
    """
    from aiida import orm
    from aiida.common.links import LinkType
    from aiida.engine import ProcessState

    second = orm.User(email='second@example.org', first_name='Ada', last_name='Second', institution='Elsewhere').store()
    computer = orm.Computer(
        label='cluster',
        hostname='cluster.example.org',
        description='the cluster',
        scheduler_type='core.direct',
        transport_type='core.local',
    ).store()
    computer.set_workdir('/scratch/{username}')
    computer.set_mpirun_command(['mpirun', '-np', '{tot_num_mpiprocs}'])
    inputs = store_aiida_inputs(tmp_path, second, computer)
    workflow = orm.WorkChainNode(label='multiply-add')
    workflow.process_type = 'aiida.workflows:core.arithmetic.multiply_add'
    workflow.set_process_label('MultiplyAddWorkChain')
    workflow.base.links.add_incoming(inputs['parameters'], LinkType.INPUT_WORK, 'parameters')
    workflow.store()
    calculation = orm.CalcJobNode(computer=computer, label='add')
    calculation.process_type = 'aiida.calculations:core.arithmetic.add'
    for label, node in inputs.items():
        calculation.base.links.add_incoming(node, LinkType.INPUT_CALC, label)
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'CALL')
    calculation.base.repository.put_object_from_bytes(b'#!/bin/bash\necho 3\n', '_aiidasubmit.sh')
    calculation.store()
    calculation.base.extras.set('priority', 3)
    result = orm.Int(3)
    result.base.links.add_incoming(calculation, LinkType.CREATE, 'sum')
    result.store()
    remote = orm.RemoteData(remote_path='/scratch/ada/add', computer=computer)
    remote.base.links.add_incoming(calculation, LinkType.CREATE, 'remote_folder')
    remote.store()
    result.base.links.add_incoming(workflow, LinkType.RETURN, 'result')
    double = orm.CalcFunctionNode(label='double')
    double.process_type = 'interop.functions.double'
    double.base.links.add_incoming(result, LinkType.INPUT_CALC, 'x')
    double.store()
    doubled = orm.Int(6)
    doubled.base.links.add_incoming(double, LinkType.CREATE, 'result')
    doubled.store()
    workflow.set_checkpoint('{"stepper": "left behind"}')  # an importer drops it
    for process in (workflow, calculation, double):
        process.set_process_state(ProcessState.FINISHED)
        process.set_exit_status(0)
        process.seal()
    note = orm.Str('unrelated', user=second).store()
    results = orm.Group(label='results', description='what came out').store()
    results.add_nodes([inputs['parameters'], result, calculation])
    results.base.extras.set('reviewed', {'by': 'ada', 'ok': True})
    orm.Group(label='notes', user=second).store().add_nodes([note])
    orm.Group(label='empty').store()
    orm.AutoGroup(label='Verdi autogroup on 2026-12-05').store().add_nodes([inputs['matrix'], inputs['structure']])
    calculation.base.comments.add('converged in 3 steps')
    note.base.comments.add('from the second user', user=second)
    orm.Log(calculation.ctime, 'aiida.calcjob', 'REPORT', calculation.pk, 'submitted', {'step': 1}).store()
    orm.Log(workflow.ctime, 'aiida.workchain', 'WARNING', workflow.pk, 'slow').store()


def store_aiida_inputs(tmp_path: Path, second: Any, computer: Any) -> dict[str, Any]:
    """Store the calculation's inputs, by the label of their link: data with attributes, extras and files in nested
    folders, one of them the second user's, and nodes of aiida-core's own types, which provstore has no class for
    (kept verbatim: rows and files).
    """
    import numpy
    from aiida import orm

    parameters = orm.Dict(
        {'cutoff': 30.5, 'nested': {'list': [1, 2.5, 'x', None, True], 'empty': {}}, 'text': 'ünïcode → ok'},
        label='parameters',
        description='the inputs',
    )
    parameters.base.repository.put_object_from_bytes(b'top level', 'top.txt')
    parameters.base.repository.put_object_from_bytes(b'first level', 'in/input.txt')
    parameters.base.repository.put_object_from_bytes(bytes(range(256)) * 4, 'in/deeper/still/binary.dat')
    parameters.base.extras.set('tag', {'nested': [1, {'two': 2}]})
    tree = tmp_path / 'tree'
    (tree / 'sub' / 'empty').mkdir(parents=True)
    (tree / 'sub' / 'data.txt').write_bytes(b'data in a folder')
    (tree / 'same.txt').write_bytes(b'top level')  # the content of another node's file: one object, two paths
    array = orm.ArrayData()
    array.set_array('matrix', numpy.arange(6.0).reshape(2, 3))
    structure = orm.StructureData(cell=[[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    structure.append_atom(position=(0.0, 0.0, 0.0), symbols='Si')
    return {
        'parameters': parameters.store(),
        'folder': orm.FolderData(tree=tree, user=second).store(),
        'code': orm.InstalledCode(computer=computer, filepath_executable='/usr/bin/true', label='true').store(),
        'matrix': array.store(),
        'structure': structure.store(),
    }
