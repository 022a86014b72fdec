"""The errors of the ORM. Each message names the entity and what is wrong with it.

Link rule violations raise :class:`provstore.orm.links.LinkValidationError`.
"""

from __future__ import annotations

from provstore.exceptions import ProvstoreError

__all__ = [
    'EntityError',
    'InvalidOperationError',
    'ModificationNotAllowedError',
    'MultipleObjectsError',
    'NotExistentError',
    'StoringNotAllowedError',
    'UniquenessError',
    'UnstoredEntityError',
]


class EntityError(ProvstoreError):
    """Base class of the ORM's errors."""


class NotExistentError(EntityError, LookupError):
    """No stored entity matches what was asked for."""


class MultipleObjectsError(EntityError, LookupError):
    """More than one stored entity matches what was asked for exactly one of."""


class ModificationNotAllowedError(EntityError):
    """The change is not allowed on this entity (stored, sealed or referenced); nothing was written."""


class InvalidOperationError(EntityError):
    """The operation does not apply to this entity (copying a node that is not data, say); nothing was changed."""


class UnstoredEntityError(ModificationNotAllowedError, ValueError):
    """An unstored entity was given where only a stored one can be (adding a node to a group); a ``ValueError``
    too, as aiida-core raises one there."""


class StoringNotAllowedError(EntityError):
    """The entity cannot be stored as it is (a bare node, an unstored source or user, ...); nothing was written."""


class UniquenessError(EntityError):
    """Another stored entity already has the value that must be unique (an email, a label); nothing was written."""
