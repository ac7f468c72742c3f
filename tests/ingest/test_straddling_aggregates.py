"""Time-ordered puts whose sessions straddle puts, an hour and midnight, with late events.

The realistic stream (benchmarks/stream.py) cut into puts: a session's views
land in several commits, some views are held back and sent a few puts late
(after later views of their session were stored), and some are resent with
other content (the first sent wins). After every put the aggregates equal a
recomputation of everything kept, the incremental state equals a rebuild from
raw events, and the commit's version marks exactly the rows whose metrics changed.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from flightdeck.ingest import ingest, reaggregate

from benchmarks.stream import EventStream, StreamShape
from tests import reference

# Starts two minutes before midnight: sessions straddle the day and the hour.
_SHAPE = StreamShape(start=dt.datetime(2024, 3, 4, 23, 58, tzinfo=dt.UTC))
_PUTS, _PER_PUT, _LATE_EVERY = 6, 500, 9

_DAILY = (
    "SELECT page_url, date, view_count, unique_visitors, bounce_rate, avg_session_duration, "
    "version FROM va_pageview_aggregate ORDER BY page_url, date"
)
_HOURLY = (
    "SELECT page_url, hour, view_count, unique_visitors, version "
    "FROM va_pageview_hourly ORDER BY page_url, hour"
)


def _puts() -> list[pa.Table]:
    """Cut the stream into puts; every 9th event goes two puts late, and a few are resent."""
    stream = EventStream(seed=3, shape=_SHAPE)
    chunks = [stream.take(_PER_PUT).events for _ in range(_PUTS)]
    late = [pc.equal(pc.remainder(pa.array(range(t.num_rows)), _LATE_EVERY), 0) for t in chunks]
    puts = [t.filter(pc.invert(mask)) for t, mask in zip(chunks, late, strict=True)]
    for number, (table, mask) in enumerate(zip(chunks, late, strict=True)):
        held = table.filter(mask)
        target = min(number + 2, _PUTS - 1)
        puts[target] = pa.concat_tables([puts[target], held])
    # A resend of an already stored event_id with other content: a duplicate.
    resent = (
        puts[0]
        .slice(0, 20)
        .set_column(
            puts[0].schema.get_field_index("page_url"), "page_url", pa.array(["/elsewhere"] * 20)
        )
    )
    puts[3] = pa.concat_tables([puts[3], resent])
    return puts


def _kept(puts: list[pa.Table]) -> pd.DataFrame:
    """First sent of each event_id, across all puts so far."""
    frame = pa.concat_tables(puts).to_pandas()
    frame = frame.drop_duplicates("event_id", keep="first")
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame[["session_id", "page_url", "recorded_at"]]


def _read(store, sql: str) -> pd.DataFrame:
    with store.read(sql) as reader:
        return reader.read_all().to_pandas()


def _rewritten(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> set:
    """Keys of the rows `after` holds that are new or whose metrics differ from `before`."""
    metrics = [c for c in after.columns if c not in keys and c != "version"]
    merged = after.merge(before, on=keys, how="left", suffixes=("", "_old"), indicator=True)
    differs = merged["_merge"] == "left_only"
    for column in metrics:
        differs |= merged[column] != merged[f"{column}_old"]
    return set(map(tuple, merged.loc[differs, keys].itertuples(index=False)))


def _versioned(after: pd.DataFrame, keys: list[str], version: int) -> set:
    rows = after[after["version"] == version]
    return set(map(tuple, rows[keys].itertuples(index=False)))


@pytest.mark.slow  # a long exactness run: make test runs it
def test_straddling_puts_keep_aggregates_and_versions_exact(store):
    puts = _puts()
    daily, hourly = _read(store, _DAILY), _read(store, _HOURLY)
    for number in range(_PUTS):
        result = ingest(store, puts[number].to_batches(max_chunksize=128))
        assert result.accepted > 0, f"put {number}"
        new_daily, new_hourly = _read(store, _DAILY), _read(store, _HOURLY)
        for before, after, keys in (
            (daily, new_daily, ["page_url", "date"]),
            (hourly, new_hourly, ["page_url", "hour"]),
        ):
            assert _versioned(after, keys, result.version) == _rewritten(before, after, keys), (
                f"put {number}: the version must mark exactly the changed rows"
            )
        daily, hourly = new_daily, new_hourly
        reference.assert_matches(
            daily.drop(columns="version"),
            hourly.drop(columns="version"),
            _kept(puts[: number + 1]),
        )
        assert reaggregate(store, None, apply=False).differences == 0, f"put {number}"
    assert daily["date"].nunique() == 2  # the stream did cross midnight
