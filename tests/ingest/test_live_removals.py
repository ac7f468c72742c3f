"""Rows deleted from a live view are recorded in the deleting transaction and read back
typed as the view has them, for every built-in rollup's key (both backends)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from flightdeck.ingest import ingest
from flightdeck.ingest.live_removals import record_removals, removed_keys
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

# Every built-in rollup on both backends: make test runs them; a bare pytest keeps
# its 5 minutes (README).
pytestmark = pytest.mark.slow

BUILTINS = load_rollups([BUILTIN_DIR])
# The rollups the page views below fill (api_latency_hourly reads api.request only).
OF_PAGE_VIEWS = [r for r in BUILTINS if r.events is None or "pageview" in r.events]


@pytest.fixture
def filled(store):
    install(store, BUILTINS)
    rows = [
        {
            "event_id": f"e{i}",
            "session_id": f"s{i % 3}",
            "page_url": f"/p{i % 4}",
            "timestamp": f"2024-03-0{1 + i % 3}T1{i % 10}:00:00+00:00",
            "user_id": f"u{i % 2}",
        }
        for i in range(24)
    ]
    ingest(store, [pa.RecordBatch.from_pylist(rows)])
    return store


def _keys(store, view: str, keys: tuple[str, ...]) -> list[tuple]:
    with store.read_internal(f"SELECT {', '.join(keys)} FROM {view}") as reader:
        return sorted(tuple(r.values()) for r in reader.read_all().to_pylist())


@pytest.mark.parametrize("rollup", OF_PAGE_VIEWS, ids=lambda r: r.name)
def test_deleted_keys_come_back_typed_and_rewritten_ones_do_not(filled, rollup):
    store, keys = filled, rollup.key
    before = _keys(store, rollup.view, keys)
    assert before
    with store.write() as conn, conn.cursor() as cursor:
        record_removals(cursor, rollup.view, rollup.table, keys, "TRUE", 99)
        cursor.execute(f"DELETE FROM {rollup.table}")
        conn.commit()
    removed = removed_keys(store, rollup.view, keys, 99)
    assert removed.column_names == [*keys, "version"]
    assert sorted(tuple(r[k] for k in keys) for r in removed.to_pylist()) == before
    assert set(removed.column("version").to_pylist()) == {99}
    # A key the same version wrote again is no removal: the view holds it.
    assert removed_keys(filled, "va_pageview_aggregate", ("page_url", "date"), 98).num_rows == 0
