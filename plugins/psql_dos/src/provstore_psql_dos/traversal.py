"""The one traversal of the provenance graph: a recursive query over ``db_dblink`` inside the database.

It serves deleting and exporting (:meth:`EntitySql.traverse`, the closure of a set of nodes under a rule set) and the
QueryBuilder's ``with_ancestors``/``with_descendants`` (the nodes reached from each start node). It keeps each
``(start, reached)`` pair once (``UNION``, not ``UNION ALL``): a diamond, or two paths to one node, never doubles
the work, and a cycle ends. The depth is carried only when asked for (a depth limit, or a depth to return); a pair is
then kept once per depth it is reached at.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import CTE, Integer, Select, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from provstore_psql_dos.models import Base

if TYPE_CHECKING:
    from provstore_psql_dos.dialects.base import Dialect

__all__ = ['reach', 'seed', 'table_alias']


@functools.cache
def table_alias(table: str, name: str) -> FromClause:
    """The alias ``name`` of ``table``, made once: an alias is immutable, and making one (its column proxies) costs
    more than compiling most queries, so every statement reuses it."""
    return Base.metadata.tables[table].alias(name)


def reach(
    dialect: Dialect,
    seed: Select[Any],
    *,
    forward: Sequence[str],
    backward: Sequence[str],
    max_depth: int | None = None,
    with_depth: bool = False,
    name: str = 'reach',
) -> CTE:
    """Return the recursive CTE of the nodes reachable from ``seed``, with columns ``start_id``, ``reached_id``
    (and ``depth`` when ``with_depth`` or ``max_depth``).

    :param dialect: how the database writes a step (:meth:`~provstore_psql_dos.dialects.base.Dialect.recursive_union`).
    :param seed: the start rows: ``start_id``, ``reached_id`` (the same node) and, with depth, ``depth`` 0. Give
        every seed the same ``start_id`` for the closure of the set rather than of each node.
    :param forward: link types followed from input to output.
    :param backward: link types followed from output to input.
    """
    with_depth = with_depth or max_depth is not None
    cte = seed.cte(name, recursive=True)
    steps: list[Select[Any]] = []
    for types, near, far in ((forward, 'input_id', 'output_id'), (backward, 'output_id', 'input_id')):
        if not types:
            continue
        link = table_alias('db_dblink', f'{name}_{near}')
        # NOTE: the type is compared as an expression, so that each reached node's links are read through the index
        # on input_id (output_id): see the dialects' link_type_key.
        link_type = dialect.link_type_key(link.c.type, cte.c.reached_id)
        steps.append(
            select(link.c[far].label('id'))
            .where(link.c[near] == cte.c.reached_id)
            .where(dialect.in_values(link_type, 'str', list(types)))
        )
    if not steps:
        return cte
    bound = [cte.c.depth < max_depth] if max_depth is not None else []
    return dialect.recursive_union(cte, steps, with_depth, bound, name)


def seed(start_ids: ColumnElement[Any], reached_ids: ColumnElement[Any], with_depth: bool) -> list[ColumnElement[Any]]:
    """The columns of a seed row: ``start_id``, ``reached_id`` and, with depth, ``depth`` 0."""
    columns: list[ColumnElement[Any]] = [start_ids.label('start_id'), reached_ids.label('reached_id')]
    if with_depth:
        columns.append(literal(0, Integer()).label('depth'))
    return columns
