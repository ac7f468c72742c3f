"""The pure parts of live subscriptions: request checking, coalescing, stale and unchanged
rows, and the groups that share each update's work."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pyarrow as pa
import pytest
from flightdeck.flight_server import Settings
from flightdeck.flight_server.live.group import Group
from flightdeck.flight_server.live.hub import LiveHub
from flightdeck.flight_server.live.pending import Pending, Sent
from flightdeck.flight_server.live.request import LIVE, parse_subscription
from flightdeck.ingest.update_signature import SIGNATURE_HEADER, sign
from flightdeck.views import InvalidQuery
from flightdeck.views.live_views import LIVE_KEYS
from nats.aio.msg import Msg

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
    return parse_subscription(json.dumps(request).encode(), SCHEMAS, LIVE_KEYS)


def _rows(*rows) -> pa.Table:
    names = ["page_url", "date", "view_count", "unique_visitors", "bounce_rate", "version"]
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows], schema=SCHEMA)


def _marked(*rows, live: bool = True) -> pa.Table:
    """Rows as the hub's group offers them: marked in (or out of) the selection."""
    table = _rows(*rows)
    return table.append_column(LIVE, pa.array([live] * table.num_rows))


D1, D2 = dt.date(2024, 1, 15), dt.date(2024, 1, 16)
KEY = b"test key, as update_signature.signing_key gives"


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
        "WHERE \"page_url\" IN ('/x', '/y') AND \"date\" >= '2024-01-16'"
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
            {"subscribe": "va_pageview_aggregate", "where": {"views": 3}},
            "unknown-column",
            "views",
        ),
        ({"subscribe": "va_pageview_aggregate", "messages": 3}, "messages", "upsert"),
        ({"subscribe": "va_pageview_aggregate", "min_interval_ms": -1}, "min_interval_ms", "0"),
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
        parse_subscription(raw, SCHEMAS, LIVE_KEYS)
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
    assert sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 5))).num_rows == 1
    assert sent.fresh(_marked(("/x", D1, 9, 1, 0.0, 4))).num_rows == 0  # older than held
    assert sent.fresh(_marked(("/x", D1, 1, 2, 0.0, 6))).num_rows == 0  # view_count unchanged
    fresh = sent.fresh(_marked(("/x", D1, 2, 2, 0.0, 7), ("/y", D1, 1, 1, 0.0, 7)))
    assert sorted(fresh.column("page_url").to_pylist()) == ["/x", "/y"]


def test_sent_passes_a_removal_only_for_a_row_it_holds_and_only_once():
    sent = Sent(("page_url", "date"), changes_on=("view_count",))
    sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 5)))  # a snapshot
    assert sent.fresh(_marked(("/y", D1, 1, 1, 0.0, 6), live=False)).num_rows == 0  # not held
    assert sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 4), live=False)).num_rows == 0  # stale
    gone = sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 6), live=False))
    assert gone.column("page_url").to_pylist() == ["/x"]  # view_count unchanged: still sent
    assert sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 7), live=False)).num_rows == 0
    assert sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 8))).num_rows == 1  # back in


def test_sent_on_resume_passes_removals_of_rows_it_cannot_know_about():
    sent = Sent(("page_url", "date"), changes_on=())
    gone = sent.fresh(_marked(("/y", D1, 1, 1, 0.0, 6), live=False), unheld_removes=True)
    assert gone.num_rows == 1


def test_sent_over_its_limit_says_so():
    sent = Sent(("page_url", "date"), changes_on=(), limit=2)
    sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 5), ("/y", D1, 1, 1, 0.0, 5)))
    assert not sent.over
    sent.fresh(_marked(("/x", D1, 1, 1, 0.0, 6), live=False))  # removed: no longer held
    sent.fresh(_marked(("/z", D1, 1, 1, 0.0, 7)))
    assert not sent.over
    sent.fresh(_marked(("/w", D1, 1, 1, 0.0, 8)))
    assert sent.over


def test_sent_merges_its_parts_when_a_key_repeats_many_times():
    sent = Sent(("page_url", "date"), changes_on=())
    for version in range(1, 200):
        assert sent.fresh(_marked(("/x", D1, version, 1, 0.0, version))).num_rows == 1
    assert sent.fresh(_marked(("/x", D1, 0, 1, 0.0, 150))).num_rows == 0
    assert sent.fresh(_marked(("/x", D1, 0, 1, 0.0, 200))).num_rows == 1


def test_pending_hands_over_a_single_offered_table_as_it_is():
    pending = Pending(("page_url", "date"), limit=10)
    shared = _rows(("/x", D1, 1, 1, 0.0, 1))
    pending.offer(shared, cursor=3)
    table, cursor = pending.take(timeout=0)
    assert table is shared and cursor == 3  # other subscribers hold it too: never changed


def test_a_group_filters_and_projects_once_and_drops_updates_older_than_offered():
    sub = _parse(subscribe="va_pageview_aggregate", where={"page_url": "/x"}, columns=["version"])
    group = Group(sub)
    rows = group.rows(_rows(("/x", D1, 1, 1, 0.0, 5), ("/y", D1, 1, 1, 0.0, 5)))
    assert rows.column_names == ["page_url", "date", "version", LIVE]
    assert rows.to_pylist() == [{"page_url": "/x", "date": D1, "version": 5, LIVE: True}]
    assert group.rows(_rows(("/x", D1, 1, 1, 0.0, 4))).num_rows == 0  # published late
    assert group.rows(_rows(("/x", D1, 1, 1, 0.0, 6))).num_rows == 1


def test_a_group_on_a_non_key_column_marks_rows_leaving_it_once():
    sub = _parse(subscribe="va_pageview_aggregate", where={"view_count": {">=": 2}})
    group = Group(sub)
    rows = group.rows(_rows(("/x", D1, 2, 1, 0.0, 5), ("/y", D1, 1, 1, 0.0, 5)))
    assert sorted(rows.select(["page_url", LIVE]).to_pylist(), key=str) == [
        {"page_url": "/x", LIVE: True},
        {"page_url": "/y", LIVE: False},  # a member may hold it from its snapshot
    ]
    assert group.rows(_rows(("/y", D1, 0, 1, 0.0, 6))).num_rows == 0  # already out
    left = group.rows(_rows(("/x", D1, 1, 1, 0.0, 7)))
    assert left.select(["page_url", LIVE]).to_pylist() == [{"page_url": "/x", LIVE: False}]
    removed = group.removed(pa.table({"page_url": ["/z"], "date": [D1], "version": [8]}))
    assert removed.select(["page_url", "view_count", LIVE]).to_pylist() == [
        {"page_url": "/z", "view_count": None, LIVE: False}
    ]


def test_subscriptions_share_a_group_only_when_they_select_and_carry_the_same_rows():
    base = {"subscribe": "va_pageview_aggregate", "where": {"page_url": "/x"}}
    same = _parse(**base, snapshot=False, cursor=7)
    assert _parse(**base).selection == same.selection  # snapshot and cursor do not matter
    assert _parse(**base, columns=["view_count"]).selection != same.selection
    assert _parse(**{**base, "where": {"page_url": "/y"}}).selection != same.selection
    # changes_on only adds what it compares to the carried columns
    watched = _parse(**base, changes_on=["view_count"])
    assert watched.selection == same.selection


def test_hub_offers_each_member_of_a_group_the_same_rows():
    hub = LiveHub(buffer_keys=10, max_update_bytes=Settings().max_message_bytes, key=KEY)
    first = hub.register(_parse(subscribe="va_pageview_aggregate", where={"page_url": "/x"}))
    second = hub.register(_parse(subscribe="va_pageview_aggregate", where={"page_url": "/x"}))
    other = hub.register(_parse(subscribe="va_pageview_aggregate", where={"page_url": "/y"}))
    update = _rows(("/x", D1, 1, 1, 0.0, 1), ("/y", D1, 2, 1, 0.0, 1))
    asyncio.run(hub._on_update(_message(update, sequence=4)))
    (a, _), (b, _), (c, cursor) = (p.take(timeout=0) for p in (first, second, other))
    assert a is b and a.column("page_url").to_pylist() == ["/x"]
    assert c.column("page_url").to_pylist() == ["/y"] and cursor == 4
    hub.unregister(first)
    hub.unregister(second)
    assert hub.subscribers == 1


def _message(table: pa.Table, sequence: int) -> Msg:
    """A JetStream message as the hub's consumer hands it over."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    reply = f"$JS.ACK.AGGREGATES.c.1.{sequence}.{sequence}.0.0"
    subject, payload = "analytics.aggregate.updated", sink.getvalue().to_pybytes()
    headers = {"Flightdeck-View": "va_pageview_aggregate"}
    headers[SIGNATURE_HEADER] = sign(KEY, subject, headers, payload)
    return Msg(_client=None, subject=subject, reply=reply, data=payload, headers=headers)
