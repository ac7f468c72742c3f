"""Fault 7: two `flightdeck ingest` and two `flightdeck serve` processes on one PostgreSQL.

All four consume the one durable NATS consumer (serve runs the worker too) and
both servers take DoPuts at the same time. One ingest process is SIGKILLed
while it holds fetched batches, one server with a put half sent. Once the
survivors (and the ingest process, restarted) are done, every NATS event and
every put is stored exactly once, the aggregates equal the reference
recomputation and `reaggregate --check`, and a live subscriber's versions only
grew. How much the processes' commits overlap is measured and printed, not
asserted: that depends on the machine.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from tests import nats_client
from tests.services import wait_for

from .overlap import WriterSampler, commit_overlap, commit_times
from .processes import CLI, Flightdeck
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
CALL = flight.FlightCallOptions(timeout=120)
NATS_EVENTS = 12_000
PUT_ROWS = 2_000
PUTS_EACH = 4
COLUMNS = ["session_id", "page_url", "recorded_at"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_ingest_and_two_serve_processes_commit_together(db_url, nats_server, tmp_path):
    nats_events = pageviews(NATS_EVENTS, seed=70)
    flags = ["--db", db_url, "--nats", nats_server.url, "--raw-retention-days", "0"]
    flags += ["--ingest-batch", "500", "--ingest-wait-ms", "20", "--log-level", "DEBUG"]
    names = {"i1": "ingest", "i2": "ingest", "s1": "serve", "s2": "serve"}
    processes = {name: _process(cmd, name, flags, tmp_path) for name, cmd in names.items()}
    ingest = [processes["i1"], processes["i2"]]
    serve = [processes["s1"], processes["s2"]]
    puts = [_Puts(f"p{n}") for n in range(2)]
    live = sampler = None
    try:
        ingest[0].start()  # applies the migrations: the others find them done
        short_ack_wait(nats_server.url, seconds=3)  # a killed worker's batches return soon
        for process in (ingest[1], *serve):
            process.start()
        query = flight_query(serve[0].location)
        live = _Live(serve[0].location).start()
        sampler = WriterSampler(db_url).start()
        senders = [
            threading.Thread(target=p.send, args=(s.location,))
            for p, s in zip(puts, serve, strict=True)
        ]
        for sender in senders:
            sender.start()
        publish_fast(nats_server.url, as_json(nats_events))

        # Each dies just after a commit of its own, holding the batches it fetched
        # ahead (and the server a put half sent); the backlog is far from done.
        assert wait_for(lambda: commit_times(ingest[0].lines), timeout=60), ingest[0].log()
        assert nats_client.consumer(nats_server.url).num_ack_pending > 0
        ingest[0].kill()
        cut = pageviews(PUT_ROWS, seed=71, prefix="cut")
        assert wait_for(lambda: commit_times(serve[1].lines), timeout=60), serve[1].log()
        _half_put_then_kill(serve[1], cut)
        assert count(query) < NATS_EVENTS + len(puts) * PUTS_EACH * PUT_ROWS  # mid-ingest
        ingest[0].start()

        for sender in senders:
            sender.join(300)
        assert not any(sender.is_alive() for sender in senders)
        # What a client does with a put that failed: send it again, to a live server.
        for table in [cut] + [t for p in puts for t in p.failed]:
            reply = _send(serve[0].location, table)
            assert reply["accepted"] + reply["duplicates"] == table.num_rows, reply
        assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=120), ingest[0].log()
        sampled = sampler.stop()
        sent = [nats_events, cut] + [t for p in puts for t in p.tables]
        assert_exact(query, pa.concat_tables([t.select(COLUMNS) for t in sent]))
        assert count(query, "WHERE event_id LIKE 'cut-%'") == PUT_ROWS
        assert _reaggregate_check(db_url, tmp_path) == 0
        # The kills cost batches in hand: they came back and were deduplicated.
        assert nats_client.consumer(nats_server.url).delivered.consumer_seq > NATS_EVENTS
        assert live.caught_up(query), live.problem
        assert live.problem is None, live.problem
        print(commit_overlap({name: p.lines for name, p in processes.items()}))
        print(sampled)
    finally:
        if sampler is not None:
            sampler.stop()
        if live is not None:
            live.stop()
        for process in processes.values():
            process.stop()


def _process(command: str, name: str, flags: list[str], tmp_path: Path) -> Flightdeck:
    args = [command, *flags, "--data-dir", str(tmp_path / name)]
    if command == "serve":
        return Flightdeck([*args, "--port", "0"], tmp_path)
    return Flightdeck(args, tmp_path, ready="ingesting")


def _send(location: str, table: pa.Table) -> dict:
    with flight.connect(location) as client:
        writer, meta = client.do_put(PUT, table.schema, CALL)
        writer.write_table(table, max_chunksize=500)
        writer.done_writing()
        reply = meta.read()
        writer.close()
    return json.loads(reply.to_pybytes())


def _half_put_then_kill(server: Flightdeck, table: pa.Table) -> None:
    client = flight.connect(server.location)
    writer, _meta = client.do_put(PUT, table.schema, CALL)
    for batch in table.to_batches(max_chunksize=500)[:2]:
        writer.write_batch(batch)
    server.kill()
    with contextlib.suppress(flight.FlightError, OSError):
        writer.close()  # the server is gone: closing can only report that
    client.close()


class _Puts:
    """Puts to one server, one after another; those that failed are kept to resend."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tables = [
            pageviews(PUT_ROWS, seed=80 + i, prefix=f"{name}-{i}") for i in range(PUTS_EACH)
        ]
        self.failed: list[pa.Table] = []

    def send(self, location: str) -> None:
        for table in self.tables:
            try:
                reply = _send(location, table)
                assert reply["accepted"] + reply["duplicates"] == table.num_rows, reply
            except (flight.FlightError, OSError):
                self.failed.append(table)  # its server was killed: all or nothing


class _Live:
    """A live subscriber to the daily aggregates: checks that each key's version only
    grows, and keeps the latest view count per key."""

    def __init__(self, location: str) -> None:
        self._client = flight.connect(location)
        request = {"subscribe": "va_pageview_aggregate", "columns": ["view_count", "version"]}
        descriptor = flight.FlightDescriptor.for_command(json.dumps(request).encode())
        self._writer, self._reader = self._client.do_exchange(descriptor)
        self.versions: dict = {}
        self.counts: dict = {}
        self.problem: str | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> _Live:
        self._thread.start()
        return self

    def _read(self) -> None:
        with contextlib.suppress(flight.FlightError, OSError, StopIteration):
            while True:
                chunk = self._reader.read_chunk()
                meta = json.loads(chunk.app_metadata.to_pybytes())
                if meta["type"] in ("snapshot", "update") and chunk.data is not None:
                    self._apply(chunk.data.to_pylist())

    def _apply(self, rows: list[dict]) -> None:
        with self._changed:
            for row in rows:
                key = (row["page_url"], row["date"])
                if row["version"] <= self.versions.get(key, -1):
                    self.problem = f"{key}: version {row['version']} after {self.versions[key]}"
                self.versions[key] = row["version"]
                self.counts[key] = row["view_count"]
            self._changed.notify_all()

    def caught_up(self, query, timeout: float = 60.0) -> bool:
        """Whether the subscriber's counts come to equal the view's (within `timeout`)."""
        truth = query("SELECT page_url, date, view_count FROM va_pageview_aggregate")
        want = {(r["page_url"], r["date"]): r["view_count"] for r in truth.to_pylist()}
        with self._changed:
            return self._changed.wait_for(lambda: self.counts == want, timeout)

    def stop(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(flight.FlightError, OSError):
            self._writer.close()
        self._client.close()


def _reaggregate_check(db_url: str, tmp_path: Path) -> int:
    command = [*CLI, "reaggregate", "--all", "--check", "--db", db_url]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode
