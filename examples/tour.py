"""A guided tour of provstore, run by the README's first command (``tox -e demo``).

It uses only the public API, and picks its repository backend by name through the plugin registry, as an
application does: run it with ``--backend sandbox`` or any other installed repository backend.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from provstore.registry import get_registry, get_repository_backend
from provstore.repository import Repository


def write_calculation_folder(folder: Path) -> Path:
    """Write the kind of folder a simulation leaves behind: inputs, outputs and a repeated pseudopotential."""
    (folder / 'inputs').mkdir(parents=True)
    (folder / 'outputs').mkdir()
    (folder / 'inputs' / 'aiida.in').write_text('&control\n  calculation = "scf"\n/\n')
    (folder / 'inputs' / 'Si.upf').write_text('<UPF version="2.0.1"> silicon </UPF>\n' * 200)
    (folder / 'outputs' / 'aiida.out').write_text('total energy = -15.84 Ry\n' * 50)
    (folder / 'outputs' / 'Si.upf').write_text('<UPF version="2.0.1"> silicon </UPF>\n' * 200)
    return folder


def main() -> None:
    """Walk through the plugin registry and the file repository."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--backend', default='disk_objectstore', help='repository backend to use, by name')
    args = parser.parse_args()

    print('== Installed plugins (from the `provstore` entry-point group)')
    for record in get_registry().plugins:
        provides = ', '.join(f'{kind.value}:{name}' for kind, names in record.provides.items() for name in names)
        print(f'   {record.name:<18} {record.distribution} {record.version:<8} {record.status.value:<8} {provides}')

    with tempfile.TemporaryDirectory(prefix='provstore-tour-') as workdir:
        work = Path(workdir)
        backend_class = get_repository_backend(args.backend)
        print(f'\n== Repository backend {backend_class.name!r}: {(backend_class.__doc__ or "").splitlines()[0]}')
        backend = backend_class(filepath=str(work / 'repository'))
        backend.initialise()

        repository = Repository(backend)
        repository.put_object_from_tree(write_calculation_folder(work / 'calculation'))
        repository.put_object_from_bytes(b'{"converged": true}', 'outputs/results.json')
        print('   stored a calculation folder; the tree as a node would keep it (aiida-core repository_metadata):')
        print('   ' + json.dumps(repository.serialize(), indent=1).replace('\n', '\n   '))

        files = repository.get_file_keys()
        print(f'\n== {len(files)} files, {len(set(files))} distinct keys ({backend.key_format} keys)')
        for dirpath, _, filenames in repository.walk():
            for name in filenames:
                size = len(repository.get_object_content(dirpath / name))
                print(f'   {dirpath / name!s:<24} {size:>6} bytes')
        print(f'   tree hash: {repository.hash()}')

        report = backend.maintain(dry_run=True, live=False)
        print('\n== Maintenance, dry run (changes nothing):')
        for step in report.steps or ('nothing to do',):
            print(f'   - {step}')
        backend.maintain(live=False)
        print(f'   after full maintenance: {json.dumps(backend.get_info(detailed=True), sort_keys=True)}')

        restored = work / 'restored'
        repository.copy_tree(restored)
        same = (restored / 'inputs' / 'Si.upf').read_bytes() == (
            work / 'calculation' / 'inputs' / 'Si.upf'
        ).read_bytes()
        print(f'\n== Copied the tree back out to a folder: byte-identical = {same}')
        backend.erase()
    print('\nDone. Next: `provstore plugins list`, `provstore plugins show disk_objectstore`.')


if __name__ == '__main__':
    main()
