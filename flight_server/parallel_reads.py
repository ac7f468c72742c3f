"""Several endpoints for a large raw-event view, for clients that read them in parallel.

A named view of raw events (va_pageview_event, va_event) with more than
SPLIT_ROWS rows is answered with up to MAX_ENDPOINTS endpoints, each a half-open
range of `recorded_at`: the first open below, the last open above, so together
they cover every row whatever its time. Each endpoint's ticket carries its
range as SQL, which the DoGet checks like any client query.

Why ranges of recorded_at and no cut-off: a row's recorded_at never changes,
and an event_id is stored once (dedupe), so disjoint ranges can never send a
row twice, whatever commits between the reads. A cut-off could not make the
union a single snapshot either: `ingested_at` is its transaction's start time,
not its commit order (a put that began before the cut-off may commit after it),
va_pageview_event does not show it, and a cut-off on recorded_at would drop
future-dated events and still admit backfills of old ones. So each range is
read at its own snapshot: with no put in between, the union is exactly the
single-endpoint result; with puts in between, a row they add appears at most
once. Retention deletes only whole old days, ahead of every read.

Ordered or limited queries stay single-endpoint: only whole named views split.
"""

from __future__ import annotations

import datetime as dt

from flightdeck.views import Store
from flightdeck.views.query import Query

__all__ = ["MAX_ENDPOINTS", "SPLIT_ROWS", "split"]

SPLIT_ROWS = 250_000  # rows an endpoint should hold at least
MAX_ENDPOINTS = 4
_SPLIT_VIEWS = frozenset({"va_pageview_event", "va_event"})


def split(store: Store, query: Query) -> list[Query]:
    """`query` as disjoint range queries covering it, or `[query]` if not worth it."""
    if query.view not in _SPLIT_VIEWS or query.parameters is not None:
        return [query]
    parts = min(MAX_ENDPOINTS, _bounded_count(store, query.view) // SPLIT_ROWS)
    if parts < 2:
        return [query]
    low, high = _span(store, query.view)
    if low is None or high is None or low == high:
        return [query]
    step = (high - low) / parts
    cuts = [low + step * i for i in range(1, parts)]
    return [_range(query.view, lo, hi) for lo, hi in zip([None, *cuts], [*cuts, None], strict=True)]


def _bounded_count(store: Store, view: str) -> int:
    """Rows in `view`, counted no further than deciding the split needs: a raw-event
    view may hold billions, and statistics are unset until PostgreSQL's ANALYZE."""
    limit = SPLIT_ROWS * MAX_ENDPOINTS
    sql = f'SELECT count(*) AS n FROM (SELECT 1 FROM "{view}" LIMIT {limit}) AS head'
    with store.read_internal(sql) as reader:
        return int(reader.read_all().column("n")[0].as_py())


def _span(store: Store, view: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    sql = f'SELECT min(recorded_at) AS lo, max(recorded_at) AS hi FROM "{view}"'
    with store.read_internal(sql) as reader:
        row = reader.read_all().to_pylist()[0]
    return row["lo"], row["hi"]


def _range(view: str, low: dt.datetime | None, high: dt.datetime | None) -> Query:
    conditions = []
    if low is not None:
        conditions.append(f"recorded_at >= {_literal(low)}")
    if high is not None:
        conditions.append(f"recorded_at < {_literal(high)}")
    return Query(f'SELECT * FROM "{view}" WHERE ' + " AND ".join(conditions))


def _literal(at: dt.datetime) -> str:
    # Microseconds always written, so the two ends of adjacent ranges are one value.
    text = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return f"CAST('{text}' AS TIMESTAMPTZ)"
