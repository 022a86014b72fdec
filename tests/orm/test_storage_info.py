"""``storage info --detailed`` on both backends: node counts by type and process type, the bytes of every table and
index, where the profile lives; all from the database (no per-node work)."""

from __future__ import annotations

import dataclasses
import json

from cli_helpers import invoke, ok

from provstore.config import edit_config
from provstore.orm import CalcJobNode, Dict, Int, store_nodes
from provstore.storage import EntityStorage
from provstore_psql_dos.sqlite_dos.backend import SqliteDosStorageBackend


def test_detailed_info(storage: EntityStorage) -> None:
    calculation = CalcJobNode(storage=storage)
    calculation.base.attributes.set('sealed', True)
    store_nodes(
        [Int(1, storage=storage), Int(2, storage=storage), Dict({'a': 1}, storage=storage), calculation], storage
    )
    info = json.loads(ok('storage', 'info', '--detailed', '--json').stdout)
    assert info['nodes_by_type'] == {
        'data.core.dict.Dict.': 1,
        'data.core.int.Int.': 2,
        calculation.node_type: 1,
    }
    assert info['nodes_by_process_type'] == ({calculation.process_type: 1} if calculation.process_type else {})
    assert info['entities']['nodes'] == 4
    tables, indexes = info['database']['tables'], info['database']['indexes']
    assert tables['db_dbnode'] > 0 and 'provstore_node_file' in tables
    assert 'ix_provstore_node_file_key' in indexes and indexes['ix_db_dbnode_db_dbnode_ctime'] > 0
    assert info['profile_folder'] == str(storage.profile.folder)  # type: ignore[attr-defined]
    brief = json.loads(ok('storage', 'info', '--json').stdout)
    assert 'nodes_by_type' not in brief and 'tables' not in brief['database']


def test_version_exit_codes(storage: EntityStorage) -> None:
    """``storage version``: 0 when current; 4, with one line naming the profile, when the storage cannot be reached
    (a server on a port nobody listens to; a database file that is not one)."""
    profile = storage.profile  # type: ignore[attr-defined]
    assert ok('storage', 'version').exit_code == 0
    storage.close()  # type: ignore[attr-defined]
    if profile.storage_backend == 'psql_dos':
        broken = dataclasses.replace(profile, storage_config={**profile.storage_config, 'database_port': 1})
        with edit_config() as config:
            config.remove_profile(profile.name)
            config.add_profile(broken, set_default=True)
    else:
        SqliteDosStorageBackend.database_file(profile).write_bytes(b'not a database' * 100)
    result = invoke('storage', 'version')
    assert result.exit_code == 4, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f'Error: profile {profile.name!r}: the storage cannot be reached: ')
