"""A store that held events before the incremental state existed keeps exact aggregates."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pyarrow as pa
from flightdeck.ingest import ingest, reaggregate
from flightdeck.views import migrations

from tests import reference
from tests.conftest import insert

BASE = dt.datetime(2024, 6, 1, 22, tzinfo=dt.UTC)  # days straddle midnight


def _events(seed: int, n: int) -> pa.Table:
    rng = random.Random(seed)
    return pa.table(
        {
            "event_id": [f"u{seed}-{i}" for i in range(n)],
            "session_id": [f"s{rng.randrange(8)}" for _ in range(n)],
            "page_url": [f"/p{rng.randrange(3)}" for _ in range(n)],
            "recorded_at": pa.array(
                [BASE + dt.timedelta(minutes=rng.randrange(240)) for _ in range(n)],
                pa.timestamp("us", "UTC"),
            ),
        }
    )


def _daily(store) -> pd.DataFrame:
    with store.read("SELECT * FROM va_pageview_aggregate") as reader:
        got = reader.read_all().to_pandas().drop(columns=["computed_at", "version"])
    got = got.sort_values(["page_url", "date"]).reset_index(drop=True)
    got["avg_session_duration"] = got.avg_session_duration.round(6)
    return got


_NEWER = {"va_event"}  # views over tables of migrations these tests leave unapplied


def _apply_before(store, name: str) -> list:
    """The migrations older than `name` (and the views an old store had) applied; all
    of them returned."""
    found = migrations.load_migrations(store.backend)
    old = [m for m in found if m.name < name or (m.phase == "post" and m.name not in _NEWER)]
    migrations.apply(store, old)
    return found


def test_session_state_migration_builds_state_from_stored_events(raw_store):
    found = _apply_before(raw_store, "007")
    before = _events(1, 120)
    insert(raw_store, "tb_pageview_event", before)
    old_rows = reference.daily(before.to_pandas()).assign(
        computed_at=pd.Timestamp("2024-06-03", tz="UTC"), version=0
    )
    insert(raw_store, "tb_pageview_aggregate", pa.Table.from_pandas(old_rows, preserve_index=False))

    assert [m.name for m in migrations.apply(raw_store, found)][:1] == ["007_session_state"]
    assert reaggregate(raw_store, None, apply=False).daily_changed == 0  # sums were filled in
    after = _events(2, 80)  # the same sessions, pages and days, so old state is reused
    ingest(raw_store, after.to_batches(max_chunksize=20))
    everything = pa.concat_tables([before, after]).to_pandas()
    pd.testing.assert_frame_equal(_daily(raw_store), reference.daily(everything), check_dtype=False)


def test_page_hours_migration_fills_lists_of_stored_session_days(raw_store):
    found = _apply_before(raw_store, "014")
    before = _events(3, 120)
    insert(raw_store, "tb_pageview_event", before)
    frame = before.to_pandas()
    insert(raw_store, "tb_pageview_aggregate", _stored(reference.daily(frame)))
    insert(raw_store, "tb_pageview_hourly", _stored(reference.hourly(frame)))
    (state,) = [m for m in found if m.name == "007_session_state"]
    with raw_store.write() as conn, conn.cursor() as cursor:
        for statement in state.statements(raw_store.backend):
            if "INSERT INTO" in statement or "UPDATE" in statement:
                cursor.execute(statement)  # the state 013 kept: no page-hour lists
        conn.commit()

    assert [m.name for m in migrations.apply(raw_store, found)][:1] == ["014_session_page_hours"]
    assert reaggregate(raw_store, None, apply=False).differences == 0  # the lists were filled
    after = _events(4, 80)  # the same sessions, pages and hours: their lists are reused
    ingest(raw_store, after.to_batches(max_chunksize=20))
    everything = pa.concat_tables([before, after]).to_pandas()
    pd.testing.assert_frame_equal(_daily(raw_store), reference.daily(everything), check_dtype=False)
    with raw_store.read(
        "SELECT page_url, hour, view_count, unique_visitors "
        "FROM va_pageview_hourly ORDER BY page_url, hour"
    ) as reader:
        hourly = reader.read_all().to_pandas()
    pd.testing.assert_frame_equal(hourly, reference.hourly(everything), check_dtype=False)


def _stored(rows: pd.DataFrame) -> pa.Table:
    rows = rows.assign(computed_at=pd.Timestamp("2024-06-03", tz="UTC"), version=0)
    return pa.Table.from_pandas(rows, preserve_index=False)
