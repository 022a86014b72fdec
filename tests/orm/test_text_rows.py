"""Rows in text form: the core's default methods (for backends that do not override them) agree with the SQL of
psql_dos and sqlite_dos, row for row, on every entity kind of a stored graph."""

from __future__ import annotations

import uuid

from provstore.storage import EntityStorage, EntityType
from provstore.storage.textrows import from_text_row, time_from_text, time_to_text, to_text_row
from provstore.testing.archive_graph import Graph


def test_default_text_rows_agree_with_the_backend(storage: EntityStorage, graph: Graph) -> None:
    """``EntityStorage.iter_text_rows`` (the default) gives what the backend's override gives, once decoded."""
    for entity in EntityType:
        overridden = [from_text_row(entity, row) for row in storage.iter_text_rows(entity, batch_size=3)]
        default = [from_text_row(entity, row) for row in EntityStorage.iter_text_rows(storage, entity, batch_size=3)]
        assert overridden == default == list(storage.iter_rows(entity)), entity
    ids = [row['id'] for row in storage.iter_rows(EntityType.NODE)][::2]
    chosen = list(EntityStorage.iter_text_rows(storage, EntityType.NODE, batch_size=2, ids=ids[::-1]))
    assert [row['id'] for row in chosen] == ids


def test_default_insert_text_rows_stores_what_the_backend_stores(storage: EntityStorage, graph: Graph) -> None:
    """Copies inserted through the default and through the override are the same rows."""
    originals = list(storage.iter_text_rows(EntityType.NODE))
    copies = []
    for insert in (
        storage.insert_text_rows,
        lambda entity, rows: EntityStorage.insert_text_rows(storage, entity, rows),
    ):
        rows = [{**row, 'uuid': str(uuid.uuid4())} for row in originals]
        for row in rows:
            del row['id']
        copies.append(
            [
                from_text_row(EntityType.NODE, row)
                for row in storage.iter_text_rows(EntityType.NODE, ids=insert(EntityType.NODE, rows))
            ]
        )

    def comparable(rows: list[dict]) -> list[dict]:
        return [{**row, 'id': None, 'uuid': None} for row in rows]

    assert (
        comparable(copies[0])
        == comparable(copies[1])
        == comparable([from_text_row(EntityType.NODE, row) for row in originals])
    )


def test_time_text_round_trip() -> None:
    """A time's text form reads back as the same UTC time; other ISO forms are read too."""
    text = '2024-05-06 06:08:09.123456'
    assert time_to_text(time_from_text(text)) == text
    assert time_to_text(time_from_text('2024-05-06T07:08:09.123456+01:00')) == text
    assert to_text_row(EntityType.USER, {'id': 1, 'email': 'a'}) == {'id': 1, 'email': 'a'}
