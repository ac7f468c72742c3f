"""The multi-machine shape on loopback: two `serve` and two `ingest` processes on one
PostgreSQL and one NATS. Every event is counted once whichever way it came in, and
subscribers of both servers see every update.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from benchmarks.postgres_server import free_port
from tests import nats_client
from tests.reference import daily
from tests.services import wait_for

CLI = [sys.executable, "-m", "flightdeck.cli"]
EVENTS = flight.FlightDescriptor.for_path("events", "pageview")


@contextlib.contextmanager
def _process(args: list[str], cwd, ready: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if ready in line:
                break
        else:
            raise AssertionError(f"{args[0]} exited before it was ready")
        # Keep draining its log so that it never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _events(ids: range, source: str) -> list[dict]:
    return [
        {
            "event_id": f"{source}-{i}",
            "session_id": f"s{i % 37}",
            "page_url": f"/p{i % 7}",
            "timestamp": f"2024-01-15T{10 + i % 5:02d}:{i % 60:02d}:{i % 13:02d}Z",
        }
        for i in ids
    ]


def _put(location: str, rows: list[dict]) -> dict:
    with flight.connect(location) as client:
        table = pa.Table.from_pylist(rows)
        writer, meta = client.do_put(EVENTS, table.schema)
        writer.write_table(table)
        writer.done_writing()
        reply = json.loads(meta.read().to_pybytes())
        writer.close()
        return reply


class _Subscriber(threading.Thread):
    """Keeps the newest view_count per (page_url, date) a server's subscription reports."""

    def __init__(self, location: str) -> None:
        super().__init__(daemon=True)
        self.client = flight.connect(location)
        request = json.dumps({"subscribe": "va_pageview_aggregate"}).encode()
        self.writer, self.reader = self.client.do_exchange(
            flight.FlightDescriptor.for_command(request)
        )
        self.counts: dict[str, int] = {}

    def run(self) -> None:
        with contextlib.suppress(flight.FlightError, pa.ArrowException, StopIteration):
            while True:
                chunk = self.reader.read_chunk()
                if chunk.data is not None:
                    for row in chunk.data.to_pylist():
                        self.counts[row["page_url"]] = row["view_count"]

    def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(flight.FlightError):
            self.writer.close()
        self.client.close()


def _query(location: str, sql: str) -> pd.DataFrame:
    with flight.connect(location) as client:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
        assert [loc.uri.decode() for loc in info.endpoints[0].locations] == [location]
        return client.do_get(info.endpoints[0].ticket).read_all().to_pandas()


@pytest.mark.slow  # four processes on one store
@pytest.mark.parametrize("backend", ["postgresql"])  # a DuckDB file has one owning process
def test_two_servers_and_two_workers_count_every_event_once(db_url, nats_server, tmp_path):
    common = ["--db", db_url, "--nats", nats_server.url, "--ingest-wait-ms", "20"]
    common += ["--raw-retention-days", "0"]  # the 2024 events stay whatever today is
    ports = [free_port(), free_port()]
    locations = [f"grpc://127.0.0.1:{port}" for port in ports]
    with contextlib.ExitStack() as stack:
        for port, location in zip(ports, locations, strict=True):
            args = ["serve", "--port", str(port), "--advertise", location, *common]
            stack.enter_context(_process(args, tmp_path, "serving location="))
        for _ in range(2):
            stack.enter_context(_process(["ingest", *common], tmp_path, "ingesting"))
        subscribers = [_Subscriber(location) for location in locations]
        for subscriber in subscribers:
            subscriber.start()
            stack.callback(subscriber.close)

        published = _events(range(3000), "nats")
        nats_client.publish(nats_server.url, published)
        first, second = _events(range(600), "put-a"), _events(range(600), "put-b")
        assert _put(locations[0], first) == {"accepted": 600, "duplicates": 0}
        assert _put(locations[1], second) == {"accepted": 600, "duplicates": 0}
        # The same events again through the other server: duplicates, counted nowhere.
        assert _put(locations[1], first[:100]) == {"accepted": 0, "duplicates": 100}

        every = pd.DataFrame(published + first + second)
        every["recorded_at"] = pd.to_datetime(every.pop("timestamp"), utc=True)
        expected = daily(every)
        sql = (
            "SELECT page_url, date, view_count, unique_visitors, bounce_rate, "
            "avg_session_duration FROM va_pageview_aggregate ORDER BY page_url, date"
        )

        def settled() -> bool:
            got = _query(locations[0], sql)
            return got.view_count.sum() == len(every)

        assert wait_for(settled, timeout=90)
        for location in locations:
            got = _query(location, sql)
            assert got.view_count.tolist() == expected.view_count.tolist()
            assert got.unique_visitors.tolist() == expected.unique_visitors.tolist()
            assert [float(x) for x in got.bounce_rate] == expected.bounce_rate.tolist()
        final = dict(zip(expected.page_url, expected.view_count, strict=True))
        for subscriber in subscribers:
            assert wait_for(lambda s=subscriber: s.counts == final, timeout=30), subscriber.counts
