"""Screen a small set of materials the way an AiiDA user would: store them, group them, tag them, query them.

Written as a script for aiida-core: it runs with provstore once its import lines marked ``# aiida-core:`` are
changed to import from provstore (the comments hold the aiida-core lines). It works in the loaded (default) profile
and prints only what does not depend on the database (no pks, uuids or times), so that both print the same::

    python find_structures.py
"""

from provstore.manager import load_profile  # aiida-core: from aiida import load_profile
from provstore.orm import (  # aiida-core: from aiida.orm import (
    Dict,
    Group,
    QueryBuilder,
    User,
    load_group,
)

load_profile()

GROUP_LABEL = 'screening/materials'

MATERIALS = [
    # formula, energy per atom (eV), number of atoms, lattice, elements
    ('NaCl', -3.25, 2, 'cubic', ['Na', 'Cl']),
    ('KCl', -3.5, 2, 'cubic', ['K', 'Cl']),
    ('MgO', -5.875, 2, 'cubic', ['Mg', 'O']),
    ('TiO2', -8.125, 6, 'tetragonal', ['Ti', 'O']),
    ('ZnO', -4.5, 4, 'hexagonal', ['Zn', 'O']),
    ('GaN', -4.75, 4, 'hexagonal', ['Ga', 'N']),
    ('Si', -5.5, 2, 'cubic', ['Si']),
    ('Al2O3', -7.25, 10, 'trigonal', ['Al', 'O']),
]


def store_materials() -> Group:
    """Store each material as a Dict node labelled by its formula, all in one group."""
    group, _ = Group.collection.get_or_create(GROUP_LABEL)
    group.description = 'candidate materials for the screening'
    nodes = []
    for formula, energy, natoms, lattice, elements in MATERIALS:
        node = Dict({'formula': formula, 'energy': energy, 'natoms': natoms, 'lattice': lattice, 'elements': elements})
        node.label = formula
        node.description = f'{lattice} {formula}'
        nodes.append(node.store())
    group.add_nodes(nodes)
    return group


def stable_materials(threshold: float) -> list[list]:
    """Formula and energy of the group's materials below ``threshold``, lowest first."""
    qb = QueryBuilder()
    qb.append(Group, filters={'label': GROUP_LABEL}, tag='group')
    qb.append(
        Dict,
        with_group='group',
        filters={'attributes.energy': {'<': threshold}},
        project=['attributes.formula', 'attributes.energy'],
        tag='material',
    )
    qb.order_by({'material': [{'attributes.energy': {'order': 'asc', 'cast': 'f'}}]})
    return qb.all()


def main() -> None:
    group = store_materials()
    print(f'group {group.label!r}: {group.count()} nodes, empty: {group.is_empty}')
    print(f'description: {group.description}')

    print('stable (energy < -4.6 eV/atom):')
    for formula, energy in stable_materials(-4.6):
        print(f'  {formula:6} {energy:8.3f}')

    qb = QueryBuilder().append(
        Dict,
        filters={'or': [{'attributes.lattice': 'hexagonal'}, {'attributes.natoms': {'>=': 6}}]},
        project='label',
    )
    print('hexagonal or large cells:', sorted(qb.all(flat=True)))

    qb = QueryBuilder().append(Dict, filters={'attributes.elements': {'contains': ['O']}}, project='label')
    print('oxides:', sorted(qb.all(flat=True)))

    qb = QueryBuilder().append(Dict, filters={'label': {'like': '%Cl'}}, project=['label', 'attributes.natoms'])
    print('chlorides:', sorted(qb.all()))

    qb = QueryBuilder().append(Dict, filters={'attributes.lattice': {'in': ['cubic', 'trigonal']}})
    print('cubic or trigonal:', qb.count())

    for node in QueryBuilder().append(Dict, filters={'attributes.energy': {'<': -5.0}}).all(flat=True):
        node.base.extras.set('stable', True)
        node.base.extras.set_many({'reviewed_by': 'screening', 'score': round(-node['energy'] * 10)})
    qb = QueryBuilder().append(Dict, filters={'extras.stable': True}, project=['label', 'extras.score'])
    qb.order_by({Dict: {'extras.score': {'order': 'desc', 'cast': 'i'}}})
    print('tagged stable, by score:', qb.all())

    lattices = {}
    for row in QueryBuilder().append(Dict, tag='m', project=['attributes.lattice', 'label']).iterdict():
        lattices.setdefault(row['m']['attributes.lattice'], []).append(row['m']['label'])
    for lattice in sorted(lattices):
        print(f'  {lattice:10} {sorted(lattices[lattice])}')

    stable, _ = Group.collection.get_or_create('screening/stable')
    stable.add_nodes([node for node in group.nodes if node.base.extras.get('stable', False)])
    stable.remove_nodes([node for node in stable.nodes if node.label == 'Si'])
    stable.base.extras.set('threshold', -5.0)
    reloaded = load_group(label='screening/stable')
    print(f'group {reloaded.label!r}: {sorted(node.label for node in reloaded.nodes)}')
    print(f'its extras: {reloaded.base.extras.all}')

    qb = QueryBuilder()
    qb.append(Dict, filters={'label': 'TiO2'}, tag='material')
    qb.append(Group, with_node='material', project='label')
    print('groups holding TiO2:', sorted(qb.all(flat=True)))

    qb = QueryBuilder().append(User, tag='user', project='email')
    qb.append(Group, with_user='user', filters={'label': {'like': 'screening/%'}}, project='label')
    print('owners:', sorted(qb.all()))

    print('distinct lattices:', QueryBuilder().append(Dict, project='attributes.lattice').distinct().count())
    first = QueryBuilder().append(Dict, project='label').order_by({Dict: 'label'}).first(flat=True)
    print('first label:', first)
    print('number of materials:', QueryBuilder().append(Dict).count())


if __name__ == '__main__':
    main()
