"""Node classes carry aiida-core's ``node_type`` strings, and any ``node_type`` loads as the nearest known class."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest

from provstore.orm import (
    Bool,
    CalcFunctionNode,
    CalcJobNode,
    CalculationNode,
    Data,
    Dict,
    Float,
    FolderData,
    Int,
    List,
    Node,
    ProcessNode,
    SinglefileData,
    Str,
    WorkChainNode,
    WorkflowNode,
    WorkFunctionNode,
    load_node_class,
)
from provstore.orm.links import node_kind
from provstore.orm.node_classes import node_type_path

FIXTURES = Path(__file__).parents[1] / 'fixtures' / 'aiida-core-static'

AIIDA_NODE_TYPES = {
    Node: '',
    Data: 'data.Data.',
    Int: 'data.core.int.Int.',
    Float: 'data.core.float.Float.',
    Str: 'data.core.str.Str.',
    Bool: 'data.core.bool.Bool.',
    Dict: 'data.core.dict.Dict.',
    List: 'data.core.list.List.',
    SinglefileData: 'data.core.singlefile.SinglefileData.',
    FolderData: 'data.core.folder.FolderData.',
    ProcessNode: 'process.ProcessNode.',
    CalculationNode: 'process.calculation.CalculationNode.',
    CalcJobNode: 'process.calculation.calcjob.CalcJobNode.',
    CalcFunctionNode: 'process.calculation.calcfunction.CalcFunctionNode.',
    WorkflowNode: 'process.workflow.WorkflowNode.',
    WorkChainNode: 'process.workflow.workchain.WorkChainNode.',
    WorkFunctionNode: 'process.workflow.workfunction.WorkFunctionNode.',
}


@pytest.mark.parametrize(('node_class', 'node_type'), AIIDA_NODE_TYPES.items(), ids=str)
def test_node_type_strings_are_aiida_cores(node_class: type[Node], node_type: str) -> None:
    """Each class has aiida-core's exact ``node_type`` string and loads back as itself."""
    assert node_class.NODE_TYPE == node_type
    assert load_node_class(node_type) is node_class


@pytest.mark.parametrize(
    ('node_type', 'expected'),
    [
        ('data.quantumespresso.foo.Bar.', Data),
        ('data.core.array.ArrayData.', Data),
        ('data.array.kpoints.KpointsData.', Data),
        ('data.core.int.MyInt.', Int),
        ('process.calculation.calcjob.X.', CalcJobNode),
        ('process.calculation.other.Thing.', CalculationNode),
        ('process.workflow.workchain.deeper.Chain.', WorkChainNode),
        ('process.workflow.x.Y.', WorkflowNode),
        ('process.something.Else.', ProcessNode),
        ('weird.Thing.', Node),
        ('nodots', Node),
    ],
)
def test_unknown_node_types_load_as_the_nearest_known_kind(node_type: str, expected: type[Node]) -> None:
    """A ``node_type`` no class knows loads as the class whose type path is its longest known prefix."""
    assert load_node_class(node_type) is expected


def test_a_subclass_registers_its_node_type() -> None:
    """Defining a subclass with a ``NODE_TYPE`` makes its nodes load as that class."""

    class Structure(Data):
        NODE_TYPE = 'data.test_orm.structure.Structure.'

    assert load_node_class('data.test_orm.structure.Structure.') is Structure
    assert load_node_class('data.test_orm.structure.Other.') is Structure


def _archive_node_types(folder: Path) -> set[str]:
    assert FIXTURES.is_dir(), f'the aiida-core archives of the test suite are missing: {FIXTURES}'
    node_types: set[str] = set()
    for archive in sorted(FIXTURES.glob('*.aiida')):
        if not zipfile.is_zipfile(archive):
            continue  # an old tar.gz archive: no db.sqlite3
        with zipfile.ZipFile(archive) as zipped:
            if 'db.sqlite3' not in zipped.namelist():
                continue
            path = Path(zipped.extract('db.sqlite3', folder / archive.stem))
        connection = sqlite3.connect(path)
        try:
            node_types.update(row[0] for row in connection.execute('SELECT DISTINCT node_type FROM db_dbnode'))
        finally:
            connection.close()
    return node_types


def test_node_types_of_aiida_core_archives_load_as_their_kind(tmp_path: Path) -> None:
    """Every ``node_type`` in the aiida-core fixture archives loads as a class of the same kind and type path."""
    node_types = _archive_node_types(tmp_path)
    assert 'data.core.dict.Dict.' in node_types
    assert 'process.calculation.calcjob.CalcJobNode.' in node_types
    for node_type in node_types:
        node_class = load_node_class(node_type)
        assert node_kind(node_class.NODE_TYPE) is node_kind(node_type), node_type
        assert node_type.startswith(node_type_path(node_class.NODE_TYPE)), node_type
