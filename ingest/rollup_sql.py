"""A rollup declaration compiled to the SQL that keeps it (docs/rollups.md).

Both backends run the same statements except where a function differs
(reading JSON properties, percentiles); `timezone('UTC', …)` pins buckets to
UTC whatever the session's time zone. A dimension is stored as text, NULL as
`chr(1)`: a primary key column cannot be NULL, and no event sends that
character. The view turns it back into NULL.

The state of a rollup row is a set of sums: of events, views, visits, visits
without a user, bounces, visit durations, times on page, property values;
plus, in `<table>_user`, how many of the row's visits each user made (its
`users` is how many users have any). Every one of them is a sum over visits,
so a commit adds what its visits are now and takes back what they were.
"""

from __future__ import annotations

from collections.abc import Sequence

from flightdeck.views.rollup_spec import Dimension, Measure, Rollup

from .derived import DERIVED_SCHEMA

__all__ = [
    "NULL_TEXT",
    "bucket",
    "dimension_sql",
    "first_by",
    "listed_types",
    "measure_sql",
    "number_property",
    "percentile",
    "source_sql",
    "state_columns",
    "text_property",
]

NULL_TEXT = "chr(1)"
DERIVED_COLUMNS = tuple(DERIVED_SCHEMA.names)
PAGEVIEW = "pageview"

# Sums kept per row, by the measures that need them (docs/rollups.md says how each
# measure is derived from them in the view).
_ALWAYS = ("events", "visits")
_NEEDS = {
    "views": ("views",),
    "visitors": ("anon_visits", "users"),
    "bounce_rate": ("bounces",),
    "avg_visit_duration": ("span_us",),
    "views_per_visit": ("views",),
    "time_on_page": ("top_us", "top_n"),
}
_QUANTILE = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def state_columns(rollup: Rollup) -> list[str]:
    """The additive sums a row of `rollup` keeps, in order."""
    columns = list(_ALWAYS)
    for measure in rollup.measures:
        for column in _NEEDS.get(measure.kind, ()):
            if column not in columns:
                columns.append(column)
        if measure.kind in ("sum", "avg"):
            for column in (f"p_sum_{measure.key}", f"p_n_{measure.key}"):
                if column not in columns:
                    columns.append(column)
    return columns


def bucket(grain: str, ts: str) -> str:
    """The rollup's time bucket of timestamp expression `ts` (docs/rollups.md)."""
    utc = f"timezone('UTC', {ts})"
    if grain == "hour":
        return f"timezone('UTC', date_trunc('hour', {utc}))"
    if grain == "day":
        return f"CAST({utc} AS DATE)"
    return f"CAST(date_trunc('{grain}', {utc}) AS DATE)"


def text_property(backend: str, key: str, alias: str = "") -> str:
    column = f"{alias}.properties" if alias else "properties"
    if backend == "postgresql":
        return f"({column} ->> '{key}')"
    return f"json_extract_string({column}, '$.{key}')"


def number_property(backend: str, key: str, alias: str = "") -> str:
    """The property as a double where it is a JSON number, else NULL."""
    column = f"{alias}.properties" if alias else "properties"
    if backend == "postgresql":
        return (
            f"(CASE WHEN json_typeof({column} -> '{key}') = 'number' "
            f"THEN CAST({column} ->> '{key}' AS DOUBLE PRECISION) END)"
        )
    return (
        f"(CASE WHEN json_type({column}, '$.{key}') IN ('BIGINT', 'UBIGINT', 'DOUBLE', "
        f"'HUGEINT') THEN CAST(json_extract_string({column}, '$.{key}') AS DOUBLE) END)"
    )


def percentile(backend: str, kind: str, value: str) -> str:
    q = _QUANTILE[kind]
    if backend == "postgresql":
        return f"percentile_cont({q}) WITHIN GROUP (ORDER BY {value})"
    return f"quantile_cont({value}, {q})"


def first_by(backend: str, value: str, where: str, *, last: bool = False) -> str:
    """The `value` of a visit's first (or last) event where `where` holds, in order of
    recorded_at then event_id (an aggregate over the visit's rows)."""
    if backend == "postgresql":
        order = "DESC" if last else ""
        return (
            f"(array_agg({value} ORDER BY recorded_at {order}, event_id {order}) "
            f"FILTER (WHERE {where}))[1]"
        )
    pick = "last" if last else "first"
    return f"{pick}({value} ORDER BY recorded_at, event_id) FILTER (WHERE {where})"


def dimension_sql(dimension: Dimension, backend: str, event: str, visit: str) -> str:
    """The stored (text, never NULL) value of `dimension` for an event row `event`;
    a session-level one from column `visit_<field>` of row `visit`."""
    if dimension.kind == "session":
        raw = f"{visit}.visit_{dimension.field}"
    elif dimension.kind == "property":
        raw = text_property(backend, dimension.field, event)
    else:
        raw = f"CAST({event}.{dimension.field} AS TEXT)"
    return f"coalesce({raw}, {NULL_TEXT})"


def source_sql(types: tuple[str, ...] | None) -> str:
    """The events of `types` (None: every type), with the columns every rollup
    statement uses: page views from tb_pageview_event, every other type from tb_event."""
    columns = (
        "event_id, session_id, recorded_at, user_id, duration_s, properties, page_url, "
        f"referrer, user_agent, {', '.join(DERIVED_COLUMNS)}"
    )
    parts = []
    if types is None or PAGEVIEW in types:
        parts.append(
            f"SELECT {columns}, '{PAGEVIEW}' AS event_type, TRUE AS is_view FROM tb_pageview_event"
        )
    others = None if types is None else [t for t in types if t != PAGEVIEW]
    if others is None or others:
        where = "" if others is None else f" WHERE event_type IN ({listed_types(others)})"
        parts.append(f"SELECT {columns}, event_type, FALSE AS is_view FROM tb_event{where}")
    return " UNION ALL ".join(parts)


def listed_types(types: Sequence[str]) -> str:
    """Event types as SQL literals (names are checked: lowercase, digits, `._-`)."""
    return ", ".join(f"'{t}'" for t in types)


def measure_sql(measure: Measure, row: str = "") -> str:
    """The view's expression of `measure` over state row `row`."""
    p = f"{row}." if row else ""
    kind = measure.kind
    per_visit = f"NULLIF({p}visits, 0)"
    expressions = {
        "events": f"{p}events",
        "views": f"{p}views",
        "visits": f"{p}visits",
        "visitors": f"{p}anon_visits + {p}users",
        "bounce_rate": f"COALESCE({_rounded(f'100.0 * {p}bounces', per_visit)}, 0)",
        "avg_visit_duration": f"CAST({p}span_us AS DOUBLE PRECISION) / 1000000.0 / {per_visit}",
        "views_per_visit": _rounded(f"1.0 * {p}views", per_visit),
        "time_on_page": f"CAST({p}top_us AS DOUBLE PRECISION) / 1000000.0 / NULLIF({p}top_n, 0)",
    }
    if kind in expressions:
        return expressions[kind]
    if kind == "sum":  # NULL when no event had a number, as SQL's sum of nothing
        return f"CASE WHEN {p}p_n_{measure.key} > 0 THEN {p}p_sum_{measure.key} END"
    if kind == "avg":
        return f"{p}p_sum_{measure.key} / NULLIF({p}p_n_{measure.key}, 0)"
    return f"{p}r_{measure.column}"  # recounted from raw events, stored as served


def _rounded(numerator: str, denominator: str) -> str:
    """2 decimals, half away from zero, from an exact NUMERIC (as bounce_rate is today)."""
    return (
        f"CAST(ROUND(CAST(({numerator}) / ({denominator}) AS NUMERIC(20, 10)), 2) "
        "AS DOUBLE PRECISION)"
    )
