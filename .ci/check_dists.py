"""Check the metadata of every built wheel: names, pins, entry points and typing markers.

Run by the tox env ``pkg`` after ``build`` and ``twine check``: ``python .ci/check_dists.py DIST_FOLDER``.
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

CORE_VERSION = '0.1.0'

EXPECTED = {
    # distribution: (import package, entry point in the provstore group or None, requirement on the core)
    'provstore': ('provstore', None, None),
    'provstore_sandbox': ('provstore_sandbox', 'sandbox = provstore_sandbox.hooks', f'provstore=={CORE_VERSION}'),
    'provstore_disk_objectstore': (
        'provstore_disk_objectstore',
        'disk_objectstore = provstore_disk_objectstore.hooks',
        f'provstore=={CORE_VERSION}',
    ),
    'provstore_psql_dos': (
        'provstore_psql_dos',
        'psql_dos = provstore_psql_dos.hooks',
        f'provstore=={CORE_VERSION}',
    ),
    'provstore_sqlite_zip': (
        'provstore_sqlite_zip',
        'sqlite_zip = provstore_sqlite_zip.hooks',
        f'provstore=={CORE_VERSION}',
    ),
    'provstore_plainfolder': (
        'provstore_plainfolder',
        'plainfolder = provstore_plainfolder.hooks',
        'provstore<0.2,>=0.1',
    ),
}


def check_wheel(wheel: Path) -> list[str]:
    """Return the problems found in one wheel."""
    dist = wheel.name.split('-')[0]
    if dist not in EXPECTED:
        return [f'{wheel.name}: unexpected distribution {dist!r}']
    package, entry_point, requirement = EXPECTED[dist]
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(name.split('/')[0] for name in names if name.endswith('.dist-info/METADATA'))
        metadata = Parser().parsestr(archive.read(f'{info}/METADATA').decode())
        entry_points = archive.read(f'{info}/entry_points.txt').decode() if f'{info}/entry_points.txt' in names else ''
    if f'{package}/py.typed' not in names:
        problems.append(f'{wheel.name}: {package}/py.typed is missing')
    if metadata['Requires-Python'] != '>=3.10':
        problems.append(f'{wheel.name}: Requires-Python is {metadata["Requires-Python"]!r}, expected >=3.10')
    if not metadata['Summary']:
        problems.append(f'{wheel.name}: no summary')
    if entry_point is not None and entry_point not in entry_points:
        problems.append(f'{wheel.name}: entry point {entry_point!r} missing from entry_points.txt')
    if requirement is not None and requirement not in (metadata.get_all('Requires-Dist') or []):
        problems.append(f'{wheel.name}: requirement {requirement!r} missing: {metadata.get_all("Requires-Dist")}')
    return problems


def main(folder: str) -> int:
    """Check every wheel in ``folder``; print problems and return the exit code."""
    wheels = sorted(Path(folder).glob('*.whl'))
    found = {wheel.name.split('-')[0] for wheel in wheels}
    problems = [f'no wheel for {dist}' for dist in sorted(set(EXPECTED) - found)]
    for wheel in wheels:
        problems.extend(check_wheel(wheel))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f'{len(wheels)} wheels checked, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
