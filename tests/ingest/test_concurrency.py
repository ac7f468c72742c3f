"""Concurrent writers on both backends: every commit sees the others, aggregates stay exact.

Two PostgreSQL transactions that recompute the same page-day from their own
snapshots would each miss the other's events; writers take turns, and this
test would catch it if they did not.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pandas as pd
import pyarrow as pa
import pytest
from flightdeck.ingest import ingest

from tests import reference

BASE = dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)


def _batches(seed: int, n: int = 400, per_put: int = 20) -> list[pa.RecordBatch]:
    rng = random.Random(seed)
    rows = {
        "event_id": [f"w{seed}-{i}" for i in range(n)],
        "session_id": [f"s{rng.randrange(12)}" for _ in range(n)],  # sessions shared by writers
        "page_url": [f"/p{rng.randrange(4)}" for _ in range(n)],
        "recorded_at": [BASE + dt.timedelta(minutes=rng.randrange(600)) for _ in range(n)],
    }
    table = pa.table(rows).cast(
        pa.schema(
            [(k, pa.string()) for k in list(rows)[:3]]
            + [("recorded_at", pa.timestamp("us", "UTC"))]
        )
    )
    return table.to_batches(max_chunksize=per_put)


@pytest.mark.slow  # a long exactness run: make test runs it
def test_concurrent_puts_leave_exact_aggregates(store):
    writers = [_batches(seed) for seed in range(4)]
    errors: list[BaseException] = []

    def write(batches: list[pa.RecordBatch]) -> None:
        try:
            for batch in batches:
                ingest(store, [batch])
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    events = pa.Table.from_batches([b for w in writers for b in w]).to_pandas()
    with store.read("SELECT * FROM va_pageview_aggregate") as reader:
        got = reader.read_all().to_pandas().drop(columns=["computed_at", "version"])
    got = got.sort_values(["page_url", "date"]).reset_index(drop=True)
    got["avg_session_duration"] = got.avg_session_duration.round(6)
    pd.testing.assert_frame_equal(got, reference.daily(events), check_dtype=False)
    with store.read("SELECT * FROM va_pageview_hourly") as reader:
        hourly = reader.read_all().to_pandas().drop(columns=["version"])
    hourly = hourly.sort_values(["page_url", "hour"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(hourly, reference.hourly(events), check_dtype=False)


def test_a_put_still_sending_does_not_hold_up_other_writers(store):
    # A DoPut client that stalls mid-stream keeps its put open. Its batches are
    # staged outside the writer turn, so other puts (and NATS ingest) commit meanwhile.
    slow, fast = _batches(10, n=40), _batches(11, n=40)
    first_sent, go_on = threading.Event(), threading.Event()
    results: list = []

    def stalling():
        yield slow[0]
        first_sent.set()
        assert go_on.wait(60)
        yield from slow[1:]

    stalled = threading.Thread(target=lambda: results.append(ingest(store, stalling())))
    stalled.start()
    assert first_sent.wait(30)
    done = threading.Event()
    other = threading.Thread(target=lambda: (results.append(ingest(store, fast)), done.set()))
    other.start()
    assert done.wait(30), "a put waited for a stalled put to finish sending"
    go_on.set()
    stalled.join(60)
    other.join(60)
    assert sorted(r.accepted for r in results) == [40, 40]
    events = pa.Table.from_batches(slow + fast).to_pandas()
    with store.read("SELECT * FROM va_pageview_aggregate") as reader:
        got = reader.read_all().to_pandas().drop(columns=["computed_at", "version"])
    got = got.sort_values(["page_url", "date"]).reset_index(drop=True)
    got["avg_session_duration"] = got.avg_session_duration.round(6)
    pd.testing.assert_frame_equal(got, reference.daily(events), check_dtype=False)
