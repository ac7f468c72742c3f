"""Completion by push: a live subscription that notes when marker pages first arrive.

The NATS round ends with one marker event on a page of its own. The worker
commits batches one at a time in the order it fetched them, so the marker's
aggregate row reaches a live subscriber only after every event published before
it was committed. Its arrival time is the round's end: no polling interval to
bias it; it includes the live path's own delay (commit → outbox → NATS → hub →
this subscriber), a few ms, which makes the figure a slight underestimate of the
rate.
"""

from __future__ import annotations

import json
import threading
import time

import pyarrow.compute as pc
import pyarrow.flight as flight

__all__ = ["MARKER_PREFIX", "CommitWatch"]

MARKER_PREFIX = "/bench/end/"
_SUBSCRIPTION = {"subscribe": "va_pageview_aggregate", "snapshot": False, "columns": ["page_url"]}


class CommitWatch:
    def __init__(self, location: str) -> None:
        self._client = flight.connect(location)
        descriptor = flight.FlightDescriptor.for_command(json.dumps(_SUBSCRIPTION).encode())
        self._writer, self._reader = self._client.do_exchange(descriptor)
        self._reader.schema  # noqa: B018  (blocks until the server has registered us)
        self._arrived: dict[str, float] = {}
        self._changed = threading.Condition()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        while True:
            try:
                chunk = self._reader.read_chunk()
            except (StopIteration, flight.FlightError, OSError):
                return
            now = time.perf_counter()
            if chunk.data is None or chunk.data.num_rows == 0:
                continue
            pages = chunk.data.column(0)
            markers = pages.filter(pc.starts_with(pages, MARKER_PREFIX)).to_pylist()
            if markers:
                with self._changed:
                    for page in markers:
                        self._arrived.setdefault(page, now)
                    self._changed.notify_all()

    def wait(self, page: str, timeout: float) -> float:
        """perf_counter() at which `page` first arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: page in self._arrived, timeout):
                raise RuntimeError(f"NATS round: marker {page} not seen within {timeout:.0f}s")
            return self._arrived[page]

    def close(self) -> None:
        self._client.close()
