"""An id resent with another recorded_at than the stored one is still a duplicate.

DuckDB's append probes stored ids only among the events recorded within the
put's time range (ingest/append.py) and relies on the primary key for the rest:
this is that rest. Both backends, so the rule is the product's, not DuckDB's.
"""

from __future__ import annotations

import pyarrow as pa
from flightdeck.ingest import InvalidBatch, ingest, reaggregate

from tests.ingest.test_store_refusal import TAKEN, _event, _put_table, refusing  # noqa: F401


def _row(i: int, at: str, **values: object) -> dict:
    return {"session_id": f"s{i % 3}", "page_url": f"/p{i % 2}", "recorded_at": at,
            "event_id": f"e{i}", **values}  # fmt: skip


def _views(store) -> dict[str, int]:
    with store.read("SELECT page_url, sum(view_count) AS n FROM va_pageview_aggregate "
                    "GROUP BY page_url") as reader:  # fmt: skip
        return {r["page_url"]: r["n"] for r in reader.read_all().to_pylist()}


def test_a_resend_recorded_at_another_time_is_a_duplicate(store):
    first = [_row(i, "2024-01-10T08:00:00Z") for i in range(4)]
    assert ingest(store, [pa.RecordBatch.from_pylist(first)]).accepted == 4
    # A day later: e1 and e3 again, claiming other times (and pages) than the stored ones.
    later = [_row(i, "2024-01-11T09:00:00Z") for i in range(4, 8)]
    later[1:1] = [_row(1, "2024-01-11T09:30:00Z", page_url="/moved")]
    later.append(_row(3, "2024-01-12T00:00:00Z"))
    result = ingest(store, [pa.RecordBatch.from_pylist(later)])
    assert (result.accepted, result.duplicates) == (4, 2)
    assert _views(store) == {"/p0": 4, "/p1": 4}  # the first sends' pages, each once
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_refused_row_is_named_when_a_resend_is_recorded_at_another_time(refusing):  # noqa: F811
    # e0 was stored at 10:00 (the fixture); resent here at another time, then a
    # refused row later in the put: the first refused row is still the one named.
    later = {"recorded_at": "2024-01-16T10:00:00Z"}  # the whole put, e0's resend included
    table = _put_table(6, {i: later for i in range(1, 7)} | {5: {"referrer": TAKEN, **later}})
    resend = pa.Table.from_pylist([_event(0, **later)])
    put = pa.concat_tables([resend.cast(table.schema), table])
    try:
        ingest(refusing, put.to_batches(max_chunksize=3))
    except InvalidBatch as refused:
        assert (refused.column, refused.row, refused.rule) == ("referrer", 5, "store")
    else:
        raise AssertionError("the put was taken")
