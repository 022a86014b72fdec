"""A guided tour of provstore, run by the README's first command (``tox -e demo``).

It makes a throw-away profile with the real ``provstore quickstart`` in a temporary configuration folder
(``$PROVSTORE_PATH``), stores a small provenance graph with files through the ORM, and looks at it with the real
``provstore`` commands, printed as you would type them. Nothing outside the temporary folder is touched; pass
``--keep`` to keep it and explore further.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE = 'tour'


def provstore_command() -> list[str]:
    """Return how to run the ``provstore`` console script of this Python (``python -m provstore.cli`` without one)."""
    script = shutil.which('provstore', path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, '-m', 'provstore.cli']


def run(*args: str) -> str:
    """Run ``provstore ARGS`` as a user would, print the command and what it printed, and return its output.

    :raises SystemExit: with the command's exit code, after printing its error, if it fails.
    """
    print(f'\n$ provstore {shlex.join(args)}', flush=True)
    result = subprocess.run([*provstore_command(), *args], capture_output=True, text=True, timeout=120, check=False)
    print(result.stdout.rstrip('\n'))
    if result.stderr.strip():
        print(result.stderr.rstrip('\n'), file=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f'the tour stopped: `provstore {shlex.join(args)}` exited with {result.returncode}')
    return result.stdout


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """Write what a simulation starts from and leaves behind: a structure file and an output folder."""
    folder.mkdir(parents=True)
    structure = folder / 'Si.cif'
    structure.write_text('data_Si\n_cell_length_a 5.43\n_symmetry_space_group_name_H-M "F d -3 m"\nSi 0 0 0\n')
    retrieved = folder / 'retrieved'
    (retrieved / 'pseudo').mkdir(parents=True)
    (retrieved / 'aiida.out').write_text('iteration #  1\niteration #  2\n!    total energy = -15.84 Ry\nJOB DONE.\n')
    (retrieved / 'data-file.xml').write_text('<qes:espresso><output><etot>-7.92</etot></output></qes:espresso>\n')
    (retrieved / 'pseudo' / 'Si.upf').write_text('<UPF version="2.0.1"> silicon </UPF>\n' * 20)
    return structure, retrieved


def store_graph(folder: Path) -> dict[str, tuple[int, str]]:
    """Store a workflow that ran one calculation, with its inputs, outputs and files, in one transaction.

    :return: the pk and uuid of each stored node, by role.
    """
    from provstore.orm import (  # noqa: PLC0415 - imported once $PROVSTORE_PATH points at the tour's folder
        CalcJobNode,
        Dict,
        Float,
        FolderData,
        LinkType,
        SinglefileData,
        WorkChainNode,
        store_nodes,
    )

    structure_file, retrieved_folder = write_inputs(folder)
    parameters = Dict({'ecutwfc': 30.0, 'kpoints': [4, 4, 4], 'calculation': 'scf'}, label='scf parameters')
    structure = SinglefileData(structure_file, label='silicon')

    workflow = WorkChainNode(label='silicon energy', process_type='aiida.workflows:quantumespresso.pw.base')
    workflow.set_process_label('PwBaseWorkChain')
    workflow.base.links.add_incoming(parameters, LinkType.INPUT_WORK, 'parameters')
    workflow.base.links.add_incoming(structure, LinkType.INPUT_WORK, 'structure')

    calculation = CalcJobNode(label='scf', process_type='aiida.calculations:quantumespresso.pw')
    calculation.set_process_label('PwCalculation')
    calculation.set_process_state('finished')
    calculation.set_exit_status(0)
    calculation.base.links.add_incoming(parameters, LinkType.INPUT_CALC, 'parameters')
    calculation.base.links.add_incoming(structure, LinkType.INPUT_CALC, 'structure')
    calculation.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'iteration_01')

    retrieved = FolderData(retrieved_folder)
    retrieved.base.links.add_incoming(calculation, LinkType.CREATE, 'retrieved')
    energy = Float(-15.84, label='total energy (Ry)')
    energy.base.links.add_incoming(calculation, LinkType.CREATE, 'energy')

    store_nodes([parameters, structure, workflow, calculation, retrieved, energy])
    energy.base.links.add_incoming(workflow, LinkType.RETURN, 'energy')
    workflow.set_process_state('finished')
    workflow.set_exit_status(0)
    calculation.seal()
    workflow.seal()
    nodes = {
        'parameters': parameters,
        'structure': structure,
        'workflow': workflow,
        'calculation': calculation,
        'retrieved': retrieved,
        'energy': energy,
    }
    return {role: (node.pk, node.uuid) for role, node in nodes.items() if node.pk is not None}


def tour(folder: Path) -> None:
    """Walk through a profile: create it, store a graph, list, show, read files, plan a delete, sum it up, and share
    it as an archive."""
    started = time.perf_counter()
    print(f'== A throw-away configuration folder: PROVSTORE_PATH={folder / "config"}')
    run('quickstart', '--name', PROFILE, '--email', 'tour@example.org')

    print('\n== Storing a small provenance graph with files, through the ORM (one transaction, files in bulk):')
    from provstore.manager import get_manager  # noqa: PLC0415 - imported once $PROVSTORE_PATH is set

    manager = get_manager()
    manager.load_profile(PROFILE)
    try:
        stored = store_graph(folder / 'simulation')
    finally:
        manager.unload_profile()
    print('   Dict + SinglefileData -> CalcJobNode (called by a WorkChainNode) -> FolderData + Float')
    print('   ' + ', '.join(f'{role}: pk {pk}' for role, (pk, _) in stored.items()))

    print('\n== Looking at it with the provstore command (a pk, a uuid or a short uuid prefix names a node):')
    run('node', 'list')
    run('node', 'show', str(stored['calculation'][0]))
    retrieved = stored['retrieved'][1][:8]
    retrieved = f'uuid:{retrieved}' if retrieved.isdigit() else retrieved  # digits only would read as a pk
    run('node', 'repo', 'ls', retrieved)
    run('node', 'repo', 'cat', retrieved, 'aiida.out')

    print('\n== Deleting keeps the graph consistent: what would go with the structure (nothing is deleted):')
    run('node', 'delete', str(stored['structure'][0]), '--dry-run')
    run('storage', 'info')
    share(folder, stored)
    print(f'\nDone in {time.perf_counter() - started:.1f} s.')


def share(folder: Path, stored: dict[str, tuple[int, str]]) -> None:
    """Export the workflow to an .aiida archive, browse the archive in place, and import it into a second profile."""
    archive = str(folder / 'silicon.aiida')
    print('\n== Sharing: the workflow and what it used and made, as an .aiida archive (aiida-core reads it too):')
    run('archive', 'create', archive, '-N', str(stored['workflow'][0]))
    run('archive', 'info', archive)
    print('\n== Browsing the archive in place: no profile, nothing extracted but its database:')
    run('--archive', archive, 'node', 'list')
    retrieved = stored['retrieved'][1]
    run('--archive', archive, 'node', 'repo', 'cat', retrieved, 'aiida.out')
    print("\n== A colleague's profile imports it (all or nothing; a second import adds nothing):")
    run('quickstart', '--name', 'colleague', '--email', 'colleague@example.org')
    run('-p', 'colleague', 'archive', 'import', archive)
    run('-p', 'colleague', 'archive', 'import', archive, '--no-import-group')
    run('-p', 'colleague', 'node', 'list')


def main() -> None:
    """Run the tour in a temporary configuration folder, removed afterwards unless ``--keep``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder and its profile')
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix='provstore-tour-'))
    os.environ['PROVSTORE_PATH'] = str(folder / 'config')  # for this process and the commands it runs
    os.environ.pop('PROVSTORE_PROFILE', None)
    try:
        tour(folder)
    finally:
        if args.keep:
            print(f'\nKept: export PROVSTORE_PATH={shlex.quote(str(folder / "config"))}; provstore node list')
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    main()
