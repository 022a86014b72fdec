"""``SavedField``: the one descriptor behind every save-on-set field of the ORM, on both backends."""

from __future__ import annotations

import pytest

from provstore.orm import Computer, Group, Int, User
from provstore.orm.entities import SavedField
from provstore.storage import EntityStorage, EntityType


def test_every_save_on_set_field_is_a_saved_field() -> None:
    """The fields that save at once are declared with the descriptor, each with its docstring."""
    fields = {
        User: ('first_name', 'last_name', 'institution'),
        Group: ('label', 'description'),
        Computer: ('label', 'hostname', 'description', 'metadata'),
        Int: ('label', 'description'),
    }
    for entity_class, names in fields.items():
        for name in names:
            field = getattr(entity_class, name)
            assert isinstance(field, SavedField), (entity_class, name)
            assert 'saved at once' in (field.__doc__ or ''), (entity_class, name)


def test_unstored_entities_keep_values_in_memory(storage: EntityStorage) -> None:
    """Setting a field of an unstored entity writes nothing; storing writes the value set."""
    before = storage.count_rows(EntityType.USER)
    user = User('new@example.org', storage=storage)
    user.first_name = 'Grace'
    assert storage.count_rows(EntityType.USER) == before
    user.store()
    assert User.collection(storage).get(pk=user.pk).first_name == 'Grace'


def test_stored_entities_save_at_once_and_stamp_mtime(storage: EntityStorage) -> None:
    """A stored node's label is in its row at once, with a later mtime; a refused value changes nothing."""
    node = Int(1, storage=storage).store()
    stored_mtime = node.mtime
    assert stored_mtime is not None
    node.label = 'renamed'
    (row,) = storage.get_rows(EntityType.NODE, 'id', [node.pk])
    assert row['label'] == 'renamed'
    assert node.mtime is not None and node.mtime >= stored_mtime
    assert row['mtime'] == node.mtime
    with pytest.raises(TypeError):
        node.label = 5  # type: ignore[assignment]
    (row,) = storage.get_rows(EntityType.NODE, 'id', [node.pk])
    assert (row['label'], node.label) == ('renamed', 'renamed')


def test_copied_fields_hand_out_copies(storage: EntityStorage) -> None:
    """Changing what a copied field (computer metadata) returned changes neither the object nor the row."""
    computer = Computer('box', storage=storage).store()
    computer.metadata = {'shebang': '#!/bin/sh'}
    computer.metadata['shebang'] = 'changed'
    assert computer.metadata == {'shebang': '#!/bin/sh'}
    assert Computer.collection(storage).get(pk=computer.pk).metadata == {'shebang': '#!/bin/sh'}
