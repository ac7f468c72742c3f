"""A live subscription request: parsed, checked against the view, ready to filter with.

The request is the JSON of a DoExchange command descriptor (docs/live.md):
`{"subscribe": "va_pageview_aggregate", "where": {"page_url": "/products"},
"columns": [...], "changes_on": [...], "snapshot": true, "cursor": null}`.
`where` conditions are on the view's key columns: a value (equality),
`{"in": [...]}`, or a range `{">=": a, "<": b}` (also `>`, `<=`). Every
mistake is refused with the rule broken and the user's own words.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from flightdeck.views import InvalidQuery

__all__ = ["LIVE_KEYS", "Condition", "Subscription", "parse_subscription"]

# Views that carry `version` and are published on change, with the columns that
# identify a row: updates to the same key replace each other.
LIVE_KEYS = {
    "va_pageview_aggregate": ("page_url", "date"),
    "va_pageview_hourly": ("page_url", "hour"),
}
_FIELDS = {"subscribe", "where", "columns", "changes_on", "snapshot", "cursor"}
_RANGE = {">=": pc.greater_equal, ">": pc.greater, "<=": pc.less_equal, "<": pc.less}


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # "=", "in", ">=", ">", "<=", "<"
    values: tuple[pa.Scalar, ...]

    def expression(self) -> pc.Expression:
        field = pc.field(self.column)
        if self.op == "=":
            return field == self.values[0]
        if self.op == "in":
            return field.isin(pa.array([v.as_py() for v in self.values], self.values[0].type))
        return _RANGE[self.op](field, self.values[0])

    def sql(self) -> str:
        column = f'"{self.column}"'
        if self.op == "in":
            return f"{column} IN ({', '.join(_literal(v) for v in self.values)})"
        return f"{column} {self.op} {_literal(self.values[0])}"


@dataclass(frozen=True)
class Subscription:
    view: str
    keys: tuple[str, ...]
    where: tuple[Condition, ...]
    columns: tuple[str, ...]  # what the client gets: the keys first, always
    changes_on: tuple[str, ...]  # empty: every change is sent
    snapshot: bool
    cursor: int | None  # resume after this update-log sequence

    def matches(self, table: pa.Table) -> pa.Table:
        """The rows of `table` (the view's columns) that the subscription selects."""
        if not self.where:
            return table
        expression = self.where[0].expression()
        for condition in self.where[1:]:
            expression = expression & condition.expression()
        return table.filter(expression)

    @property
    def carried(self) -> tuple[str, ...]:
        """The columns its rows carry until sent: what the client gets, what `changes_on`
        compares, and `version`, so deltas can be matched against what was sent."""
        return tuple(dict.fromkeys([*self.columns, *self.changes_on, "version"]))

    @property
    def selection(self) -> tuple:
        """Equal for subscriptions that select and carry the same rows, whatever their
        snapshot, cursor or `changes_on`: the hub works once for all of them."""
        return (self.view, self.where, self.carried)

    def snapshot_sql(self) -> str:
        """The view's selected rows, as `carried` names them."""
        columns = ", ".join(f'"{c}"' for c in self.carried)
        where = " AND ".join(c.sql() for c in self.where)
        return f'SELECT {columns} FROM "{self.view}"' + (f" WHERE {where}" if where else "")


def parse_subscription(command: bytes, schemas: dict[str, pa.Schema]) -> Subscription:
    """`command` (JSON) checked against `schemas` (the live views' schemas)."""
    request = _json_object(command)
    unknown = set(request) - _FIELDS
    if unknown:
        raise InvalidQuery(
            "subscribe-field", f"unknown field(s) {sorted(unknown)}; use {sorted(_FIELDS)}"
        )
    view = request.get("subscribe")
    if view not in LIVE_KEYS or view not in schemas:
        live = sorted(set(LIVE_KEYS) & set(schemas))
        raise InvalidQuery("live-view", f"{view!r} has no live updates; subscribe to one of {live}")
    schema, keys = schemas[view], LIVE_KEYS[view]
    columns = _names(request.get("columns"), schema, "columns") or tuple(
        n for n in schema.names if n != "version"
    )
    return Subscription(
        view=view,
        keys=keys,
        where=tuple(_conditions(request.get("where"), schema, keys)),
        columns=tuple(dict.fromkeys([*keys, *columns])),
        changes_on=_names(request.get("changes_on"), schema, "changes_on"),
        snapshot=_flag(request.get("snapshot", True)),
        cursor=_cursor(request.get("cursor")),
    )


def _json_object(command: bytes) -> dict:
    try:
        request = json.loads(command)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidQuery("subscribe-json", f"the command must be JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidQuery("subscribe-json", "the command must be a JSON object")
    return request


def _names(value: object, schema: pa.Schema, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidQuery(what, f"{what!r} must be a list of column names")
    for name in value:
        if name not in schema.names:
            raise InvalidQuery("unknown-column", f"{what}: no column {name!r}; have {schema.names}")
    return tuple(value)


def _conditions(where: object, schema: pa.Schema, keys: tuple[str, ...]) -> list[Condition]:
    if where is None:
        return []
    if not isinstance(where, dict):
        raise InvalidQuery("where", "'where' must be an object of column: condition")
    out = []
    for column, test in where.items():
        if column not in keys:
            raise InvalidQuery(
                "unknown-column", f"where: {column!r} is not a key column; filter on {list(keys)}"
            )
        field = schema.field(column)
        if not isinstance(test, dict):
            out.append(Condition(column, "=", (_value(test, field),)))
            continue
        for op, operand in test.items():
            if op == "in":
                if not isinstance(operand, list) or not operand:
                    raise InvalidQuery("where", f"{column}: 'in' takes a non-empty list")
                out.append(Condition(column, "in", tuple(_value(v, field) for v in operand)))
            elif op in _RANGE:
                out.append(Condition(column, op, (_value(operand, field),)))
            else:
                raise InvalidQuery(
                    "operator", f"{column}: unknown operator {op!r}; use in, >=, >, <=, <"
                )
    return out


def _value(value: object, field: pa.Field) -> pa.Scalar:
    try:
        if pa.types.is_date(field.type) and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        elif pa.types.is_timestamp(field.type) and isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return pa.scalar(value, field.type)
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise InvalidQuery(
            "value", f"{field.name}: {value!r} is not a {field.type}: {exc}"
        ) from None


def _literal(value: pa.Scalar) -> str:
    py = value.as_py()
    if isinstance(py, str):
        return "'" + py.replace("'", "''") + "'"
    if isinstance(py, dt.datetime):
        return f"CAST('{py.isoformat()}' AS TIMESTAMPTZ)"
    if isinstance(py, dt.date):
        return f"DATE '{py.isoformat()}'"
    return str(py)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidQuery("snapshot", "'snapshot' must be true or false")
    return value


def _cursor(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidQuery("cursor", "'cursor' must be null or a cursor a server sent (an integer)")
    return value
