"""A 3-node JetStream cluster loses the EVENTS stream leader (SIGKILL) in the middle
of an ingest, while producers keep publishing to the nodes that are left.

`serve` (on DuckDB: the cluster is what is under test, and DuckDB needs no
server of its own) connects with every node's URL and `--nats-replicas 3`.
Producers publish with JetStream acks and a `Nats-Msg-Id`, and retry a publish
that timed out or found no responder during the election, as a real producer
would. Every event is counted once, and a live subscriber resumed by cursor has
what a fresh query has, with the node still away and after it is back.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading

import flightdeck
import nats
import pyarrow.flight as flight
from flightdeck.ingest.streams import EVENTS as STREAM_EVENTS
from flightdeck.ingest.streams import replicated

from tests.flight_server.test_live import _leave, _messages, _no_doubles, _state, _subscribe
from tests.services import wait_for

from .nats_cluster import Cluster
from .processes import CLI, Flightdeck
from .workload import as_json, assert_exact, count, flight_query, pageviews

EVENT_SUBJECT = "events.pageview"
REQUEST = {"subscribe": "va_pageview_aggregate", "columns": ["view_count", "version"]}


class Producer:
    """Publishes `payloads` with ids `prefix-i` from a thread, `window` at a time in flight,
    each retried until JetStream acknowledges it (a retry inside the stream's duplicate
    window is acknowledged as a duplicate, not stored twice)."""

    def __init__(self, urls: str, payloads: list[bytes], prefix: str, window: int = 200) -> None:
        self.acked = 0
        self.retries = 0
        self.error: BaseException | None = None
        self._args = (urls.split(","), payloads, prefix, window)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"producer stuck after {self.acked} acks"
        assert self.error is None, repr(self.error)

    def _run(self) -> None:
        try:
            asyncio.run(self._publish(*self._args))
        except BaseException as exc:
            self.error = exc

    async def _publish(self, urls, payloads, prefix, window) -> None:
        nc = await nats.connect(
            urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=_quiet
        )
        js = nc.jetstream(timeout=2)
        try:
            for start in range(0, len(payloads), window):
                chunk = enumerate(payloads[start : start + window], start)
                await asyncio.gather(*(self._one(js, f"{prefix}-{i}", p) for i, p in chunk))
        finally:
            await nc.close()

    async def _one(self, js, msg_id: str, payload: bytes) -> None:
        while True:
            try:
                await js.publish(EVENT_SUBJECT, payload, headers={"Nats-Msg-Id": msg_id})
                self.acked += 1
                return
            except (nats.errors.Error, TimeoutError):  # timeout, no responders, reconnecting
                self.retries += 1
                await asyncio.sleep(0.2)


async def _quiet(exc: Exception) -> None:
    """A node that is down refuses connections: the publish retries say what matters."""


def _truth(query) -> dict:
    rows = query("SELECT page_url, date, view_count FROM va_pageview_aggregate").to_pylist()
    return {(r["page_url"], r["date"]): r["view_count"] for r in rows}


def _held(live: flightdeck.LiveTable) -> dict:
    rows = live.table.select(["page_url", "date", "view_count"]).to_pylist()
    return {(r["page_url"], r["date"]): r["view_count"] for r in rows}


def _cursor(client) -> tuple[list, int]:
    """A subscriber's messages up to a heartbeat, and the cursor it carries; then it leaves."""
    writer, reader = _subscribe(client, **REQUEST)
    got = _messages(reader, lambda meta, _: meta["type"] == "heartbeat", timeout=60)
    _leave(writer, reader)
    return got, got[-1][0]["cursor"]


def _resumed_equals_fresh(client, held: list, cursor: int, query) -> tuple[list, int]:
    """Resume from `cursor` with what was held then: the result equals a fresh query, with
    no update applied twice. Returns what is held now, and the newest cursor."""
    truth = _truth(query)
    writer, reader = _subscribe(client, **REQUEST, snapshot=False, cursor=cursor)
    got = _messages(reader, lambda meta, out: _state(held + out) == truth, timeout=60)
    _leave(writer, reader)
    assert _no_doubles(held + got)
    return held + got, max(meta["cursor"] for meta, _ in got if "cursor" in meta)


def test_events_leader_sigkilled_mid_ingest_every_event_once_and_live_without_gap(tmp_path):
    cluster = Cluster(tmp_path / "nats")
    first, during, after = pageviews(300, seed=1), pageviews(6000, seed=2), pageviews(500, seed=3)
    flags = ["--port", "0", "--nats", cluster.urls, "--nats-replicas", "3"]
    data = ["--data-dir", str(tmp_path / "d")]
    more = ["--raw-retention-days", "0", "--heartbeat", "0.5"]
    serve = Flightdeck(["serve", *flags, *data, *more], tmp_path)
    live = None
    try:
        cluster.start()
        cluster.add_stream(replicated(STREAM_EVENTS, 1))  # made before the cluster grew
        serve.start()
        assert cluster.stream_info("EVENTS").config.num_replicas == 3
        # JetStream adds the new peers after the update answers, and copies the stream.
        assert wait_for(lambda: _caught_up(cluster), timeout=60, interval=0.5), cluster.logs()
        assert cluster.stream_info("AGGREGATES").config.num_replicas == 3
        query = flight_query(serve.location)
        client = flight.connect(serve.location)
        live = flightdeck.LiveTable(flightdeck.connect(serve.location), "va_pageview_aggregate")

        Producer(cluster.urls, as_json(first), "first").start().join()
        assert wait_for(lambda: count(query) == 300, timeout=60), serve.log()
        held, cursor = _cursor(client)

        producer = Producer(cluster.urls, as_json(during), "during").start()
        assert wait_for(lambda: count(query) >= 1300, timeout=60), serve.log()
        leader = cluster.node(cluster.stream_leader("EVENTS"))
        leader.kill()
        assert count(query) < 6300  # killed mid-ingest
        producer.join()  # every event acknowledged by the two nodes left
        assert wait_for(lambda: count(query) == 6300, timeout=90), serve.log()
        assert wait_for(lambda: cluster.stream_leader("EVENTS") not in (None, leader.name))
        assert wait_for(lambda: _held(live) == _truth(query), timeout=60)
        held, cursor = _resumed_equals_fresh(client, held, cursor, query)

        leader.start()  # back on its store: it catches up as a follower
        assert wait_for(lambda: _caught_up(cluster), timeout=60, interval=0.5), cluster.logs()
        Producer(cluster.urls, as_json(after), "after").start().join()
        assert wait_for(lambda: count(query) == 6800, timeout=60), serve.log()
        assert wait_for(lambda: _held(live) == _truth(query), timeout=60)
        _resumed_equals_fresh(client, held, cursor, query)

        found = assert_exact(query)  # the aggregates equal a recomputation from the raw events
        batches = (("first", 300), ("during", 6000), ("after", 500))
        sent = [f"{prefix}-{i}" for prefix, n in batches for i in range(n)]
        assert sorted(found.event_id) == sorted(sent)  # each exactly once
        client.close()
    finally:
        if live is not None:
            live.close()
        serve.stop()
        cluster.stop()
    check = subprocess.run(
        [*CLI, "reaggregate", "--all", "--check", *data],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _caught_up(cluster: Cluster) -> bool:
    info = cluster.stream_info("EVENTS")
    if info is None or info.cluster is None:
        return False
    return len(info.cluster.replicas or []) == 2 and all(r.current for r in info.cluster.replicas)
