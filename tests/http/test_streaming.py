"""A large result flows as the store produces it, and a client that leaves stops the query."""

from __future__ import annotations

import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings

from tests.doput import put_events
from tests.http.conftest import face_on
from tests.seed import events
from tests.services import wait_for

# Multi-million-row results: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

# Every event against every event: 2.25 M rows from 1,500 stored ones, never held whole.
LARGE = (
    "SELECT a.event_id, a.page_url, b.session_id, b.recorded_at "
    "FROM va_pageview_event a CROSS JOIN va_pageview_event b"
)


@pytest.mark.parametrize(
    "accept", ["application/x-ndjson", "text/csv", "application/vnd.apache.parquet"]
)
def test_first_bytes_arrive_while_the_query_runs_and_leaving_stops_it(http, client, server, accept):
    put_events(client, events(1_500))
    body = {"sql": LARGE}
    with http.stream("POST", "/api/query", json=body, headers={"Accept": accept}) as response:
        assert response.status_code == 200
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > 1_000_000:
                break
        # A megabyte in, the query still holds its slot: the result is not complete yet
        # (NDJSON of 2.25 M rows is ~200 MB), so it was never read whole before sending.
        assert server.running_queries() == 1
    # The client left: the store's query is interrupted and its slot given back.
    assert wait_for(lambda: server.running_queries() == 0, timeout=15)


def test_a_query_over_the_limit_is_refused_with_503(store, tmp_path):
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, max_queries=1), store)
    try:
        with (
            flight.connect(f"grpc://127.0.0.1:{server.port}") as client,
            face_on(server) as http,
        ):
            put_events(client, events(1_500))
            accept = {"Accept": "application/x-ndjson"}
            with http.stream("POST", "/api/query", json={"sql": LARGE}, headers=accept) as busy:
                chunks = busy.iter_bytes()  # kept: a dropped iterator closes the response
                next(chunks)  # the first query holds the one slot while it streams
                refused = http.post("/api/query", json={"sql": "SELECT 1 AS one"})
                assert refused.status_code == 503
                assert "--max-queries" in refused.json()["error"]
                assert refused.headers["Retry-After"] == "1"
            assert wait_for(lambda: server.running_queries() == 0, timeout=15)
            assert http.post("/api/query", json={"sql": "SELECT 1 AS one"}).json() == [{"one": 1}]
    finally:
        server.shutdown()
