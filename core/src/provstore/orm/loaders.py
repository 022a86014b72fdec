"""Load one stored entity by pk, uuid (or its beginning) or label: ``load_node``, ``load_group``, ``load_computer``.

An identifier given without a keyword is read as aiida-core reads it: a whole number is a pk; else text that is
hexadecimal once its dashes are removed is a uuid, or the beginning of one; else a label. A final ``!`` makes it a
label whatever it looks like (``load_group('1234!')`` loads the group labelled ``1234``).
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any, TypeVar

from provstore.orm.computers import Computer
from provstore.orm.entities import Entity
from provstore.orm.exceptions import MultipleObjectsError, NotExistentError
from provstore.orm.groups import Group
from provstore.orm.nodes import Node
from provstore.orm.querybuilder import QueryBuilder
from provstore.storage import EntityStorage

EntityT = TypeVar('EntityT', bound=Entity)

LABEL_MARKER = '!'
"""Ends an identifier that is a label, whatever else it looks like."""


def _identifier_filter(identifier: Any, pk: Any, uuid: Any, label: Any, query_with_dashes: bool) -> dict[str, Any]:
    """Return the filter that one identifier stands for; refuse none or several, or one of the wrong type."""
    given = [value is not None for value in (identifier, pk, uuid, label)].count(True)
    if given != 1:
        raise ValueError(f'give exactly one of identifier, pk, uuid or label, got {given}')
    if pk is not None and (not isinstance(pk, int) or isinstance(pk, bool)):
        raise TypeError(f'a pk must be an integer, got {pk!r}')
    for name, value in (('uuid', uuid), ('label', label)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f'a {name} must be a string, got {value!r}')
    if identifier is not None:
        pk, uuid, label = _infer(str(identifier))
    if pk is not None:
        return {'id': pk}
    if uuid is not None:
        return _uuid_filter(uuid, query_with_dashes)
    return {'label': label}


def _infer(text: str) -> tuple[int | None, str | None, str | None]:
    """Read an identifier given without a keyword as ``(pk, uuid, label)``, one of them set."""
    if not text:
        raise ValueError('an identifier cannot be empty')
    if text.endswith(LABEL_MARKER):
        return None, None, text.rstrip(LABEL_MARKER)
    try:
        return int(text), None, None
    except ValueError:
        pass
    try:
        int(text.replace('-', ''), 16)
    except ValueError:
        return None, None, text
    return None, text, None


def _uuid_filter(text: str, query_with_dashes: bool) -> dict[str, Any]:
    """A whole uuid matches itself; a shorter text matches the uuids beginning with it (dashes put back first)."""
    digits = text.replace('-', '')
    if query_with_dashes:
        # NOTE: the dashes of the canonical form go after hex digits 8, 12, 16 and 20; put back from the right.
        for position in (20, 16, 12, 8):
            if len(digits) > position:
                digits = f'{digits[:position]}-{digits[position:]}'
    try:
        return {'uuid': str(uuid_module.UUID(digits))}
    except ValueError:
        return {'uuid': {'like': f'{digits}%'}}


def _load(base: type[EntityT], filters: dict[str, Any], sub_classes: Any, storage: EntityStorage | None) -> EntityT:
    """Return the only entity of class ``base`` (or of ``sub_classes``) that passes ``filters``."""
    classes: tuple[type[EntityT], ...] = (base,)
    if sub_classes is not None:
        if not isinstance(sub_classes, tuple):
            raise TypeError(f'sub_classes must be a tuple of classes, got {sub_classes!r}')
        for sub_class in sub_classes:
            if not (isinstance(sub_class, type) and issubclass(sub_class, base)):
                raise ValueError(f'{sub_class!r} is not a subclass of {base.__name__}')
        classes = sub_classes
    one_or_all = classes[0] if len(classes) == 1 else classes
    builder = QueryBuilder(storage=storage).append(one_or_all, tag='entity', filters=filters, project='*')
    names = ' or '.join(cls.__name__ for cls in classes)
    rows = builder.limit(2).all(flat=True)
    if not rows:
        raise NotExistentError(f'No {names} with {filters}')
    if len(rows) > 1:
        raise MultipleObjectsError(f'More than one {names} with {filters}')
    entity: EntityT = rows[0]
    return entity


def load_node(  # noqa: PLR0917 - aiida-core's signature, positional arguments included
    identifier: int | str | None = None,
    pk: int | None = None,
    uuid: str | None = None,
    label: str | None = None,
    sub_classes: tuple[type[Node], ...] | None = None,
    query_with_dashes: bool = True,
    *,
    storage: EntityStorage | None = None,
) -> Node:
    """Return the stored node that one identifier names.

    :param sub_classes: only nodes of these subclasses of :class:`Node`.
    :param query_with_dashes: put the dashes back in a uuid given without them.
    :raises ValueError: if not exactly one identifier is given.
    :raises NotExistentError: if no node matches.
    :raises MultipleObjectsError: if several do (a label, or a short uuid beginning).
    """
    filters = _identifier_filter(identifier, pk, uuid, label, query_with_dashes)
    return _load(Node, filters, sub_classes, storage)


def load_group(  # noqa: PLR0917 - aiida-core's signature, positional arguments included
    identifier: int | str | None = None,
    pk: int | None = None,
    uuid: str | None = None,
    label: str | None = None,
    sub_classes: tuple[type[Group], ...] | None = None,
    query_with_dashes: bool = True,
    *,
    storage: EntityStorage | None = None,
) -> Group:
    """Return the stored group that one identifier names; the same rules as :func:`load_node`."""
    filters = _identifier_filter(identifier, pk, uuid, label, query_with_dashes)
    return _load(Group, filters, sub_classes, storage)


def load_computer(  # noqa: PLR0917 - aiida-core's signature, positional arguments included
    identifier: int | str | None = None,
    pk: int | None = None,
    uuid: str | None = None,
    label: str | None = None,
    sub_classes: tuple[type[Computer], ...] | None = None,
    query_with_dashes: bool = True,
    *,
    storage: EntityStorage | None = None,
) -> Computer:
    """Return the stored computer that one identifier names; the same rules as :func:`load_node`."""
    filters = _identifier_filter(identifier, pk, uuid, label, query_with_dashes)
    return _load(Computer, filters, sub_classes, storage)
