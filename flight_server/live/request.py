"""A live subscription request: parsed, checked against the view, ready to filter with.

The request is the JSON of a DoExchange command descriptor (docs/live.md):
`{"subscribe": "va_pageview_aggregate", "where": {"page_url": "/products"},
"columns": [...], "changes_on": [...], "snapshot": true, "cursor": null,
"messages": 2, "min_interval_ms": 1000}`.
`where` is the language `Client.view` takes (flightdeck/where.py), on any
column of the view: a row that stops matching is sent as `remove`, so every
update is marked with whether it matches (`LIVE`) rather than dropped. Every
mistake is refused with the rule broken and the user's own words.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from flightdeck.views import InvalidQuery
from flightdeck.where import Condition, WhereError, parse_where, where_sql

__all__ = ["LIVE", "MAX_TOP", "Subscription", "Top", "parse_subscription"]

# The column the hub adds to every row it offers: true when the row is (still) in the
# subscription's selection, false when it left it or was deleted (sent as `remove`).
LIVE = "flightdeck_live"
_FIELDS = {
    "subscribe",
    "where",
    "columns",
    "changes_on",
    "snapshot",
    "cursor",
    "messages",
    "min_interval_ms",
    "top",
    "lifetime",
}
_TOP_FIELDS = {"order_by", "desc", "limit"}
MAX_TOP = 1000  # rows a live top-N keeps; each refresh reads at most this many
_MAX_INTERVAL_MS = 3_600_000  # an hour: longer than any dashboard refresh
_COMPARE = {
    "=": pc.equal,
    "!=": pc.not_equal,
    ">=": pc.greater_equal,
    ">": pc.greater,
    "<=": pc.less_equal,
    "<": pc.less,
}


@dataclass(frozen=True)
class Top:
    """A live top-N: the first `limit` rows by `order_by` (NULLs last), ties by key."""

    order_by: str
    desc: bool
    limit: int

    def order_sql(self, keys: tuple[str, ...]) -> str:
        direction = "DESC" if self.desc else "ASC"
        tie = ", ".join(f'"{k}" ASC' for k in keys)
        return f'ORDER BY "{self.order_by}" {direction} NULLS LAST, {tie} LIMIT {self.limit}'


@dataclass(frozen=True)
class Subscription:
    view: str
    keys: tuple[str, ...]
    where: tuple[Condition, ...]
    columns: tuple[str, ...]  # what the client gets: the keys first, always
    changes_on: tuple[str, ...]  # empty: every change is sent
    snapshot: bool
    cursor: int | None  # resume after this update-log sequence
    upsert: bool = False  # "messages": 2: changed rows come as `upsert`, not `update`
    min_interval_ms: int = 0  # send at most this often; updates per key coalesce meanwhile
    top: Top | None = None
    lifetime: str | None = None  # the update log's lifetime `cursor` came from
    schema: pa.Schema | None = field(default=None, compare=False)  # the view's

    def matches(self, table: pa.Table) -> pa.Table:
        """The rows of `table` (the view's columns) that the subscription selects."""
        if not self.where:
            return table
        return table.filter(self._expression(table.schema))

    def marked(self, table: pa.Table) -> pa.Table:
        """`table` (the view's columns) as `carried` and `LIVE`: whether each row matches.

        While `where` names key columns only, a row never leaves the selection by
        changing, so rows that do not match are dropped here as before."""
        if self.keys_only:
            table = self.matches(table)
            live = pa.array([True] * table.num_rows, pa.bool_())
        else:
            live = pc.fill_null(self._mask(table), False)
        return table.select(list(self.carried)).append_column(LIVE, live)

    def removed(self, keys: pa.Table) -> pa.Table:
        """Keys and `version` of deleted rows as `carried` and `LIVE` (false)."""
        n = keys.num_rows
        columns = {
            c: keys.column(c) if c in keys.column_names else pa.nulls(n, self.schema.field(c).type)
            for c in self.carried
        }
        return pa.table({**columns, LIVE: pa.array([False] * n, pa.bool_())})

    @property
    def keys_only(self) -> bool:
        return all(c.column in self.keys for c in self.where)

    def _mask(self, table: pa.Table) -> pa.ChunkedArray | pa.Array:
        if not self.where:
            return pa.array([True] * table.num_rows, pa.bool_())
        projected = ds.dataset(table).to_table(columns={"m": self._expression(table.schema)})
        return projected.column("m")

    def _expression(self, schema: pa.Schema) -> pc.Expression:
        expressions = [_expression(c, schema.field(c.column).type) for c in self.where]
        expression = expressions[0]
        for more in expressions[1:]:
            expression = expression & more
        return expression

    @property
    def carried(self) -> tuple[str, ...]:
        """The columns its rows carry until sent: what the client gets, what `changes_on`
        compares, and `version`, so deltas can be matched against what was sent."""
        ranked = [self.top.order_by] if self.top else []
        return tuple(dict.fromkeys([*self.columns, *self.changes_on, *ranked, "version"]))

    @property
    def selection(self) -> tuple:
        """Equal for subscriptions that select and carry the same rows, whatever their
        snapshot, cursor or `changes_on`: the hub works once for all of them."""
        return (self.view, self.where, self.carried)  # a top-N ranks per subscriber

    def snapshot_sql(self) -> str:
        """The view's selected rows, as `carried` names them."""
        columns = ", ".join(f'"{c}"' for c in self.carried)
        where = where_sql(self.where)
        sql = f'SELECT {columns} FROM "{self.view}"' + (f" WHERE {where}" if where else "")
        return sql + (" " + self.top.order_sql(self.keys) if self.top else "")


def parse_subscription(
    command: bytes,
    schemas: dict[str, pa.Schema],
    live_keys: dict[str, tuple[str, ...]],
) -> Subscription:
    """`command` (JSON) checked against `schemas` (the live views' schemas) and
    `live_keys` (each live view's key columns: views.live_views.live_keys)."""
    request = _json_object(command)
    unknown = set(request) - _FIELDS
    if unknown:
        raise InvalidQuery(
            "subscribe-field", f"unknown field(s) {sorted(unknown)}; use {sorted(_FIELDS)}"
        )
    view = request.get("subscribe")
    if view not in live_keys or view not in schemas:
        live = sorted(set(live_keys) & set(schemas))
        raise InvalidQuery("live-view", f"{view!r} has no live updates; subscribe to one of {live}")
    schema, keys = schemas[view], live_keys[view]
    columns = _names(request.get("columns"), schema, "columns") or tuple(
        n for n in schema.names if n != "version"
    )
    return Subscription(
        view=view,
        keys=keys,
        where=tuple(_conditions(request.get("where"), schema)),
        columns=tuple(dict.fromkeys([*keys, *columns])),
        changes_on=_names(request.get("changes_on"), schema, "changes_on"),
        snapshot=_flag(request.get("snapshot", True)),
        cursor=_cursor(request.get("cursor")),
        upsert=_messages(request.get("messages", 1)),
        min_interval_ms=_interval(request.get("min_interval_ms", 0)),
        top=_top(request.get("top"), schema),
        lifetime=_lifetime(request.get("lifetime")),
        schema=schema,
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


def _conditions(where: object, schema: pa.Schema) -> list[Condition]:
    try:
        conditions = parse_where(where)
    except WhereError as exc:
        raise InvalidQuery(exc.rule, exc.detail) from None
    for condition in conditions:
        if condition.column not in schema.names:
            raise InvalidQuery(
                "unknown-column",
                f"where: no column {condition.column!r}; have {schema.names}",
            )
    # Typed as the column is, so that the SQL and the Arrow filter compare alike.
    return [
        Condition(c.column, c.op, tuple(_value(v, schema.field(c.column)) for v in c.values))
        for c in conditions
    ]


def _value(value: object, field: pa.Field) -> object:
    if value is None:
        return None
    try:
        if pa.types.is_date(field.type) and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        elif pa.types.is_timestamp(field.type) and isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return pa.scalar(value, field.type).as_py()
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise InvalidQuery(
            "value", f"where {field.name!r}: {value!r} is not a {field.type}: {exc}"
        ) from None


def _expression(condition: Condition, type_: pa.DataType) -> pc.Expression:
    """`condition` as an Arrow filter that keeps the rows its SQL keeps (never NULLs
    unless asked for, as SQL's comparisons never match them)."""
    field = pc.field(condition.column)
    present = [v for v in condition.values if v is not None]
    if condition.op == "in":
        matched = field.isin(pa.array(present, type_)) if present else pc.scalar(False)
        return matched | field.is_null() if len(present) < len(condition.values) else matched
    if not present:
        return field.is_valid() if condition.op == "!=" else field.is_null()
    return _COMPARE[condition.op](field, pa.scalar(present[0], type_))


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


def _messages(value: object) -> bool:
    if isinstance(value, bool) or value not in (1, 2):
        raise InvalidQuery(
            "messages", "'messages' must be 1 (changed rows as `update`) or 2 (as `upsert`)"
        )
    return value == 2


def _interval(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INTERVAL_MS:
        raise InvalidQuery(
            "min_interval_ms", f"'min_interval_ms' must be an integer from 0 to {_MAX_INTERVAL_MS}"
        )
    return value


def _top(value: object, schema: pa.Schema) -> Top | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - _TOP_FIELDS or "order_by" not in value:
        raise InvalidQuery(
            "top", '\'top\' must look like {"order_by": "visits", "desc": true, "limit": 10}'
        )
    (order_by,) = _names([value["order_by"]], schema, "top")
    desc, limit = value.get("desc", False), value.get("limit", 10)
    if not isinstance(desc, bool):
        raise InvalidQuery("top", "top: 'desc' must be true or false")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TOP:
        raise InvalidQuery("top", f"top: 'limit' must be an integer from 1 to {MAX_TOP}")
    return Top(order_by, desc, limit)


def _lifetime(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidQuery("lifetime", "'lifetime' must be null or a lifetime a server sent")
    return value
