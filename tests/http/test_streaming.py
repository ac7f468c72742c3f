"""A large result flows as the store produces it, and a client that leaves stops the query."""

from __future__ import annotations

import pytest

from tests.doput import put_events
from tests.seed import events
from tests.services import wait_for

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
