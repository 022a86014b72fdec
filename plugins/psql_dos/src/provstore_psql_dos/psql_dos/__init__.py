"""The ``psql_dos`` storage backend: PostgreSQL plus a file repository."""
