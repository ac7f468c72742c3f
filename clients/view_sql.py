"""`Client.view(...)` as one SELECT over a `va_` view, built with quoted names and literals.

`where` is the language live subscriptions take (where.py): the same parser reads
it here and on the server. The server's SQL guard still checks the result; quoting
here only keeps odd names and values from changing its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import QueryError
from .where import WhereError, identifier, parse_where, where_sql

__all__ = ["refused", "select_view"]


def select_view(
    name: str,
    where: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> str:
    """The SQL text for rows of view `name`; QueryError for what the server would refuse."""
    if not isinstance(name, str) or not name.startswith("va_"):
        raise QueryError(
            f"{name!r} is not a view: view() reads va_ views (see Client.views())",
            rule="va-views-only",
        )
    if isinstance(columns, str):  # a lone name would otherwise be read letter by letter
        columns = [columns]
    try:
        projection = ", ".join(map(identifier, columns)) if columns else "*"
        conditions = where_sql(parse_where(where))
    except WhereError as exc:
        raise refused(exc) from None
    sql = f"SELECT {projection} FROM {identifier(name)}"
    if conditions:
        sql += " WHERE " + conditions
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise QueryError(f"limit must be a whole number >= 0, not {limit!r}", rule="limit")
        sql += f" LIMIT {limit}"
    return sql


def refused(exc: WhereError) -> QueryError:
    """The client's error for a refused `where`, in the words the server uses for it."""
    return QueryError(f"query refused [{exc.rule}]: {exc.detail}", rule=exc.rule)
