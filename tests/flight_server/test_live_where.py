"""One `where` language: `Client.view` and a live subscription select the same rows for
the same shapes, and refuse the same mistakes the same way (both backends)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck import Client, QueryError

from tests.flight_server.test_live import EVENTS, _server, _subscribe

DAILY, HOURLY = "va_pageview_aggregate", "va_pageview_hourly"
SHAPES = [
    (DAILY, {"page_url": "/x"}),
    (DAILY, {"page_url": {"=": "/x"}}),
    (DAILY, {"page_url": {"!=": "/x"}}),
    (DAILY, {"page_url": {"in": ["/x", "/z"]}}),
    (DAILY, {"page_url": {"in": ["/y", None]}}),
    (DAILY, {"page_url": {"!=": None}}),
    (DAILY, {"date": {">=": "2024-01-16"}}),
    (DAILY, {"date": {">": "2024-01-15", "<=": "2024-01-17"}}),
    (DAILY, {"date": dt.date(2024, 1, 15), "page_url": {"<": "/y"}}),
    (HOURLY, {"hour": {">=": "2024-01-15T11:00:00Z", "<": "2024-01-16T11:00:00Z"}}),
    (HOURLY, {"hour": dt.datetime(2024, 1, 15, 10)}),  # naive: UTC
    (HOURLY, {"hour": {"!=": "2024-01-15T10:00:00+00:00"}, "page_url": "/y"}),
]


@pytest.fixture(scope="module")
def events() -> pa.Table:
    pages, days, hours = ["/x", "/y", "/z"], [15, 16, 17], [10, 11]
    rows = [(p, d, h) for p in pages for d in days for h in hours]
    return pa.table(
        {
            "session_id": [f"s{i}" for i in range(len(rows))],
            "page_url": [p for p, _, _ in rows],
            "recorded_at": [f"2024-01-{d}T{h}:00:00Z" for _, d, h in rows],
        }
    )


@pytest.fixture
def location(store, nats_server, tmp_path, events):
    with _server(store, nats_server.url, tmp_path) as where:
        client = flight.connect(where)
        writer, meta = client.do_put(EVENTS, events.schema)
        writer.write_table(events)
        writer.done_writing()
        meta.read()
        writer.close()
        client.close()
        yield where


def _snapshot(client: Client, view: str, where: dict) -> list[tuple]:
    rows = []
    with client.subscribe(view, where=where, columns=["view_count"]) as live:
        for message in live:
            if message.kind == "snapshot_end":
                return sorted(rows)
            if message.table is not None:
                rows += [tuple(r.values()) for r in message.table.to_pylist()]
    raise AssertionError(f"the subscription ended before its snapshot did: {rows}")


def test_the_same_where_selects_the_same_rows_from_view_and_live(location):
    with Client(location) as client:
        for view, where in SHAPES:
            keys = ["page_url", "date" if view == DAILY else "hour"]
            table = client.view(view, where=where, columns=[*keys, "view_count"])
            expected = sorted(tuple(r.values()) for r in table.to_pylist())
            assert expected, (view, where)  # a shape that selects nothing proves nothing
            assert _snapshot(client, view, where) == expected, (view, where)


@pytest.mark.parametrize(
    ("where", "rule"),
    [
        ({"page_url": {"~": "/x"}}, "operator"),
        ({"page_url": {"in": []}}, "value"),
        ({"page_url": {">": None}}, "value"),
        ({"page_url": {}}, "where"),
    ],
)
def test_a_bad_where_is_refused_alike_by_view_and_live(location, where, rule):
    with Client(location) as client:
        with pytest.raises(QueryError) as by_view:
            client.view(DAILY, where=where)
        with pytest.raises(QueryError) as by_live:
            _snapshot(client, DAILY, where)
    assert by_view.value.rule == by_live.value.rule == rule
    assert str(by_view.value) == str(by_live.value)
    # The server refuses it in the same words when no client checked it first.
    raw = flight.connect(location)
    _writer, reader = _subscribe(raw, subscribe=DAILY, where=json.loads(json.dumps(where)))
    with pytest.raises(pa.ArrowInvalid) as by_server:
        reader.read_chunk()
    assert str(by_view.value) in str(by_server.value)
    raw.close()
