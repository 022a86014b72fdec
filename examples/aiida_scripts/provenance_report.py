"""Record a small workflow by hand and report its provenance the way an AiiDA user would.

A work chain adds two numbers through a calculation that also writes a log file, returns the sum and keeps a
folder of notes. The script then walks the graph: links in and out, a process's inputs and outputs by label,
ancestors and descendants, files in the repository, a query saved as a dict and run again.

Written as a script for aiida-core: it runs with provstore once its import lines marked ``# aiida-core:`` are
changed to import from provstore (the comments hold the aiida-core lines). It works in the loaded (default) profile
and prints only what does not depend on the database (no pks, uuids or times), so that both print the same::

    python provenance_report.py
"""

import io
import tempfile
from pathlib import Path

from provstore.manager import load_profile  # aiida-core: from aiida import load_profile
from provstore.orm import (  # aiida-core: from aiida.orm import (
    CalcFunctionNode,
    Data,
    Dict,
    FolderData,
    Int,
    Node,
    ProcessNode,
    QueryBuilder,
    SinglefileData,
    WorkChainNode,
    load_node,
)
from provstore.orm.links import LinkType  # aiida-core: from aiida.common.links import LinkType

load_profile()


def record() -> WorkChainNode:
    """Store the work chain ``add_twice``, its calculation ``add`` and their data; return the work chain."""
    x, y = Int(2), Int(3)
    settings = Dict({'precision': 'high', 'retries': 2})
    for node in (x, y, settings):
        node.store()

    workflow = WorkChainNode()
    workflow.label = 'add_twice'
    workflow.base.links.add_incoming(x, LinkType.INPUT_WORK, 'x')
    workflow.base.links.add_incoming(y, LinkType.INPUT_WORK, 'y')
    workflow.base.links.add_incoming(settings, LinkType.INPUT_WORK, 'options__settings')
    workflow.store()

    calculation = CalcFunctionNode()
    calculation.label = 'add'
    calculation.base.links.add_incoming(x, LinkType.INPUT_CALC, 'x')
    calculation.base.links.add_incoming(y, LinkType.INPUT_CALC, 'y')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'call_add')
    calculation.base.repository.put_object_from_filelike(io.BytesIO(b'adding 2 and 3\nresult 5\n'), 'logs/add.log')
    calculation.base.attributes.set('exit_status', 0)
    calculation.store()

    total = Int(5)
    total.base.links.add_incoming(calculation, LinkType.CREATE, 'sum')
    total.store()
    total.base.links.add_incoming(workflow, LinkType.RETURN, 'result')

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, 'notes').mkdir()
        Path(folder, 'notes', 'summary.txt').write_text('2 + 3 = 5\n')
        Path(folder, 'README').write_text('notes of add_twice\n')
        notes = FolderData(tree=folder)
    notes.base.links.add_incoming(calculation, LinkType.CREATE, 'notes')
    notes.store()
    notes.base.links.add_incoming(workflow, LinkType.RETURN, 'notes')

    report = SinglefileData(io.BytesIO(b'sum: 5\n'), filename='report.txt')
    report.store()
    return workflow


def describe(node: Node) -> str:
    """A node as its class and label, or its value."""
    if isinstance(node, Int):
        return f'{type(node).__name__}({node.value})'
    return f'{type(node).__name__}({node.label!r})'


def main() -> None:
    workflow = record()
    calculation = workflow.called[0]
    total = workflow.outputs.result

    print(f'{describe(workflow)} called {[describe(node) for node in workflow.called]}')
    print(f'{describe(calculation)} was called by {describe(calculation.caller)}')
    print(f'{describe(total)} was created by {describe(total.creator)}')
    print('inputs of the work chain:', sorted(workflow.inputs))
    print('its settings:', sorted(workflow.inputs.options.settings.get_dict().items()))
    print('outputs of the calculation:', sorted(calculation.outputs))
    print('x + y =', calculation.inputs.x.value + calculation.inputs.y.value, '=', calculation.outputs.sum.value)

    print('links into the calculation:')
    for triple in sorted(calculation.base.links.get_incoming().all(), key=lambda triple: triple.link_label):
        print(f'  {triple.link_label:10} {triple.link_type.value:10} from {describe(triple.node)}')
    returned = workflow.base.links.get_outgoing(link_type=LinkType.RETURN).all_link_labels()
    print('returned by the work chain:', sorted(returned))
    created = calculation.base.links.get_outgoing(node_class=Int).all_nodes()
    print('Int nodes created:', [describe(node) for node in created])
    print('labels starting with "c":', workflow.base.links.get_outgoing(link_label_filter='c%').all_link_labels())

    qb = QueryBuilder()
    qb.append(Int, filters={'attributes.value': 5}, tag='sum')
    qb.append(Node, with_descendants='sum', project='*', tag='ancestor')
    print('ancestors of the sum:', sorted(describe(node) for node in qb.all(flat=True)))

    qb = QueryBuilder()
    qb.append(Int, filters={'attributes.value': 2}, tag='x')
    qb.append(Data, with_ancestors='x', project='*')
    print('data descending from x:', sorted(describe(node) for node in qb.all(flat=True)))

    qb = QueryBuilder()
    qb.append(ProcessNode, tag='process', project=['label', 'node_type'])
    qb.append(Int, with_incoming='process', edge_project=['label', 'type'], project='attributes.value', tag='out')
    qb.order_by({'process': 'label'})
    for row in qb.iterdict():
        edge = row['process--out']
        print(f'  {row["process"]["label"]} --{edge["label"]} ({edge["type"]})--> {row["out"]["attributes.value"]}')

    saved = qb.as_dict()
    again = QueryBuilder.from_dict(saved)
    print('saved query gives', again.count(), 'rows; path:', [item['entity_type'] for item in saved['path']])

    print('calculation files:', calculation.base.repository.list_object_names())
    print('in logs/:', calculation.base.repository.list_object_names('logs'))
    print('log says:', calculation.base.repository.get_object_content('logs/add.log').splitlines())
    notes = workflow.outputs.notes
    for root, dirnames, filenames in notes.base.repository.walk():
        print(f'  {root}: folders {sorted(dirnames)}, files {sorted(filenames)}')
    with notes.base.repository.open('notes/summary.txt') as handle:
        print('summary:', handle.read().strip())
    report = QueryBuilder().append(SinglefileData).one()[0]
    print('report:', report.filename, report.get_content().strip())

    reloaded = load_node(calculation.pk)
    print('reloaded:', describe(reloaded), 'exit status', reloaded.base.attributes.get('exit_status'))
    print('attributes of the settings:', sorted(workflow.inputs.options.settings.base.attributes.keys()))
    counts = {}
    for [node_type] in QueryBuilder().append(Node, project='node_type').iterall():
        counts[node_type] = counts.get(node_type, 0) + 1
    for node_type in sorted(counts):
        print(f'  {counts[node_type]} {node_type}')


if __name__ == '__main__':
    main()
