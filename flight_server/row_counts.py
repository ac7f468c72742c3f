"""FlightInfo's `total_records`: the exact row count, where it is cheap to know.

Cheap means a whole view over a rollup table (the two page-view aggregates and
every declared rollup: the live views): one row per bucket and dimension, kept
small by design, and the view is the table with no filter, so `count(*)` reads
the table and nothing else. Statistics (pg_class.reltuples, DuckDB's estimates)
would cost less but are estimates, and a client may size its buffers or show
"N rows" from this number. Anything else, an SQL query or a raw-event view
that may hold billions of rows, answers -1 (unknown), as Flight allows.

The count is taken at GetFlightInfo time; a put that commits before the DoGet
can change it.
"""

from __future__ import annotations

from flightdeck.views import Store
from flightdeck.views.live_views import live_keys
from flightdeck.views.query import Query

__all__ = ["UNKNOWN", "total_records"]

UNKNOWN = -1


def total_records(store: Store, query: Query) -> int:
    """The number of rows `query` answers now, or UNKNOWN when counting is not cheap."""
    if query.view is None or query.parameters is not None:
        return UNKNOWN
    if query.view not in live_keys(store):
        return UNKNOWN
    # The name is one of the store's own views (live_keys), so quoting it is safe.
    with store.read_internal(f'SELECT count(*) AS n FROM "{query.view}"') as reader:
        return int(reader.read_all().column("n")[0].as_py())
