"""A large raw-event view comes as several endpoints; read in parallel, they are the
single-endpoint result exactly, and never send a row twice while puts commit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import parallel_reads

from tests.clients.conftest import pageviews

pytestmark = pytest.mark.slow  # servers and long queries per test: make test runs them

VIEW = flight.FlightDescriptor.for_path("va_pageview_event")


@pytest.fixture
def small_split(monkeypatch):
    """Split at 50 rows rather than 250,000, so a few hundred events make 4 endpoints."""
    monkeypatch.setattr(parallel_reads, "SPLIT_ROWS", 50)


def _load(client: flight.FlightClient, table: pa.Table) -> None:
    writer, reader = client.do_put(
        flight.FlightDescriptor.for_path("events", "pageview"), table.schema
    )
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()


def _ids(table: pa.Table) -> list[str]:
    return table.column("event_id").to_pylist()


def test_parallel_endpoints_union_to_the_single_endpoint_result(client, small_split):
    _load(client, pageviews(300))
    info = client.get_flight_info(VIEW)
    assert len(info.endpoints) == parallel_reads.MAX_ENDPOINTS
    with ThreadPoolExecutor(len(info.endpoints)) as pool:
        parts = list(pool.map(lambda e: client.do_get(e.ticket).read_all(), info.endpoints))
    assert all(part.num_rows > 0 for part in parts)

    whole = client.do_get(flight.Ticket(b"va_pageview_event")).read_all()
    union = pa.concat_tables(parts)
    assert union.schema == whole.schema == info.schema
    assert union.sort_by("event_id").equals(whole.sort_by("event_id"))


def test_puts_between_endpoint_reads_never_send_a_row_twice(client, small_split):
    _load(client, pageviews(300))
    info = client.get_flight_info(VIEW)
    first = client.do_get(info.endpoints[0].ticket).read_all()
    _load(client, pageviews(300, start=300))  # new ids, over the same days
    rest = [client.do_get(e.ticket).read_all() for e in info.endpoints[1:]]
    ids = _ids(pa.concat_tables([first, *rest]))
    assert len(ids) == len(set(ids))
    assert {f"evt-{i}" for i in range(300)} <= set(ids)


def test_small_views_and_sql_stay_single_endpoint(client, small_split):
    _load(client, pageviews(20))
    assert len(client.get_flight_info(VIEW).endpoints) == 1
    _load(client, pageviews(300, start=20))
    ordered = flight.FlightDescriptor.for_command(
        b"SELECT * FROM va_pageview_event ORDER BY recorded_at LIMIT 10"
    )
    assert len(client.get_flight_info(ordered).endpoints) == 1
    aggregate = flight.FlightDescriptor.for_path("va_pageview_aggregate")
    assert len(client.get_flight_info(aggregate).endpoints) == 1
