"""The `where` language of `Client.view` and live subscriptions: one parser, one SQL writer.

A column maps to a value (equality; None is IS NULL), to `{"in": [...]}` (None in
the list matches NULL), or to operators: `{">=": "2024-01-01", "<": "2024-02-01"}`.
The client checks it before sending; the server parses the same shape again from a
live subscription's JSON and filters with it. It lives in the `flightdeck` package
itself, not the server's, because the client must not import the server's
dependencies; it imports nothing but the standard library.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPERATORS",
    "Condition",
    "WhereError",
    "identifier",
    "literal",
    "parse_where",
    "where_json",
    "where_sql",
]

OPERATORS = ("=", "!=", "in", ">=", ">", "<=", "<")


class WhereError(ValueError):
    """A `where` refused; `rule` names the rule broken (where, column, operator, value)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class Condition:
    """`column op value`; `in` has one value per list item, the others exactly one."""

    column: str
    op: str
    values: tuple[Any, ...]


def parse_where(where: object) -> tuple[Condition, ...]:
    """The conditions of `where` (None: none), each operand checked, in the order given."""
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise WhereError("where", "'where' must be an object of column: condition")
    return tuple(c for column, test in where.items() for c in _conditions(column, test))


def where_sql(conditions: Sequence[Condition]) -> str:
    """The conditions as one SQL boolean, joined by AND ('' for none)."""
    return " AND ".join(_sql(c) for c in conditions)


def identifier(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise WhereError("column", f"a column name must be a non-empty string, not {name!r}")
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal both DuckDB and PostgreSQL read the same way (dates as ISO text,
    which both cast to the column's type)."""
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return _string(_utc(value).isoformat())
    return _string(value)


def _conditions(column: object, test: object) -> list[Condition]:
    identifier(column)
    if not isinstance(test, Mapping):
        return [_compare(column, "=", test)]
    if not test:
        raise WhereError("where", f"where {column!r}: an empty condition")
    out = []
    for op, operand in test.items():
        if op == "in":
            out.append(_in(column, operand))
        elif op in OPERATORS:
            out.append(_compare(column, op, operand))
        else:
            raise WhereError(
                "operator", f"where {column!r}: unknown operator {op!r}; use {', '.join(OPERATORS)}"
            )
    return out


def _compare(column: str, op: str, value: object) -> Condition:
    if value is None and op not in ("=", "!="):
        raise WhereError("value", f"where {column!r}: {op} needs a value, not None")
    return Condition(column, op, (_checked(value, column),))


def _in(column: str, values: object) -> Condition:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | Set):
        raise WhereError("value", f"where {column!r}: 'in' takes a list of values")
    if not values:
        raise WhereError("value", f"where {column!r}: 'in' takes a non-empty list")
    return Condition(column, "in", tuple(_checked(v, column) for v in values))


def _checked(value: object, column: str) -> Any:
    if value is None or isinstance(value, bool | int | decimal.Decimal | dt.date):
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            raise WhereError("value", f"where {column!r}: {value!r} cannot be compared")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WhereError("value", f"where {column!r}: {value!r} cannot be compared")
        return value
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL refuses NUL in text; say so here, not as a backend error
            raise WhereError("value", f"where {column!r}: a string contains a NUL character")
        return value
    raise WhereError(
        "value",
        f"where {column!r}: cannot compare with {value!r}, of type {type(value).__name__}; "
        "use a string, number, bool, date, datetime or None",
    )


def _sql(condition: Condition) -> str:
    quoted = identifier(condition.column)
    if condition.op == "in":
        present = [v for v in condition.values if v is not None]
        # SQL's IN never matches NULL, so a None in the list becomes its own test.
        tests = [f"{quoted} IN ({', '.join(map(literal, present))})"] if present else []
        if len(present) < len(condition.values):
            tests.append(f"{quoted} IS NULL")
        return tests[0] if len(tests) == 1 else f"({' OR '.join(tests)})"
    (value,) = condition.values
    if value is None:
        return f"{quoted} IS {'NOT ' if condition.op == '!=' else ''}NULL"
    return f"{quoted} {'<>' if condition.op == '!=' else condition.op} {literal(value)}"


def _utc(value: dt.date) -> dt.date:
    # Naive datetimes are UTC, as everywhere in flightdeck; the store's session zone
    # must not decide what a filter means.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def where_json(conditions: Sequence[Condition]) -> dict[str, dict[str, Any]]:
    """The conditions as a live request's JSON `where`: dates and datetimes as ISO text."""
    out: dict[str, dict[str, Any]] = {}
    for c in conditions:
        values = [_json(v) for v in c.values]
        out.setdefault(c.column, {})[c.op] = values if c.op == "in" else values[0]
    return out


def _json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return _utc(value).isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
