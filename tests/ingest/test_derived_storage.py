"""The derived columns stored in tb_pageview_event are the function's output, on
both append paths and both backends, and old rows are filled by migrate."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from flightdeck.ingest import fill_derived, ingest, normalise, pipeline
from flightdeck.ingest.derived import DERIVED_SCHEMA, derive
from flightdeck.ingest.events import EVENT_SCHEMA
from flightdeck.views import migrations

from benchmarks.stream import EventStream
from tests.conftest import insert

_READ = f"SELECT event_id, {', '.join(DERIVED_SCHEMA.names)} FROM tb_pageview_event"


def _events() -> pa.Table:
    """Realistic rows (repeats included), and a few that exercise every rule."""
    stream = EventStream(seed=5).take(3000).events.select(EVENT_SCHEMA.names)
    first = stream.column("recorded_at")[0]
    odd = pa.table(
        {
            "event_id": ["odd-1", "odd-2", "odd-3"],
            "session_id": ["x", "x", "y"],
            "page_url": [
                "https://www.example.com/Shop/?utm_source=news%20letter&utm_campaign=c#top",
                "https://example.com/shop/",
                "/a?b=1",
            ],
            "recorded_at": pa.array([first] * 3, stream.schema.field("recorded_at").type),
            "user_id": pa.array([None] * 3, pa.string()),
            "referrer": ["https://www.google.com/", "https://www.example.com/Shop", ""],
            "user_agent": [None, "curl/8.5.0", "garbage"],
            "duration_s": pa.array([None] * 3, pa.float64()),
            "properties": [None, '{"utm_medium": "m"}', '{"utm_source": "p"}'],
        }
    )
    return pa.concat_tables([stream, odd.cast(stream.schema)])


def _expected(events: pa.Table) -> list[dict]:
    """What ingest should store: derive() of each event_id's first send."""
    firsts = _first_sends(events).combine_chunks().to_batches()[0]
    derived = pa.Table.from_batches([derive(normalise(firsts))])
    table = derived.add_column(0, "event_id", firsts.column("event_id"))
    return sorted(table.to_pylist(), key=lambda r: r["event_id"])


def _first_sends(events: pa.Table) -> pa.Table:
    rows = events.append_column("i", pa.array(range(events.num_rows)))
    first = rows.group_by("event_id", use_threads=False).aggregate([("i", "min")])
    first = first.column("i_min")
    return events.take(pc.take(first, pc.sort_indices(first)))


def _stored(store) -> list[dict]:
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(_READ)
        table = cursor.fetch_arrow_table()
    return sorted(table.to_pylist(), key=lambda r: r["event_id"])


@pytest.mark.parametrize("held", [True, False], ids=["held", "staged"])
def test_stored_columns_are_the_function_output(store, backend, held, monkeypatch):
    if backend == "duckdb" and held:
        pytest.skip("DuckDB stages every put")
    if not held:
        monkeypatch.setitem(pipeline._HELD_BYTES, backend, -1)
    took_held = []
    append_held = pipeline.append_held
    monkeypatch.setattr(pipeline, "append_held", lambda *a: took_held.append(1) or append_held(*a))
    events = _events()
    result = ingest(store, events.to_batches(max_chunksize=700))
    assert bool(took_held) == held
    expected = _expected(events)
    assert result.accepted == len(expected) < events.num_rows  # repeats were sent
    assert _stored(store) == expected


def test_migrate_fills_the_rows_stored_before_the_columns(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    migrations.apply(raw_store, [m for m in found if m.phase == "post" or m.name < "017"])
    old = _first_sends(_events())
    insert(raw_store, "tb_pageview_event", old)
    migrations.apply(raw_store, found)
    assert {r["device"] for r in _stored(raw_store)} == {None}

    assert fill_derived(raw_store, chunk_rows=333) == old.num_rows
    assert _stored(raw_store) == _expected(old)
    assert fill_derived(raw_store) == 0  # nothing left: stored rows always have a device
