"""Live subscribers in one process: `python -m benchmarks.subscriber LOCATION COUNT [options]`.

Follow mode (default): each of COUNT threads opens a DoExchange subscription to
va_pageview_aggregate (no snapshot) and notes the wall-clock time at which each
`/live/…` page first arrives in an update, and the row's `computed_at` (the
start of the transaction that committed it). The process prints `ready` once
every subscription has its schema (the server has registered it), then, when its
stdin closes, one JSON line: {"arrivals": [per subscriber {page: time}],
"computed_at": {page: time}}. With --stalled the subscribers never read after
their schema: the deliberately stalled client.

Storm mode (--storm): the threads first connect, print `armed`, then wait for a
`go` line on stdin; at it every thread subscribes with a snapshot at once and
notes when its `snapshot_end` arrives. One JSON line follows: {"go": time the
line was read, "settled": [per subscriber time or null], "rows": [...],
"errors": [...]}.

Subscriptions share FlightClients, --per-connection streams each: gRPC
multiplexes the DoExchange calls of one client over one HTTP/2 connection, so
10,000 subscribers need 100 connections, not 10,000.

With --multiplex N, subscriptions travel N to a stream (`{"multiplex": true}`,
docs/live.md): one thread and one DoExchange per N subscriptions, on the client
and on the server. A stream is ready when a probe subscribed after its
subscriptions has its (empty) snapshot: the server takes a stream's requests in
order. --stalled then opens one stream of one subscription that reads nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

__all__ = ["SUBSCRIPTION", "raise_open_files_limit"]

SUBSCRIPTION = {
    "subscribe": "va_pageview_aggregate",
    "snapshot": False,
    "columns": ["page_url", "date", "view_count", "version", "computed_at"],
}
_STACK_BYTES = 512 * 1024  # thousands of threads, each blocked in one gRPC read
_STORM_GIVE_UP_S = 120.0
# Storm subscriptions, referenced until os._exit: dropping a DoExchange's writer closes
# it, and closing blocks until the server ends the call, which a live one never does.
_HELD: list = []


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (children inherit it); the new soft limit.

    Thousands of subscriptions need sockets and gRPC's own descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _descriptor(snapshot: bool) -> flight.FlightDescriptor:
    request = SUBSCRIPTION | {"snapshot": snapshot}
    return flight.FlightDescriptor.for_command(json.dumps(request).encode())


def _open(client: flight.FlightClient, give_up_s: float = 30.0):
    """Open a subscription, retrying while the server is full: the subscribers of the
    previous run free their --max-subscribers slots only as the server notices them go."""
    deadline = time.monotonic() + give_up_s
    while True:
        writer, reader = client.do_exchange(_descriptor(snapshot=False))
        try:
            reader.schema  # noqa: B018  (blocks until the server registered us)
            return writer, reader
        except flight.FlightUnavailableError:
            writer.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _epoch_s(column: pa.ChunkedArray | pa.Array) -> list[float]:
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [m / 1e6 for m in micros]


class _Follower:
    """One follow-mode subscription's thread body."""

    def __init__(self, client, arrivals: dict, committed: dict, ready, stalled: bool) -> None:
        self.client, self.arrivals, self.committed = client, arrivals, committed
        self.ready, self.stalled = ready, stalled

    def __call__(self) -> None:
        try:
            _writer, reader = _open(self.client)  # the writer stays open while we read
        except BaseException:
            self.ready.abort()  # the run fails now, instead of waiting out the barrier
            raise
        self.ready.wait()
        if self.stalled:
            while True:
                time.sleep(3600)
        while True:
            try:
                chunk = reader.read_chunk()
            except (StopIteration, flight.FlightError, OSError):
                return
            now = time.time()  # before any decoding: the arrival, not our bookkeeping
            if chunk.data is not None and chunk.data.num_rows:
                _note(self.arrivals, self.committed, chunk.data, now)


def _note(arrivals: dict, committed: dict, batch: pa.RecordBatch, now: float) -> None:
    """Each `/live/` page's first arrival, and its commit's start (`computed_at`)."""
    pages = batch.column(0).to_pylist()
    fresh = [i for i, p in enumerate(pages) if p.startswith("/live/") and p not in arrivals]
    for i in fresh:
        arrivals[pages[i]] = now
    if fresh and any(pages[i] not in committed for i in fresh):
        started = _epoch_s(batch.column(batch.schema.get_field_index("computed_at")))
        for i in fresh:
            committed.setdefault(pages[i], started[i])


class _MuxFollower:
    """One multiplexed stream's thread body: subscriptions `first`… of this process."""

    def __init__(self, client, first: int, arrivals: list, committed: dict, ready, stalled):
        self.client, self.first, self.arrivals = client, first, arrivals
        self.committed, self.ready, self.stalled = committed, ready, stalled

    def __call__(self, count: int) -> None:
        try:
            stream = _mux_open(self.client, count, snapshot=False)
        except BaseException:
            self.ready.abort()
            raise
        self.ready.wait()
        if self.stalled:
            while True:
                time.sleep(3600)
        for message in stream:
            now = time.time()
            if message.table is not None and isinstance(message.id, int):
                arrivals = self.arrivals[self.first + message.id]
                for batch in message.table.to_batches():
                    _note(arrivals, self.committed, batch, now)


def _mux_open(client: flight.FlightClient, count: int, snapshot: bool, give_up_s: float = 30.0):
    """A multiplexed stream with `count` subscriptions (ids 0…), registered on return.
    Subscriptions refused while the server is full are asked for again: the previous
    run's subscribers free their --max-subscribers slots only as the server notices."""
    from flightdeck.live_mux import Multiplex

    descriptor = flight.FlightDescriptor.for_command(b'{"multiplex": true}')
    stream = Multiplex(*client.do_exchange(descriptor))
    _HELD.append(stream)
    wanted, deadline = list(range(count)), time.monotonic() + give_up_s
    for n in itertools.count():
        for i in wanted:
            stream.subscribe(SUBSCRIPTION["subscribe"], id=i, **_options(snapshot))
        if snapshot:
            return stream
        wanted = _refused(stream, f"probe{n}")
        if not wanted:
            return stream
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(wanted)} subscriptions refused: server full")
        time.sleep(0.2)
    raise AssertionError("unreachable")


def _refused(stream, probe: str) -> list[int]:
    """Subscribe a probe after the others: the server takes a stream's requests in order,
    so by the probe's (empty) snapshot every earlier one was registered or refused."""
    none = {"page_url": "/-no-such-page-"}
    stream.subscribe(SUBSCRIPTION["subscribe"], id=probe, where=none, columns=["page_url"])
    refused = []
    for message in stream:
        if message.kind == "error":
            refused.append(message.id)
        if message.id == probe and message.kind in ("snapshot_end", "error"):
            break
    stream.unsubscribe(probe)
    return [i for i in refused if isinstance(i, int)]  # a refused probe concerns no one


def _options(snapshot: bool) -> dict:
    return {k: v for k, v in SUBSCRIPTION.items() if k != "subscribe"} | {"snapshot": snapshot}


def _mux_follow(args: argparse.Namespace) -> None:
    sizes = [min(args.multiplex, args.count - i) for i in range(0, args.count, args.multiplex)]
    ready = threading.Barrier(len(sizes) + 1)
    arrivals: list[dict[str, float]] = [{} for _ in range(args.count)]
    committed: dict[str, float] = {}
    clients = _clients(args.location, len(sizes), args.per_connection)
    for n, (client, size) in enumerate(zip(clients, sizes, strict=True)):
        body = _MuxFollower(client, n * args.multiplex, arrivals, committed, ready, args.stalled)
        threading.Thread(target=body, args=(size,), daemon=True).start()
    ready.wait(timeout=900)
    print("ready", flush=True)
    sys.stdin.read()
    out = {"arrivals": [dict(a) for a in arrivals], "computed_at": dict(committed)}
    print(json.dumps(out), flush=True)


def _mux_storm_stream(client, first: int, count: int, go, done, out: dict) -> None:
    """At `go`, `count` subscriptions with a snapshot on one stream; each one's snapshot_end."""
    from flightdeck.live_mux import Multiplex

    descriptor = flight.FlightDescriptor.for_command(b'{"multiplex": true}')
    try:
        stream = Multiplex(*client.do_exchange(descriptor))
        _HELD.append(stream)
        go.wait()
        for i in range(count):
            stream.subscribe(SUBSCRIPTION["subscribe"], id=i, **_options(snapshot=True))
        left = count
        for message in stream:
            slot = first + message.id
            if message.kind == "snapshot" and message.table is not None:
                out["rows"][slot] += message.table.num_rows
            elif message.kind == "snapshot_end":
                out["settled"][slot] = time.time()
            elif message.kind == "error":
                out["errors"].append(message.detail.get("reason"))
            else:
                continue
            if message.kind != "snapshot":
                left -= 1
                done.release()
                if not left:
                    return
    except Exception as exc:
        out["errors"].append(repr(exc))


def _clients(location: str, count: int, per_connection: int) -> list[flight.FlightClient]:
    connections = [flight.connect(location) for _ in range(-(-count // per_connection))]
    return [connections[i // per_connection] for i in range(count)]


def _follow(args: argparse.Namespace) -> None:
    ready = threading.Barrier(args.count + 1)
    arrivals: list[dict[str, float]] = [{} for _ in range(args.count)]
    committed: dict[str, float] = {}
    for i, client in enumerate(_clients(args.location, args.count, args.per_connection)):
        body = _Follower(client, arrivals[i], committed, ready, args.stalled)
        threading.Thread(target=body, daemon=True).start()
    ready.wait(timeout=900)  # 1,000 subscriptions take minutes to open on a busy 2-core box
    print("ready", flush=True)
    sys.stdin.read()  # the parent closes our stdin when the run is over
    out = {"arrivals": [dict(a) for a in arrivals], "computed_at": dict(committed)}
    print(json.dumps(out), flush=True)


def _snapshot_once(
    client: flight.FlightClient,
    go: threading.Event,
    done: threading.Semaphore,
    slot: int,
    out: dict,
) -> None:
    """Subscribe with a snapshot when `go` is set; note when snapshot_end arrives."""
    go.wait()
    rows = 0
    try:
        writer, reader = client.do_exchange(_descriptor(snapshot=True))
        _HELD.append((writer, reader))
        while True:
            chunk = reader.read_chunk()
            if chunk.data is not None:
                rows += chunk.data.num_rows
            kind = json.loads(chunk.app_metadata.to_pybytes())["type"] if chunk.app_metadata else ""
            if kind == "snapshot_end":
                out["settled"][slot] = time.time()
                break
    except Exception as exc:  # a refused or broken subscription is a result: it never settled
        out["errors"].append(repr(exc))
    out["rows"][slot] = rows
    done.release()


def _storm(args: argparse.Namespace) -> None:
    go, done = threading.Event(), threading.Semaphore(0)
    out: dict = {"settled": [None] * args.count, "rows": [0] * args.count, "errors": []}
    streams = args.count if not args.multiplex else -(-args.count // args.multiplex)
    clients = _clients(args.location, streams, args.per_connection)
    for client in dict.fromkeys(clients):
        client.wait_for_available(timeout=30)  # connected now, so the storm times subscribing
    for i, client in enumerate(clients):
        if args.multiplex:
            first = i * args.multiplex
            body = (client, first, min(args.multiplex, args.count - first), go, done, out)
            threading.Thread(target=_mux_storm_stream, args=body, daemon=True).start()
            continue
        body = (client, go, done, i, out)
        threading.Thread(target=_snapshot_once, args=body, daemon=True).start()
    print("armed", flush=True)
    sys.stdin.readline()
    out["go"] = time.time()
    go.set()
    deadline = time.monotonic() + _STORM_GIVE_UP_S
    for _ in range(args.count):  # each subscriber settles or fails, or we stop waiting
        if not done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
    print(json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("location")
    parser.add_argument("count", type=int)
    parser.add_argument("--stalled", action="store_true")
    parser.add_argument("--storm", action="store_true")
    parser.add_argument("--per-connection", type=int, default=100, help="streams per client")
    parser.add_argument(
        "--multiplex",
        type=int,
        default=0,
        help="subscriptions per multiplexed stream (0: one each)",
    )
    args = parser.parse_args()
    raise_open_files_limit()
    threading.stack_size(_STACK_BYTES)
    if args.storm:
        _storm(args)
    elif args.multiplex and not args.stalled:
        _mux_follow(args)
    else:
        _follow(args)
    os._exit(0)  # threads block in gRPC reads: leave without joining them


if __name__ == "__main__":
    main()
