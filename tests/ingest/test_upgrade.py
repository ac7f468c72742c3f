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


def test_session_state_migration_builds_state_from_stored_events(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    older = [m for m in found if m.phase == "post" or m.name < "007"]
    migrations.apply(raw_store, older)
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
