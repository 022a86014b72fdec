"""The ``sqlite_dos`` storage backend: one SQLite file plus a file repository, the embedded default."""
