"""provstore storage backends ``psql_dos`` (PostgreSQL) and ``sqlite_dos`` (one SQLite file), with a file repository."""
