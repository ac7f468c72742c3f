"""GET /api/live/VIEW as Server-Sent Events, fed by a real nats-server, on both backends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.doput import put_events
from tests.http.conftest import live_face
from tests.seed import events

VIEW = "/api/live/va_pageview_aggregate"
KEYS = ("page_url", "date")


@pytest.fixture
def live(store, nats_server, tmp_path):
    with live_face(store, nats_server.url, tmp_path) as parts:
        yield parts


def _events(response) -> Iterator[tuple[str, str, dict]]:
    """(event, id, data) of each Server-Sent Event, as an EventSource reads them."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if fields:
            yield fields.get("event", "message"), fields.get("id", ""), json.loads(fields["data"])
            fields = {}


class _Table:
    """A browser's copy of the view, by key, and the last id it saw."""

    def __init__(self) -> None:
        self.rows: dict[tuple, dict] = {}
        self.last_id = ""

    def apply(self, event: str, id_: str, data: dict) -> None:
        for row in data.get("rows", []):
            self.rows[tuple(row[k] for k in KEYS)] = row
        self.last_id = id_  # an empty id clears it, as EventSource does

    def until(self, stream, done, within: float = 20.0) -> None:
        deadline = time.monotonic() + within  # heartbeats keep a stuck stream talking
        for event, id_, data in stream:
            assert time.monotonic() < deadline, f"not done within {within} s"
            assert event != "error", data
            self.apply(event, id_, data)
            if done(event, self):
                return


def _views(table: _Table, page: str) -> int:
    return sum(row["view_count"] for key, row in table.rows.items() if key[0] == page)


def _fresh(http) -> dict[tuple, dict]:
    sql = f"SELECT {', '.join(KEYS)}, view_count FROM va_pageview_aggregate"
    rows = http.post("/api/query", json={"sql": sql}).json()
    return {tuple(row[k] for k in KEYS): row["view_count"] for row in rows}


def _counts(table: _Table) -> dict[tuple, int]:
    return {key: row["view_count"] for key, row in table.rows.items()}


def test_snapshot_then_updates_after_a_put(live):
    http, client, _ = live
    put_events(client, events(64))
    table = _Table()
    params = {"columns": "page_url,date,view_count"}
    with http.stream("GET", VIEW, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = _events(response)
        table.until(stream, lambda event, _: event == "snapshot_end")
        assert table.last_id.isdigit()
        assert _counts(table) == _fresh(http)
        before = _views(table, "/page/1")
        put_events(client, events(64, start=64))
        table.until(stream, lambda event, t: event == "update" and _views(t, "/page/1") > before)
        assert set(next(iter(table.rows.values()))) == {"page_url", "date", "view_count"}
    assert _counts(table) == _fresh(http)


def test_last_event_id_resumes_with_no_gap(live):
    http, client, _ = live
    put_events(client, events(32))
    table = _Table()
    with http.stream("GET", VIEW) as response:
        table.until(_events(response), lambda event, _: event == "snapshot_end")
    # Away: puts the browser does not see; it comes back with the last id it saw.
    put_events(client, events(96, start=32))
    expected = _fresh(http)
    headers = {"Last-Event-ID": table.last_id}
    with http.stream("GET", VIEW, headers=headers) as response:
        stream = _events(response)
        kinds = []

        def caught_up(event, t):
            kinds.append(event)
            return _counts(t) == expected

        table.until(stream, caught_up)
    assert "snapshot" not in kinds  # resumed, not reloaded
    assert _counts(table) == expected


def test_a_refused_subscription_names_its_rule(live):
    http, _, _ = live
    response = http.get("/api/live/va_nope")
    assert response.status_code in (400, 404)
    assert response.json()["error"]
    bad = http.get(VIEW, params={"where": "{not json"})
    assert bad.status_code == 400
    assert bad.json()["rule"] == "where"
    # Options the URL carries go to the live protocol as they are: it judges them.
    unknown = http.get(VIEW, params={"frobnicate": "1"})
    assert unknown.status_code == 400
    assert "frobnicate" in unknown.json()["error"]


def test_a_stopping_server_ends_the_stream_with_a_cursor_to_resume_from(live):
    http, _, server = live
    table = _Table()
    with http.stream("GET", VIEW) as response:
        stream = _events(response)
        table.until(stream, lambda event, _: event == "snapshot_end")
        server.shutdown()
        last = list(stream)  # the stream ends, after telling why
    assert last[-1][0] == "error"
    assert "shutting down" in last[-1][2]["reason"]
    assert last[-1][1] == table.last_id  # nothing missed: resume from where it was


def test_many_sse_subscribers_cost_no_thread_each(live):
    """Two hundred browsers follow one view: each gets its snapshot and the next put,
    and the server's thread count stays flat (sessions step on the event loop)."""
    http, client, _ = live
    put_events(client, events(3))
    count = 200

    async def follow(stream_client: httpx.AsyncClient, ready: asyncio.Event, started) -> int:
        async with stream_client.stream("GET", VIEW) as response:
            assert response.status_code == 200
            updates, buffer = 0, ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    event, buffer = buffer.split("\n\n", 1)
                    kind = event.split("\n", 1)[0].removeprefix("event: ")
                    if kind == "snapshot_end":
                        started.append(1)
                        if len(started) == count:
                            ready.set()
                    elif kind == "update":
                        return updates + 1
                    assert kind != "error", event
        return updates

    async def main() -> tuple[int, int, list[int]]:
        limits = httpx.Limits(max_connections=count + 10)
        async with httpx.AsyncClient(base_url=str(http.base_url), limits=limits, timeout=60) as h:
            ready, started = asyncio.Event(), []
            tasks = [asyncio.create_task(follow(h, ready, started)) for _ in range(count)]
            await asyncio.wait_for(ready.wait(), 60)
            during = threading.active_count()
            await asyncio.to_thread(put_events, client, events(2, start=100))
            got = await asyncio.wait_for(asyncio.gather(*tasks), 60)
            return during, threading.active_count(), got

    before = threading.active_count()
    during, after, got = asyncio.run(main())
    assert got == [1] * count  # every subscriber got the put
    # Shared, capped pools only: AnyIO's workers (40 at most: the routes' blocking work)
    # and 4 snapshot readers. One thread per subscriber would add 200.
    assert during - before < 60 and after - before < 60, (before, during, after)
