"""aiida-core 2.x's database schema at its head ``main_0002``, as data: what provstore's databases must reflect as.

Written from the schemas aiida-core's own tests reflect from migrated databases:

- PostgreSQL: ``tests/storage/psql_dos/migrations/test_all_schema/test_main_main_0002_.yml``
- SQLite: ``tests/storage/sqlite_dos/migrations/test_all_schema/test_main_main_0002_.yml``

:data:`TABLES` describes each table once, with dialect-neutral column kinds; :data:`POSTGRESQL` and :data:`SQLITE`
are the dicts per dialect, in the form :func:`test_psql_dos_schema.reflect` produces. The dialects differ in
column types (:data:`TYPES`), in the ``ix_pat_*`` indexes (PostgreSQL only) and in the sequence default of ``id``
(PostgreSQL only).

One deliberate difference: aiida-core's SQLite database has no ``db_dbsetting`` table; provstore's has the one of
PostgreSQL, with SQLite types, because it records the repository's uuid there on both dialects.
"""

from __future__ import annotations

from typing import Any

TYPES: dict[str, dict[str, str]] = {
    'postgresql': {
        'integer': 'INTEGER',
        'boolean': 'BOOLEAN',
        'text': 'TEXT',
        'uuid': 'UUID',
        'json': 'JSONB',
        'time': 'TIMESTAMP WITH TIME ZONE',
    },
    'sqlite': {
        'integer': 'INTEGER',
        'boolean': 'BOOLEAN',
        'text': 'TEXT',
        'uuid': 'VARCHAR(32)',
        'json': 'JSON',
        'time': 'DATETIME',
    },
}
"""Column kinds by dialect; ``varchar(n)`` is ``VARCHAR(n)`` on both."""

NOT_NULL = False
NULL = True

TABLES: dict[str, dict[str, Any]] = {
    'db_dbuser': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'email': ('varchar(254)', NOT_NULL),
            'first_name': ('varchar(254)', NOT_NULL),
            'last_name': ('varchar(254)', NOT_NULL),
            'institution': ('varchar(254)', NOT_NULL),
        },
        'unique': {'uq_db_dbuser_email': ('email',)},
        'foreign_keys': {},
        'indexed': (),
        'pattern_indexed': ('email',),
    },
    'db_dbcomputer': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'uuid': ('uuid', NOT_NULL),
            'label': ('varchar(255)', NOT_NULL),
            'hostname': ('varchar(255)', NOT_NULL),
            'description': ('text', NOT_NULL),
            'scheduler_type': ('varchar(255)', NOT_NULL),
            'transport_type': ('varchar(255)', NOT_NULL),
            'metadata': ('json', NOT_NULL),
        },
        'unique': {'uq_db_dbcomputer_label': ('label',), 'uq_db_dbcomputer_uuid': ('uuid',)},
        'foreign_keys': {},
        'indexed': (),
        'pattern_indexed': ('label',),
    },
    'db_dbauthinfo': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'aiidauser_id': ('integer', NOT_NULL),
            'dbcomputer_id': ('integer', NOT_NULL),
            'metadata': ('json', NOT_NULL),
            'auth_params': ('json', NOT_NULL),
            'enabled': ('boolean', NOT_NULL),
        },
        'unique': {'uq_db_dbauthinfo_aiidauser_id_dbcomputer_id': ('aiidauser_id', 'dbcomputer_id')},
        'foreign_keys': {
            'fk_db_dbauthinfo_aiidauser_id_db_dbuser': ('aiidauser_id', 'db_dbuser', 'CASCADE'),
            'fk_db_dbauthinfo_dbcomputer_id_db_dbcomputer': ('dbcomputer_id', 'db_dbcomputer', 'CASCADE'),
        },
        'indexed': ('aiidauser_id', 'dbcomputer_id'),
        'pattern_indexed': (),
    },
    'db_dbnode': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'uuid': ('uuid', NOT_NULL),
            'node_type': ('varchar(255)', NOT_NULL),
            'process_type': ('varchar(255)', NULL),
            'label': ('varchar(255)', NOT_NULL),
            'description': ('text', NOT_NULL),
            'ctime': ('time', NOT_NULL),
            'mtime': ('time', NOT_NULL),
            'attributes': ('json', NULL),
            'extras': ('json', NULL),
            'repository_metadata': ('json', NOT_NULL),
            'dbcomputer_id': ('integer', NULL),
            'user_id': ('integer', NOT_NULL),
        },
        'unique': {'uq_db_dbnode_uuid': ('uuid',)},
        'foreign_keys': {
            'fk_db_dbnode_dbcomputer_id_db_dbcomputer': ('dbcomputer_id', 'db_dbcomputer', 'RESTRICT'),
            'fk_db_dbnode_user_id_db_dbuser': ('user_id', 'db_dbuser', 'RESTRICT'),
        },
        'indexed': ('ctime', 'dbcomputer_id', 'label', 'mtime', 'node_type', 'process_type', 'user_id'),
        'pattern_indexed': ('label', 'node_type', 'process_type'),
    },
    'db_dblink': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'input_id': ('integer', NOT_NULL),
            'output_id': ('integer', NOT_NULL),
            'label': ('varchar(255)', NOT_NULL),
            'type': ('varchar(255)', NOT_NULL),
        },
        'unique': {},
        'foreign_keys': {
            'fk_db_dblink_input_id_db_dbnode': ('input_id', 'db_dbnode', None),
            'fk_db_dblink_output_id_db_dbnode': ('output_id', 'db_dbnode', 'CASCADE'),
        },
        'indexed': ('input_id', 'label', 'output_id', 'type'),
        'pattern_indexed': ('label', 'type'),
    },
    'db_dbgroup': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'uuid': ('uuid', NOT_NULL),
            'label': ('varchar(255)', NOT_NULL),
            'type_string': ('varchar(255)', NOT_NULL),
            'time': ('time', NOT_NULL),
            'description': ('text', NOT_NULL),
            'extras': ('json', NOT_NULL),
            'user_id': ('integer', NOT_NULL),
        },
        'unique': {'uq_db_dbgroup_label_type_string': ('label', 'type_string'), 'uq_db_dbgroup_uuid': ('uuid',)},
        'foreign_keys': {'fk_db_dbgroup_user_id_db_dbuser': ('user_id', 'db_dbuser', 'CASCADE')},
        'indexed': ('label', 'type_string', 'user_id'),
        'pattern_indexed': ('label', 'type_string'),
    },
    'db_dbgroup_dbnodes': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'dbnode_id': ('integer', NOT_NULL),
            'dbgroup_id': ('integer', NOT_NULL),
        },
        'unique': {'uq_db_dbgroup_dbnodes_dbgroup_id_dbnode_id': ('dbgroup_id', 'dbnode_id')},
        'foreign_keys': {
            'fk_db_dbgroup_dbnodes_dbgroup_id_db_dbgroup': ('dbgroup_id', 'db_dbgroup', None),
            'fk_db_dbgroup_dbnodes_dbnode_id_db_dbnode': ('dbnode_id', 'db_dbnode', None),
        },
        'indexed': ('dbgroup_id', 'dbnode_id'),
        'pattern_indexed': (),
    },
    'db_dbcomment': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'uuid': ('uuid', NOT_NULL),
            'dbnode_id': ('integer', NOT_NULL),
            'ctime': ('time', NOT_NULL),
            'mtime': ('time', NOT_NULL),
            'user_id': ('integer', NOT_NULL),
            'content': ('text', NOT_NULL),
        },
        'unique': {'uq_db_dbcomment_uuid': ('uuid',)},
        'foreign_keys': {
            'fk_db_dbcomment_dbnode_id_db_dbnode': ('dbnode_id', 'db_dbnode', 'CASCADE'),
            'fk_db_dbcomment_user_id_db_dbuser': ('user_id', 'db_dbuser', 'CASCADE'),
        },
        'indexed': ('dbnode_id', 'user_id'),
        'pattern_indexed': (),
    },
    'db_dblog': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'uuid': ('uuid', NOT_NULL),
            'time': ('time', NOT_NULL),
            'loggername': ('varchar(255)', NOT_NULL),
            'levelname': ('varchar(50)', NOT_NULL),
            'dbnode_id': ('integer', NOT_NULL),
            'message': ('text', NOT_NULL),
            'metadata': ('json', NOT_NULL),
        },
        'unique': {'uq_db_dblog_uuid': ('uuid',)},
        'foreign_keys': {'fk_db_dblog_dbnode_id_db_dbnode': ('dbnode_id', 'db_dbnode', 'CASCADE')},
        'indexed': ('dbnode_id', 'levelname', 'loggername'),
        'pattern_indexed': ('levelname', 'loggername'),
    },
    'db_dbsetting': {
        'columns': {
            'id': ('integer', NOT_NULL),
            'key': ('varchar(1024)', NOT_NULL),
            'val': ('json', NULL),
            'description': ('text', NOT_NULL),
            'time': ('time', NOT_NULL),
        },
        'unique': {'uq_db_dbsetting_key': ('key',)},
        'foreign_keys': {},
        'indexed': (),
        'pattern_indexed': ('key',),
    },
}
"""Every table of aiida-core's schema, its columns in order (kind, nullable), unique constraints, foreign keys
(column, referred table, ``ON DELETE`` action; all refer to ``id`` and are ``DEFERRABLE INITIALLY DEFERRED``),
plainly indexed columns (``ix_<table>_<table>_<column>``) and pattern-indexed columns (``ix_pat_<table>_<column>``,
``varchar_pattern_ops``, PostgreSQL only)."""

ALEMBIC_VERSION: dict[str, Any] = {
    'columns': {'version_num': ('VARCHAR(32)', NOT_NULL, None)},
    'primary_key': ('alembic_version_pkc', ('version_num',)),
    'unique': {},
    'foreign_keys': {},
    'indexes': {},
}
"""The table alembic keeps the schema version in, the same on both dialects."""


def _type(dialect: str, kind: str) -> str:
    if kind.startswith('varchar('):
        return kind.upper()
    return TYPES[dialect][kind]


def schema(dialect: str) -> dict[str, dict[str, Any]]:
    """Return the schema of ``dialect`` (``'postgresql'`` or ``'sqlite'``), table by table, as reflection shows it."""
    result: dict[str, dict[str, Any]] = {}
    for table, description in TABLES.items():
        columns = {}
        for column, (kind, nullable) in description['columns'].items():
            default = f"nextval('{table}_id_seq'::regclass)" if dialect == 'postgresql' and column == 'id' else None
            columns[column] = (_type(dialect, kind), nullable, default)
        indexes = {
            f'ix_{table}_{table}_{column}': ((column,), False, None) for column in sorted(description['indexed'])
        }
        if dialect == 'postgresql':
            for column in description['pattern_indexed']:
                indexes[f'ix_pat_{table}_{column}'] = ((column,), False, 'varchar_pattern_ops')
        result[table] = {
            'columns': columns,
            'primary_key': (f'{table}_pkey', ('id',)),
            'unique': dict(description['unique']),
            'foreign_keys': {
                name: ((column,), referred, ('id',), ondelete, True, 'DEFERRED')
                for name, (column, referred, ondelete) in description['foreign_keys'].items()
            },
            'indexes': indexes,
        }
    result['alembic_version'] = ALEMBIC_VERSION
    return result


POSTGRESQL = schema('postgresql')
"""aiida-core's schema on PostgreSQL (plus ``alembic_version``)."""

SQLITE = schema('sqlite')
"""aiida-core's schema on SQLite (plus ``alembic_version``, and ``db_dbsetting``: see the module's docstring)."""
