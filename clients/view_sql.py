"""`Client.view(...)` as one SELECT over a `va_` view, built with quoted names and literals.

`where` takes the shape `subscribe` takes: a column maps to a value (equality;
None is IS NULL), to `{"in": [...]}`, or to range operators such as
`{">=": "2024-01-01", "<": "2024-02-01"}`. The server's SQL guard still checks
the result; quoting here only keeps odd names and values from changing its meaning.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import QueryError

__all__ = ["OPERATORS", "select_view"]

OPERATORS = ("=", "!=", "in", ">=", ">", "<=", "<")


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
    projection = ", ".join(map(identifier, columns)) if columns else "*"
    sql = f"SELECT {projection} FROM {identifier(name)}"
    conditions = [c for column, test in (where or {}).items() for c in _conditions(column, test)]
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise QueryError(f"limit must be a whole number >= 0, not {limit!r}", rule="limit")
        sql += f" LIMIT {limit}"
    return sql


def identifier(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise QueryError(f"a column name must be a non-empty string, not {name!r}", rule="column")
    return '"' + name.replace('"', '""') + '"'


def _conditions(column: str, test: Any) -> list[str]:
    quoted = identifier(column)
    if not isinstance(test, Mapping):
        return [_compare(quoted, "=", test, column)]
    if not test:
        raise QueryError(f"where {column!r}: an empty condition", rule="where")
    out = []
    for op, operand in test.items():
        if op == "in":
            out.append(_in(quoted, operand, column))
        elif op in OPERATORS:
            out.append(_compare(quoted, op, operand, column))
        else:
            raise QueryError(
                f"where {column!r}: unknown operator {op!r}; use {', '.join(OPERATORS)}",
                rule="operator",
            )
    return out


def _compare(quoted: str, op: str, value: Any, column: str) -> str:
    if value is None:
        if op in ("=", "!="):
            return f"{quoted} IS {'NOT ' if op == '!=' else ''}NULL"
        raise QueryError(f"where {column!r}: {op} needs a value, not None", rule="value")
    return f"{quoted} {'<>' if op == '!=' else op} {literal(value, column)}"


def _in(quoted: str, values: Any, column: str) -> str:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | set | frozenset):
        raise QueryError(f"where {column!r}: 'in' takes a list of values", rule="value")
    if not values:
        raise QueryError(f"where {column!r}: 'in' takes a non-empty list", rule="value")
    present = [v for v in values if v is not None]
    # SQL's IN never matches NULL, so a None in the list becomes its own test.
    tests = [f"{quoted} IN ({', '.join(literal(v, column) for v in present)})"] if present else []
    if len(present) < len(values):
        tests.append(f"{quoted} IS NULL")
    return tests[0] if len(tests) == 1 else f"({' OR '.join(tests)})"


def literal(value: Any, column: str = "?") -> str:
    """A SQL literal both DuckDB and PostgreSQL read the same way."""
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        if value != value or abs(value) == math.inf:
            raise QueryError(f"where {column!r}: {value!r} cannot be compared", rule="value")
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        # Naive datetimes are UTC, as everywhere in flightdeck; the store's session zone
        # must not decide what a filter means.
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return _string(value.isoformat())
    if isinstance(value, dt.date):
        return _string(value.isoformat())
    if isinstance(value, str):
        return _string(value)
    raise QueryError(
        f"where {column!r}: cannot compare with {value!r}, of type {type(value).__name__}; "
        "use a string, number, bool, date, datetime or None",
        rule="value",
    )


def _string(text: str) -> str:
    if "\x00" in text:  # PostgreSQL refuses NUL in text; say so here, not as a backend error
        raise QueryError("a string in where contains a NUL character", rule="value")
    return "'" + text.replace("'", "''") + "'"
