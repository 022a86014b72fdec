"""Several processes writing into one profile at once: nothing is lost, no extra is overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from orm_helpers import open_storage

from provstore.orm import CalcJobNode, Data, Int, LinkType, Node

WORKERS = 8

STORE_SCRIPT = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from provstore.manager import get_manager
    from provstore.orm import CalcJobNode, Data, LinkType, store_nodes

    profile, worker, go = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    get_manager().load_profile(profile)
    while not go.exists():
        time.sleep(0.01)

    def data(text):
        node = Data()
        node.base.attributes.set('worker', worker)
        node.base.repository.put_object_from_bytes(text.encode(), 'own.txt')
        node.base.repository.put_object_from_bytes(b'the same in every process', 'shared.txt')
        return node

    made = []
    for round in range(3):
        inputs = [data(f'worker {worker} round {round} input {i}') for i in range(2)]
        calculation = CalcJobNode()
        for i, node in enumerate(inputs):
            calculation.base.links.add_incoming(node, LinkType.INPUT_CALC, f'input_{i}')
        outputs = [data(f'worker {worker} round {round} output {i}') for i in range(2)]
        for i, node in enumerate(outputs):
            node.base.links.add_incoming(calculation, LinkType.CREATE, f'output_{i}')
        store_nodes([*inputs, calculation, *outputs])
        single = data(f'worker {worker} round {round} alone')
        single.store()
        made.append({'calculation': calculation.uuid, 'inputs': [n.uuid for n in inputs],
                     'outputs': [n.uuid for n in outputs], 'single': single.uuid})
    print(json.dumps(made))
    """
)

EXTRAS_SCRIPT = textwrap.dedent(
    """
    import pathlib, sys, time
    from provstore.manager import get_manager
    from provstore.orm import Node

    profile, pk, prefix, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])
    get_manager().load_profile(profile)
    node = Node.collection.get(pk=pk)
    while not go.exists():
        time.sleep(0.01)
    for index in range(40):
        node.base.extras.set(f'{prefix}_{index}', index)
    """
)


def run_together(commands: list[list[str]], go: Path, timeout: float = 300) -> list[str]:
    """Start every command, let them all begin at once (by creating ``go``), and return their outputs."""
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for command in commands
    ]
    time.sleep(0.5)
    go.touch()
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, stderr
        outputs.append(stdout)
    return outputs


@pytest.mark.slow
def test_eight_processes_store_nodes_with_files(profile_name: str, tmp_path: Path) -> None:
    """Eight processes storing linked nodes with files at once: every node, file and link is there afterwards."""
    go = tmp_path / 'go'
    outputs = run_together(
        [[sys.executable, '-c', STORE_SCRIPT, profile_name, str(worker), str(go)] for worker in range(WORKERS)], go
    )
    storage = open_storage(profile_name)
    collection = Node.collection(storage)
    assert collection.count() == WORKERS * 3 * 6
    for worker, output in enumerate(outputs):
        for round_, made in enumerate(json.loads(output)):
            calculation = collection.get(uuid=made['calculation'])
            assert isinstance(calculation, CalcJobNode)
            incoming = calculation.base.links.get_incoming(link_type=LinkType.INPUT_CALC)
            assert sorted(triple.node.uuid for triple in incoming) == sorted(made['inputs'])
            outgoing = calculation.base.links.get_outgoing(link_type=LinkType.CREATE)
            assert sorted(triple.node.uuid for triple in outgoing) == sorted(made['outputs'])
            for kind in ('inputs', 'outputs'):
                for index, node_uuid in enumerate(made[kind]):
                    node = collection.get(uuid=node_uuid)
                    assert isinstance(node, Data) and node.base.attributes.get('worker') == worker
                    text = f'worker {worker} round {round_} {kind[:-1]} {index}'
                    assert node.base.repository.get_object_content('own.txt') == text
                    assert node.base.repository.get_object_content('shared.txt') == 'the same in every process'
            single = collection.get(uuid=made['single'])
            assert single.base.repository.get_object_content('own.txt') == f'worker {worker} round {round_} alone'


@pytest.mark.slow
def test_two_processes_setting_extras_of_one_node_keep_both(profile_name: str, tmp_path: Path) -> None:
    """Two processes setting different extras of the same node, key by key, at once: every key is kept."""
    storage = open_storage(profile_name)
    node = Int(1, storage=storage).store()
    node.base.extras.set('before', True)
    go = tmp_path / 'go'
    run_together(
        [[sys.executable, '-c', EXTRAS_SCRIPT, profile_name, str(node.pk), prefix, str(go)] for prefix in 'ab'], go
    )
    node.refresh()
    expected = {'before': True, **{f'{prefix}_{index}': index for prefix in 'ab' for index in range(40)}}
    assert node.base.extras.all == expected
