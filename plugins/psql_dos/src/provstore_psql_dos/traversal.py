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
from typing import Any

from sqlalchemy import CTE, Integer, Select, Text, func, literal, literal_column, select, true, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from provstore_psql_dos.entities import EntitySql
from provstore_psql_dos.models import Base

__all__ = ['reach', 'seed', 'table_alias']


@functools.cache
def table_alias(table: str, name: str) -> FromClause:
    """The alias ``name`` of ``table``, made once: an alias is immutable, and making one (its column proxies) costs
    more than compiling most queries, so every statement reuses it."""
    return Base.metadata.tables[table].alias(name)


def reach(
    sql: EntitySql,
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
        # on input_id (output_id): PostgreSQL otherwise scans the index on type (with the statistics of a freshly
        # loaded table: seconds instead of milliseconds). On SQLite the expression also involves the reached node
        # (an empty substring of its id): a test of the link alone, once the tables are ANALYZEd, makes SQLite build a
        # Bloom filter of the whole link table at every step (30 ms per query at 450,000 links, against 0.04 ms).
        if sql.dialect == 'postgresql':
            suffix: ColumnElement[Any] = literal_column("''")
        else:
            suffix = func.substr(cte.c.reached_id, 1, 0)
        link_type = link.c.type.op('||', return_type=Text())(suffix)
        steps.append(
            select(link.c[far].label('id'))
            .where(link.c[near] == cte.c.reached_id)
            .where(sql.in_values(link_type, 'str', list(types)))
        )
    if not steps:
        return cte
    bound = [cte.c.depth < max_depth] if max_depth is not None else []
    if sql.dialect == 'postgresql':
        # NOTE: PostgreSQL allows one reference to the recursive table: both directions go into one LATERAL subquery.
        # OFFSET 0 keeps the planner from pulling a step up into a join: without statistics (a freshly loaded
        # table) it would then scan every link at each step (22 ms instead of 0.3 ms for three ancestors).
        fenced = [one.offset(0) for one in steps]
        step = (fenced[0] if len(fenced) == 1 else union_all(*fenced)).lateral(f'{name}_step')
        columns: list[ColumnElement[Any]] = [cte.c.start_id, step.c.id]
        if with_depth:
            columns.append(cte.c.depth + 1)
        return cte.union(select(*columns).select_from(cte.join(step, true())).where(*bound))
    # NOTE: SQLite (3.34 and newer) runs several recursive SELECTs in turn, each joining the reached nodes to links.
    recursive = []
    for one in steps:
        columns = [cte.c.start_id, *one.selected_columns]
        if with_depth:
            columns.append(cte.c.depth + 1)
        recursive.append(one.with_only_columns(*columns).where(*bound))
    return cte.union(*recursive)


def seed(start_ids: ColumnElement[Any], reached_ids: ColumnElement[Any], with_depth: bool) -> list[ColumnElement[Any]]:
    """The columns of a seed row: ``start_id``, ``reached_id`` and, with depth, ``depth`` 0."""
    columns: list[ColumnElement[Any]] = [start_ids.label('start_id'), reached_ids.label('reached_id')]
    if with_depth:
        columns.append(literal(0, Integer()).label('depth'))
    return columns
