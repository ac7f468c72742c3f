"""Every built-in rollup is live over Server-Sent Events and DoExchange: its snapshot
equals a fresh query, then a put's change arrives (both backends)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from tests.http.conftest import live_face
from tests.http.test_live import _events

# Ten views, twice, on both backends: make test runs the sweep; a bare pytest keeps the
# single-view live tests (tests/http/test_live.py, tests/flight_server/test_live_rollups.py).
pytestmark = pytest.mark.slow

BUILTINS = load_rollups([BUILTIN_DIR])
AT = "2024-01-15T10:{minute:02d}:{second:02d}Z"


@pytest.fixture
def live(store, nats_server, tmp_path):
    install(store, BUILTINS)
    with live_face(store, nats_server.url, tmp_path) as (http, client, _):
        _put_all(client, 0)
        yield http, client


def _put(client, event_type: str, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows)
    descriptor = flight.FlightDescriptor.for_path("events", event_type)
    writer, meta = client.do_put(descriptor, table.schema)
    writer.write_table(table)
    writer.done_writing()
    meta.read()
    writer.close()


def _put_all(client, minute: int) -> None:
    """Page views, logins and API requests, in shared sessions with users."""
    views, logins, requests = [], [], []
    for i in range(12):
        at = AT.format(minute=minute, second=i)
        base = {"event_id": f"{minute}-{i}", "session_id": f"s{i % 4}", "user_id": f"u{i % 3}"}
        views.append({**base, "page_url": f"https://x.test/p{i % 3}?utm_source=s{i % 2}",
                      "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                      "recorded_at": at})  # fmt: skip
        logins.append({**base, "event_id": f"l{base['event_id']}", "timestamp": at})
        props = {"service": "api", "endpoint": f"/e{i % 2}", "duration_ms": 10.0 + i}
        requests.append({**base, "event_id": f"r{base['event_id']}", "timestamp": at,
                         "properties": json.dumps(props)})  # fmt: skip
    _put(client, "pageview", views)
    _put(client, "user.login", logins)
    _put(client, "api.request", requests)


def _query(http, view: str) -> dict[str, dict]:
    rows = http.post("/api/query", json={"sql": f"SELECT * FROM {view}"}).json()
    return {_key(view, row): _comparable(row) for row in rows}


def _key(view: str, row: dict) -> str:
    rollup = next(r for r in BUILTINS if r.view == view)
    return json.dumps([row[k] for k in rollup.key], default=str)


def _comparable(row: dict) -> dict:
    """What a subscription carries by default: the view's columns but its stamps."""
    return {k: v for k, v in row.items() if k not in ("computed_at", "version")}


@pytest.mark.parametrize("rollup", BUILTINS, ids=[r.name for r in BUILTINS])
def test_every_builtin_rollup_is_live_over_server_sent_events(live, rollup):
    http, client = live
    expected = _query(http, rollup.view)
    assert expected, f"{rollup.view} has no rows to follow"
    got: dict[str, dict] = {}
    with http.stream("GET", f"/api/live/{rollup.view}") as response:
        assert response.status_code == 200
        stream = _events(response)
        for event, _, data in stream:
            for row in data.get("rows", []):
                got[_key(rollup.view, row)] = _comparable(row)
            if event == "snapshot_end":
                break
        assert got == expected
        _put_all(client, 5)
        changed = _query(http, rollup.view)
        for _event, _, data in stream:
            for row in data.get("rows", []):
                got[_key(rollup.view, row)] = _comparable(row)
            if got == changed:
                break
    assert got == changed


@pytest.mark.parametrize("rollup", BUILTINS, ids=[r.name for r in BUILTINS])
def test_every_builtin_rollup_is_live_over_doexchange(live, rollup):
    _, client = live
    expected = _flight_rows(client, rollup, f"SELECT * FROM {rollup.view}")
    command = json.dumps({"subscribe": rollup.view, "messages": 2}).encode()
    _, reader = client.do_exchange(flight.FlightDescriptor.for_command(command))
    got: dict[str, dict] = {}
    while True:
        chunk = reader.read_chunk()
        meta = json.loads(chunk.app_metadata.to_pybytes())
        for row in chunk.data.to_pylist() if chunk.data is not None else []:
            got[_key(rollup.view, row)] = _comparable(row)
        if meta["type"] == "snapshot_end":
            break
    assert expected and got == expected
    reader.cancel()


def _flight_rows(client, rollup, sql: str) -> dict[str, dict]:
    """A fresh query over Flight (DoGet of a SQL command), as Python values."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    return {_key(rollup.view, row): _comparable(row) for row in table.to_pylist()}
