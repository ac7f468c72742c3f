"""The live views: those whose rows carry `version` and are published on change.

Each maps to the columns that identify a row: an update to the same key replaces
the row sent before. The publisher (ingest) sends these views' changed rows; the
live hub (flight_server) serves subscriptions to them and filters on their keys.
Besides the two page-view aggregates, every rollup the store keeps is live
(docs/rollups.md), keyed by its time column and dimensions.
"""

from __future__ import annotations

from .rollup_spec import stored_rollup
from .store import Store

__all__ = ["LIVE_KEYS", "live_keys"]

LIVE_KEYS: dict[str, tuple[str, ...]] = {
    "va_pageview_aggregate": ("page_url", "date"),
    "va_pageview_hourly": ("page_url", "hour"),
}


def live_keys(store: Store) -> dict[str, tuple[str, ...]]:
    """Every live view of `store` and its key columns."""
    keys = dict(LIVE_KEYS)
    with store.read_internal("SELECT name, spec FROM tb_rollup ORDER BY name") as reader:
        for row in reader.read_all().to_pylist():
            rollup = stored_rollup(row["name"], row["spec"])
            keys[rollup.view] = rollup.key
    return keys
