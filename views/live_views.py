"""The live views: those whose rows carry `version` and are published on change.

Each maps to the columns that identify a row: an update to the same key replaces
the row sent before. The publisher (ingest) sends these views' changed rows; the
live hub (flight_server) serves subscriptions to them and filters on their keys.
"""

from __future__ import annotations

__all__ = ["LIVE_KEYS"]

LIVE_KEYS: dict[str, tuple[str, ...]] = {
    "va_pageview_aggregate": ("page_url", "date"),
    "va_pageview_hourly": ("page_url", "hour"),
}
