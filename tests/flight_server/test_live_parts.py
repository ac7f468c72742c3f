"""The pure parts of live subscriptions: request checking, coalescing, stale and unchanged rows."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from flightdeck.flight_server.live.pending import Pending, Sent
from flightdeck.flight_server.live.request import parse_subscription
from flightdeck.views import InvalidQuery

SCHEMA = pa.schema(
    [
        ("page_url", pa.string()),
        ("date", pa.date32()),
        ("view_count", pa.int64()),
        ("unique_visitors", pa.int64()),
        ("bounce_rate", pa.float64()),
        ("version", pa.int64()),
    ]
)
SCHEMAS = {"va_pageview_aggregate": SCHEMA}


def _parse(**request) -> object:
    return parse_subscription(json.dumps(request).encode(), SCHEMAS)


def _rows(*rows) -> pa.Table:
    names = ["page_url", "date", "view_count", "unique_visitors", "bounce_rate", "version"]
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows], schema=SCHEMA)


D1, D2 = dt.date(2024, 1, 15), dt.date(2024, 1, 16)


def test_a_full_request_is_parsed_and_filters_like_its_sql():
    sub = _parse(
        subscribe="va_pageview_aggregate",
        where={"page_url": {"in": ["/x", "/y"]}, "date": {">=": "2024-01-16"}},
        columns=["view_count"],
        changes_on=["view_count"],
        snapshot=False,
        cursor=41,
    )
    assert sub.columns == ("page_url", "date", "view_count")  # keys always come along
    assert (sub.snapshot, sub.cursor, sub.changes_on) == (False, 41, ("view_count",))
    table = _rows(("/x", D1, 1, 1, 0.0, 1), ("/x", D2, 2, 1, 0.0, 1), ("/z", D2, 3, 1, 0.0, 1))
    assert sub.matches(table).column("view_count").to_pylist() == [2]
    assert sub.snapshot_sql() == (
        'SELECT "page_url", "date", "view_count", "version" FROM "va_pageview_aggregate" '
        "WHERE \"page_url\" IN ('/x', '/y') AND \"date\" >= DATE '2024-01-16'"
    )


def test_defaults_are_every_column_with_a_snapshot():
    sub = _parse(subscribe="va_pageview_aggregate")
    assert sub.columns == ("page_url", "date", "view_count", "unique_visitors", "bounce_rate")
    assert sub.snapshot is True and sub.cursor is None and sub.where == ()


def test_quotes_in_values_stay_values():
    sub = _parse(subscribe="va_pageview_aggregate", where={"page_url": "/it's"})
    assert "'/it''s'" in sub.snapshot_sql()


@pytest.mark.parametrize(
    ("request_", "rule", "words"),
    [
        (b"not json", "subscribe-json", "JSON"),
        ({"subscribe": "va_pageview_event"}, "live-view", "va_pageview_aggregate"),
        ({"subscribe": "va_pageview_aggregate", "colums": []}, "subscribe-field", "colums"),
        ({"subscribe": "va_pageview_aggregate", "columns": ["nope"]}, "unknown-column", "nope"),
        (
            {"subscribe": "va_pageview_aggregate", "where": {"view_count": 3}},
            "unknown-column",
            "key",
        ),
        (
            {"subscribe": "va_pageview_aggregate", "where": {"page_url": {"~": "x"}}},
            "operator",
            "~",
        ),
        ({"subscribe": "va_pageview_aggregate", "where": {"date": "yesterday"}}, "value", "date"),
        ({"subscribe": "va_pageview_aggregate", "cursor": "abc"}, "cursor", "integer"),
        ({"subscribe": "va_pageview_aggregate", "snapshot": "yes"}, "snapshot", "true or false"),
    ],
)
def test_bad_requests_say_which_rule_and_what(request_, rule, words):
    raw = request_ if isinstance(request_, bytes) else json.dumps(request_).encode()
    with pytest.raises(InvalidQuery) as refused:
        parse_subscription(raw, SCHEMAS)
    assert refused.value.rule == rule and words in str(refused.value)


def test_pending_coalesces_by_key_and_reports_falling_behind():
    pending = Pending(("page_url", "date"), limit=2)
    pending.offer(_rows(("/x", D1, 1, 1, 0.0, 1)), cursor=5)
    pending.offer(_rows(("/x", D1, 2, 1, 0.0, 2), ("/y", D1, 1, 1, 0.0, 2)), cursor=6)
    table, cursor = pending.take(timeout=0)
    assert cursor == 6 and not pending.behind
    assert sorted(table.select(["page_url", "view_count"]).to_pylist(), key=str) == [
        {"page_url": "/x", "view_count": 2},
        {"page_url": "/y", "view_count": 1},
    ]
    assert pending.take(timeout=0) == (None, 6)
    pending.offer(None, cursor=9)  # the log moved on without rows for us
    assert pending.take(timeout=0) == (None, 9)
    pending.offer(_rows(*[(f"/{i}", D1, 1, 1, 0.0, 3) for i in range(3)]), cursor=10)
    assert pending.behind  # three distinct keys unsent: more than the limit


def test_sent_drops_stale_versions_and_unchanged_watched_columns():
    sent = Sent(("page_url", "date"), changes_on=("view_count",))
    assert sent.fresh(_rows(("/x", D1, 1, 1, 0.0, 5))).num_rows == 1
    assert sent.fresh(_rows(("/x", D1, 9, 1, 0.0, 4))).num_rows == 0  # older than held
    assert sent.fresh(_rows(("/x", D1, 1, 2, 0.0, 6))).num_rows == 0  # view_count unchanged
    fresh = sent.fresh(_rows(("/x", D1, 2, 2, 0.0, 7), ("/y", D1, 1, 1, 0.0, 7)))
    assert sorted(fresh.column("page_url").to_pylist()) == ["/x", "/y"]
