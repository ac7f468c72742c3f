"""FlightInfo's total_records: exact for whole views over rollup tables, -1 otherwise."""

from __future__ import annotations

import pyarrow.flight as flight

from tests.clients.conftest import pageviews


def _load(client: flight.FlightClient, n: int) -> None:
    table = pageviews(n)
    descriptor = flight.FlightDescriptor.for_path("events", "pageview")
    writer, reader = client.do_put(descriptor, table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()


def _rows(client: flight.FlightClient, info: flight.FlightInfo) -> int:
    return sum(client.do_get(e.ticket).read_all().num_rows for e in info.endpoints)


def test_a_rollup_view_counts_its_rows_and_anything_else_says_unknown(client):
    _load(client, 200)
    for view in ("va_pageview_aggregate", "va_pageview_hourly"):
        info = client.get_flight_info(flight.FlightDescriptor.for_path(view))
        assert info.total_records == _rows(client, info) > 0, view

    raw = client.get_flight_info(flight.FlightDescriptor.for_path("va_pageview_event"))
    assert raw.total_records == -1
    sql = flight.FlightDescriptor.for_command(b"SELECT * FROM va_pageview_aggregate")
    assert client.get_flight_info(sql).total_records == -1

    listed = {
        info.descriptor.path[0].decode(): info.total_records for info in client.list_flights()
    }
    assert listed["va_pageview_aggregate"] > 0
    assert listed["va_pageview_event"] == -1
