"""``provstore query``: run a query written as JSON (the form ``QueryBuilder.as_dict()`` gives) and print its rows.

Example, the labels of the Dict nodes whose attribute ``energy`` is below -10::

    {"path": [{"tag": "d", "entity_type": "data.core.dict.Dict."}],
     "filters": {"d": {"attributes.energy": {"<": -10}}},
     "project": {"d": ["id", "label"]}}
"""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any

import click

from provstore.cli.context import load_profile_of_context
from provstore.cli.output import echo_json, echo_table

__all__ = ['query']


@click.command('query', short_help='Run a query given as JSON and print its rows.')
@click.argument('source', metavar='[FILE]', type=click.File('r'), default='-', required=False)
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON list of rows ({tag: {projection: value}}).')
@click.option('--limit', type=click.IntRange(min=0), help='Print at most this many rows (overrides the query).')
@click.option('--count', 'count_only', is_flag=True, help='Print the number of rows only.')
@click.option('--sql', 'show_sql', is_flag=True, help='Print the SQL of the query instead of running it.')
@click.option('--explain', is_flag=True, help="Print the database's plan of the query instead of running it.")
@click.pass_context
def query(
    ctx: click.Context,
    *,
    source: Any,
    as_json: bool,
    limit: int | None,
    count_only: bool,
    show_sql: bool,
    explain: bool,
) -> None:
    """Run the query in FILE (standard input when FILE is missing or '-') on the profile's storage; print its rows.

    FILE holds a JSON object as QueryBuilder.as_dict() writes it: "path" (a list of {"tag", "entity_type",
    "subclassing", and a relationship such as "with_incoming": TAG}), "filters" and "project" keyed by tag, and
    optionally "order_by", "limit", "offset", "distinct". The table has a column per projection, headed TAG.FIELD;
    entities print as their pk and uuid. Exit code 0 on success, 1 for a query that is not valid.
    """
    from provstore.orm.entities import get_entity_storage  # noqa: PLC0415 - the ORM only when a query runs
    from provstore.orm.querybuilder import query_from_json  # noqa: PLC0415

    text = source.read()
    load_profile_of_context(ctx)
    builder = query_from_json(text, get_entity_storage())
    if limit is not None:
        builder.limit(limit)
    if show_sql:
        click.echo(builder.as_sql(inline=True))
        return
    if explain:
        click.echo(builder.explain())
        return
    if count_only:
        click.echo(builder.count())
        return
    if as_json:
        echo_json([{tag: {key: _plain(value) for key, value in values.items()} for tag, values in row.items()}
                   for row in builder.iterdict(batch_size=1000)])  # fmt: skip
        return
    headers = [f'{tag}.{key}' for tag, key in builder.result_keys()]
    rows = [[_cell(value) for value in row] for row in builder.iterall(batch_size=1000)]
    if not rows:
        click.echo('No rows.', err=sys.stdout.isatty())
        return
    echo_table(headers, rows)


def _plain(value: Any) -> Any:
    """A value as JSON: entities as {pk, uuid, ...}, times in ISO 8601."""
    from provstore.orm import Entity  # noqa: PLC0415

    if isinstance(value, Entity):
        described: dict[str, Any] = {'pk': value.pk}
        for name in ('uuid', 'node_type', 'label', 'email'):
            if hasattr(value, name):
                described[name] = getattr(value, name)
        return described
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _cell(value: Any) -> str:
    """A value as one table cell."""
    plain = _plain(value)
    if plain is None:
        return ''
    if isinstance(plain, str):
        return plain
    return json.dumps(plain, ensure_ascii=False)
