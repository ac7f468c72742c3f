"""Live subscribers in one process: `python -m benchmarks.subscriber LOCATION COUNT [--stalled]`.

Each of COUNT threads opens a DoExchange subscription to va_pageview_aggregate
(no snapshot) and notes the wall-clock time at which each `/live/…` page first
arrives in an update. The process prints `ready` once every subscription has its
schema (the server has registered it), then, when its stdin closes, one JSON line:
a list, per subscriber, of {page_url: arrival time}. With --stalled the
subscribers never read after their schema: the deliberately stalled client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import pyarrow.flight as flight

__all__ = ["SUBSCRIPTION"]

SUBSCRIPTION = {
    "subscribe": "va_pageview_aggregate",
    "snapshot": False,
    "columns": ["page_url", "date", "view_count", "version"],
}


def _open(location: str, give_up_s: float = 30.0):
    """Open a subscription, retrying while the server is full: the subscribers of the
    previous run free their --max-subscribers slots only as the server notices them go."""
    descriptor = flight.FlightDescriptor.for_command(json.dumps(SUBSCRIPTION).encode())
    deadline = time.monotonic() + give_up_s
    while True:
        client = flight.connect(location)
        writer, reader = client.do_exchange(descriptor)
        try:
            reader.schema  # noqa: B018  (blocks until the server registered us)
            return client, writer, reader
        except flight.FlightUnavailableError:
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _subscribe(location: str, arrivals: dict, ready: threading.Barrier, stalled: bool) -> None:
    try:
        _client, _writer, reader = _open(location)  # all stay open while we read
    except BaseException:
        ready.abort()  # the run fails now, instead of waiting out the barrier
        raise
    ready.wait()
    if stalled:
        while True:
            time.sleep(3600)
    while True:
        try:
            chunk = reader.read_chunk()
        except (StopIteration, flight.FlightError, OSError):
            return
        now = time.time()
        if chunk.data is None or chunk.data.num_rows == 0:
            continue
        for page in chunk.data.column(0).to_pylist():
            if page.startswith("/live/") and page not in arrivals:
                arrivals[page] = now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("location")
    parser.add_argument("count", type=int)
    parser.add_argument("--stalled", action="store_true")
    args = parser.parse_args()
    ready = threading.Barrier(args.count + 1)
    arrivals: list[dict[str, float]] = [{} for _ in range(args.count)]
    for i in range(args.count):
        threading.Thread(
            target=_subscribe,
            args=(args.location, arrivals[i], ready, args.stalled),
            daemon=True,
        ).start()
    ready.wait(timeout=900)  # 1,000 subscriptions take minutes to open on a busy 2-core box
    print("ready", flush=True)
    sys.stdin.read()  # the parent closes our stdin when the run is over
    print(json.dumps([dict(a) for a in arrivals]), flush=True)
    os._exit(0)  # threads block in gRPC reads: leave without joining them


if __name__ == "__main__":
    main()
