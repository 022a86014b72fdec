"""Helpers of the sqlite_zip tests: where aiida-core's archives are, and how to alter them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fixture_archives import AIIDA_CORE_STATIC

SIMPLE = AIIDA_CORE_STATIC / 'export__migrate__export_main_0001_simple.aiida'


def metadata(**fields: object) -> bytes:
    """Return a ``metadata.json`` of version main_0001 with ``fields`` changed (``None`` removes a key)."""
    value: dict[str, object] = {'export_version': 'main_0001', 'aiida_version': '2.6.0', 'key_format': 'sha256'}
    value.update(fields)
    return json.dumps({key: item for key, item in value.items() if item is not None}).encode()


def altered_database(database: bytes, folder: Path, *statements: str) -> bytes:
    """Return the bytes of ``database`` after running ``statements`` on a copy of it in ``folder``."""
    path = folder / 'altered.sqlite3'
    path.write_bytes(database)
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()
    return path.read_bytes()
