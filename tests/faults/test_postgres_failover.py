"""Fault 4: the PostgreSQL primary SIGKILLed under DoPut and NATS load, its standby promoted.

flightdeck is given both hosts in one URL (`target_session_attrs=read-write`, so
libpq connects to whichever one accepts writes) and reconnects by itself. The
standby is synchronous, so every commit the primary acknowledged is on it. A put
that failed left none of its rows and, sent again with the same event_ids, is
stored once; NATS redelivers what the worker never acked; so every event is
there exactly once and the aggregates are exact.

This is also the README's recipe for a PostgreSQL standby (scale-out section).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.flight as flight

from tests import nats_client
from tests.services import wait_for

from .processes import CLI, Flightdeck
from .standby import primary_and_standby
from .test_worker_kills import _ids
from .workload import (
    as_json,
    assert_exact,
    count,
    flight_query,
    pageviews,
    publish_fast,
    short_ack_wait,
)

PUT = flight.FlightDescriptor.for_path("events", "pageview")
CALL = flight.FlightCallOptions(timeout=60)  # a hang fails the test as a timeout
PUT_ROWS = 1_000
NATS_EVENTS = 8_000
NATS_CHUNK = 500


@dataclass
class Puts:
    """Acknowledged puts (prefix -> rows) and what the failed attempts left behind."""

    acked: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    partial: list[tuple[str, int]] = field(default_factory=list)  # must stay empty
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send(client: flight.FlightClient, table: pa.Table) -> bool:
    try:
        writer, meta = client.do_put(PUT, table.schema, options=CALL)
        writer.write_table(table, max_chunksize=250)
        writer.done_writing()
        meta.read()
        writer.close()
        return True
    except flight.FlightError:
        return False


def _rows(location: str, prefix: str) -> int | None:
    """Rows stored for `prefix`, or None while the server cannot answer."""
    try:
        return count(flight_query(location), f"WHERE event_id LIKE '{prefix}-%'")
    except flight.FlightError:
        return None


def _put_until_acked(location: str, prefix: str, seed: int, puts: Puts) -> None:
    """One put, sent again with the same event_ids until acknowledged, as a client
    that wants it stored exactly once does. A failed attempt must leave nothing."""
    table = pageviews(PUT_ROWS, seed=seed, prefix=prefix)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with flight.connect(location) as client:
            if _send(client, table):
                with puts.lock:
                    puts.acked[prefix] = PUT_ROWS
                return
        with puts.lock:
            puts.failures += 1
        found = None
        while found is None and time.monotonic() < deadline:
            found = _rows(location, prefix)
            time.sleep(0.2)  # pacing the retries of a client, not synchronisation
        if found not in (0, PUT_ROWS):
            with puts.lock:
                puts.partial.append((prefix, found))
    raise AssertionError(f"put {prefix} never acknowledged")


def _put_load(location: str, name: str, puts: Puts, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        _put_until_acked(location, f"{name}-{i}", hash((name, i)) % 10_000, puts)
        i += 1


def _publish(url: str, payloads: list[bytes]) -> None:
    """Producers keep publishing through the failover: NATS is not affected by it."""
    for start in range(0, len(payloads), NATS_CHUNK):
        publish_fast(url, payloads[start : start + NATS_CHUNK])


def test_primary_sigkilled_and_standby_promoted_under_doput_and_nats_load(nats_server, tmp_path):
    events = pageviews(NATS_EVENTS, seed=41)
    with primary_and_standby() as (primary, standby):
        primary.sql("CREATE DATABASE failover")
        primary.synchronous()
        hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
        db = f"postgresql://postgres@{hosts}/failover?target_session_attrs=read-write"
        short_ack_wait(nats_server.url, seconds=3)
        flags = ["--db", db, "--nats", nats_server.url, "--port", "0", "--http-port", "0"]
        flags += ["--raw-retention-days", "0", "--ingest-batch", "500", "--ingest-wait-ms", "20"]
        serve = Flightdeck(["serve", *flags], tmp_path)
        puts = Puts()
        stop = threading.Event()
        threads: list[threading.Thread] = []
        try:
            serve.start()
            location = serve.location
            threads = [
                threading.Thread(target=_put_load, args=(location, f"p{n}", puts, stop))
                for n in range(2)
            ]
            threads.append(
                threading.Thread(target=_publish, args=(nats_server.url, as_json(events)))
            )
            for thread in threads:
                thread.start()
            query = flight_query(location)
            assert wait_for(lambda: len(puts.acked) >= 4 and count(query) > 0, timeout=120)
            before = len(puts.acked)

            primary.kill()
            standby.promote()

            # The same server process carries on: puts are acknowledged again.
            assert wait_for(lambda: len(puts.acked) >= before + 4, timeout=120), serve.log()
            stop.set()
            for thread in threads:
                thread.join(240)
            assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=120), serve.log()

            assert puts.failures > 0, "the kill should have failed some put"
            assert puts.partial == []  # a failed put left no row
            for prefix, rows in puts.acked.items():
                assert _rows(location, prefix) == rows, prefix  # exactly once
            found = assert_exact(query)  # unique event_ids, exact aggregates
            from_nats = {i for i in found.event_id if i.startswith("nats:")}
            assert from_nats == _ids(nats_server.url, NATS_EVENTS)
            assert len(found) == NATS_EVENTS + PUT_ROWS * len(puts.acked)
            check = subprocess.run(
                [*CLI, "reaggregate", "--all", "--check", "--db", db],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert check.returncode == 0, check.stdout + check.stderr
        finally:
            stop.set()
            serve.stop()
            for thread in threads:
                thread.join(60)
