"""What a contender stored, as one figure: row count and a sum of row hashes.

The same SQL for every contender of a backend (flightdeck's `va_pageview_event`
through its own query path, the ceiling's side table directly), so that equal
figures mean the same events were stored, not only as many. `properties` is left
out: each path may re-serialise JSON its own way; every other column is in.
"""

from __future__ import annotations

import pyarrow.flight as flight

__all__ = ["flight_checksum", "flight_rows", "side_checksum"]

_ROW = {
    # concat_ws skips NULLs on both stores; the separator keeps fields apart.
    "duckdb": (
        "hash(concat_ws('|', event_id, session_id, page_url, "
        "CAST(epoch_us(recorded_at) AS VARCHAR), user_id, referrer, user_agent, "
        "CAST(duration_s AS VARCHAR)))"
    ),
    "postgresql": (
        "hashtextextended(concat_ws('|', event_id, session_id, page_url, "
        "CAST(CAST(extract(epoch FROM recorded_at) * 1000000 AS BIGINT) AS TEXT), "
        "user_id, referrer, user_agent, CAST(duration_s AS TEXT)), 0)"
    ),
}


def _sql(backend: str, table: str) -> str:
    return (
        f"SELECT count(*) AS n, CAST(coalesce(sum({_ROW[backend]}), 0) AS VARCHAR) AS h "
        f"FROM {table}"
    )


def flight_checksum(client: flight.FlightClient, backend: str) -> dict:
    """flightdeck's stored events, read through its own SQL path."""
    sql = _sql(backend, "va_pageview_event")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    row = client.do_get(info.endpoints[0].ticket).read_all().to_pylist()[0]
    return {"rows": int(row["n"]), "checksum": row["h"]}


def flight_rows(client: flight.FlightClient) -> int:
    """How many events flightdeck holds: a count, cheaper than the checksum."""
    sql = b"SELECT count(*) AS n FROM va_pageview_event"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    return int(client.do_get(info.endpoints[0].ticket).read_all().column(0)[0].as_py())


def side_checksum(conn, backend: str, table: str) -> dict:
    """A side table's events, over the contender's own ADBC connection."""
    with conn.cursor() as cursor:
        cursor.execute(_sql(backend, table))
        n, h = cursor.fetchone()
    return {"rows": int(n), "checksum": str(h)}
