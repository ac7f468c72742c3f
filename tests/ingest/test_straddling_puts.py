"""Time-ordered puts whose sessions straddle puts stay exact after every commit (issue 18).

The benchmark's realistic stream (benchmarks/stream.py) cut into puts, each put
into several batches: sessions run across puts, some events arrive late, and
some are resent, within a put (even within one batch) or in a later one. After
every put the stored events are exactly the first sends, and the aggregates
equal a recomputation from them (tests/reference.py) and a rebuild from raw
events (`reaggregate --check`).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from flightdeck.ingest import ingest, reaggregate

from benchmarks.stream import EventStream
from tests import reference

_PUTS = 4
_PUT_ROWS = 2_500
_BATCH_ROWS = 700  # a put's batches: resends also straddle batches


def _read(store, sql: str) -> pd.DataFrame:
    with store.read(sql) as reader:
        return reader.read_all().to_pandas()


def _stored_ids(store) -> list[str]:
    return sorted(_read(store, "SELECT event_id FROM va_pageview_event").event_id)


def _assert_exact(store, kept: pa.Table) -> None:
    truth = kept.select(["session_id", "page_url", "recorded_at"]).to_pandas()
    daily = _read(
        store,
        "SELECT page_url, date, view_count, unique_visitors, bounce_rate, avg_session_duration "
        "FROM va_pageview_aggregate",
    )
    hourly = _read(
        store, "SELECT page_url, hour, view_count, unique_visitors FROM va_pageview_hourly"
    )
    reference.assert_matches(daily, hourly, truth)
    assert reaggregate(store, None, apply=False).differences == 0


@pytest.mark.slow  # 20 s a backend; test_straddling_aggregates.py keeps one in the quick loop
def test_straddling_puts_are_exact_after_every_commit(store):
    stream = EventStream(seed=5)
    kept: list[pa.Table] = []
    resent_across = 0
    for number in range(_PUTS):
        chunk = stream.take(_PUT_ROWS)
        first = chunk.first_sends()
        resent_across += _resent_from_earlier_puts(chunk, kept)
        result = ingest(store, chunk.events.to_batches(max_chunksize=_BATCH_ROWS))
        assert (result.accepted, result.duplicates) == (
            first.num_rows,
            _PUT_ROWS - first.num_rows,
        ), f"put {number}"
        kept.append(first)
        everything = pa.concat_tables(kept)
        assert _stored_ids(store) == sorted(everything["event_id"].to_pylist()), f"put {number}"
        _assert_exact(store, everything)
    # The stream did what this test is for: resends reached across puts.
    assert resent_across > 0


def _resent_from_earlier_puts(chunk, kept: list[pa.Table]) -> int:
    if not kept:
        return 0
    earlier = pa.concat_tables(kept)["event_id"]
    return pc.sum(pc.is_in(chunk.events["event_id"], earlier)).as_py() or 0
