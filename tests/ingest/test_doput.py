"""DoPut ingest on both backends: exact aggregates, atomic puts, dedupe, clear refusals."""

from __future__ import annotations

import datetime as dt
import json
import random

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from tests.reference import daily

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")


def _put(client, table: pa.Table, max_chunksize: int | None = None) -> dict:
    writer, meta = client.do_put(EVENTS, table.schema)
    for batch in table.to_batches(max_chunksize=max_chunksize):
        writer.write_batch(batch)
    writer.done_writing()
    buf = meta.read()
    writer.close()
    return json.loads(buf.to_pybytes())


def _read(client, view: str) -> pd.DataFrame:
    return client.do_get(flight.Ticket(view.encode())).read_all().to_pandas()


def _seed_batch(n: int = 10) -> pa.Table:
    return pa.table(
        {
            "user_pk": [2] * n,
            "session_id": [f"session-{i % 5}" for i in range(n)],
            "page_url": ["/test-page"] * n,
            "date": ["2024-01-15"] * n,
            "timestamp": [f"2024-01-15T10:0{i}:00Z" for i in range(n)],
        }
    )


def test_seed_shaped_put_gives_exact_aggregates(client):
    assert _put(client, _seed_batch()) == {"accepted": 10, "duplicates": 0}
    daily = _read(client, "va_pageview_aggregate")
    row = daily.iloc[0]
    assert (row.page_url, row.view_count, row.unique_visitors) == ("/test-page", 10, 5)
    assert row.bounce_rate == 0.0 and row.avg_session_duration == 300.0
    hourly = _read(client, "va_pageview_hourly")
    assert hourly[["view_count", "unique_visitors"]].values.tolist() == [[10, 5]]


def test_same_put_twice_counts_once(client):
    _put(client, _seed_batch())
    assert _put(client, _seed_batch()) == {"accepted": 0, "duplicates": 10}
    assert _read(client, "va_pageview_aggregate").view_count.tolist() == [10]
    assert len(_read(client, "va_pageview_event")) == 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_aggregates_equal_full_recomputation_in_any_split_and_order(client, seed):
    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 14, 20, tzinfo=dt.UTC)
    n = 400
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "session_id": [f"s{rng.randrange(40)}" for _ in range(n)],
            "page_url": [f"/p{rng.randrange(6)}" for _ in range(n)],
            "recorded_at": [base + dt.timedelta(minutes=rng.randrange(60 * 30)) for _ in range(n)],
        }
    )
    shuffled = events.sample(frac=1, random_state=seed).reset_index(drop=True)
    start = 0
    while start < n:  # random put sizes, random order: late and cross-page events included
        size = rng.randrange(1, 80)
        _put(
            client, pa.Table.from_pandas(shuffled.iloc[start : start + size], preserve_index=False)
        )
        start += size
    got = _read(client, "va_pageview_aggregate").drop(columns=["computed_at", "version"])
    got = got.sort_values(["page_url", "date"]).reset_index(drop=True)
    got["avg_session_duration"] = got.avg_session_duration.round(6)
    pd.testing.assert_frame_equal(got, daily(events), check_dtype=False)
    hourly = _read(client, "va_pageview_hourly")
    assert hourly.view_count.sum() == n


@pytest.mark.parametrize(
    ("table", "column", "row", "rule"),
    [
        (pa.table({"session_id": ["a"], "timestamp": ["2024-01-15T10:00:00Z"]}), "page_url", None,
         "required-column"),
        (pa.table({"session_id": ["a", None], "page_url": ["/", "/"],
                   "timestamp": ["2024-01-15T10:00:00Z"] * 2}), "session_id", 1, "not-null"),
        (pa.table({"session_id": ["a", "b", "c"], "page_url": ["/"] * 3,
                   "timestamp": ["2024-01-15T10:00:00Z", "2024-01-15T11:00:00Z", "soon"]}),
         "recorded_at", 2, "timestamp"),
        (pa.table({"session_id": ["a", "b"], "page_url": ["/"] * 2,
                   "timestamp": ["2024-01-15T10:00:00Z"] * 2, "duration_s": ["1.5", "long"]}),
         "duration_s", 1, "type"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_column_row_and_rule(client, table, column, row, rule):
    good = _seed_batch(4)
    with pytest.raises(pa.ArrowInvalid) as err:
        _put(client, table)
    message = str(err.value)
    assert f"[{rule}]" in message and repr(column) in message
    if row is not None:
        assert f"row {row}" in message
    assert len(_read(client, "va_pageview_event")) == 0  # nothing from the put was written
    assert _put(client, good)["accepted"] == 4  # and the server keeps serving


def test_a_bad_row_in_a_later_batch_rolls_back_the_whole_put(client):
    good = _seed_batch(10)
    bad = pa.table(
        {"session_id": ["x"], "page_url": [None], "timestamp": ["2024-01-15T10:00:00Z"]},
        schema=pa.schema(
            [("session_id", pa.string()), ("page_url", pa.string()), ("timestamp", pa.string())]
        ),
    )
    writer, meta = client.do_put(EVENTS, bad.schema)
    writer.write_table(good.select(["session_id", "page_url", "timestamp"]))
    with pytest.raises(pa.ArrowInvalid, match=r"row 10"):
        writer.write_table(bad)
        writer.done_writing()
        meta.read()
        writer.close()
    assert len(_read(client, "va_pageview_event")) == 0
    assert len(_read(client, "va_pageview_aggregate")) == 0


def test_unknown_put_path_is_refused(client):
    writer, _ = client.do_put(
        flight.FlightDescriptor.for_path("events", "click"), _seed_batch().schema
    )
    with pytest.raises(pa.ArrowInvalid, match="put-path"):
        writer.write_table(_seed_batch())
        writer.close()


def test_client_abort_rolls_the_put_back(client):
    # pyarrow cannot cancel a DoPut; a loader whose source fails says so instead.
    table = _seed_batch()
    writer, _ = client.do_put(EVENTS, table.schema)
    writer.write_table(table)
    writer.write_metadata(pa.py_buffer(json.dumps({"abort": "disk read error"}).encode()))
    with pytest.raises(pa.ArrowInvalid, match=r"\[aborted\].*disk read error"):
        writer.close()
    assert _read(client, "va_pageview_event").empty
    assert _put(client, table) == {"accepted": 10, "duplicates": 0}


# Found by fuzzing (tests/ingest/test_doput_fuzz.py).


def test_string_view_text_is_accepted_like_string(client):
    # Polars and newer Arrow writers send text as string_view, timestamps included.
    table = pa.table(
        {
            "session_id": pa.array(["s1", "s2"], pa.string_view()),
            "page_url": pa.array(["/a", "/a"], pa.string_view()),
            "timestamp": pa.array(
                ["2024-01-15T10:00:00Z", "2024-01-15 11:00:00"], pa.string_view()
            ),
            "properties": pa.array(['{"a": 1}', None], pa.string_view()),
        }
    )
    assert _put(client, table) == {"accepted": 2, "duplicates": 0}
    assert _read(client, "va_pageview_aggregate").view_count.tolist() == [2]


@pytest.mark.parametrize("text", ["{not json", "NaN"])
def test_properties_that_are_not_json_are_refused_naming_the_row(client, text):
    # Before, PostgreSQL refused these at insert and the client saw an INTERNAL error.
    table = pa.table(
        {
            "session_id": ["a", "b"],
            "page_url": ["/", "/"],
            "timestamp": ["2024-01-15T10:00:00Z"] * 2,
            "properties": ['{"ok": true}', text],
        }
    )
    with pytest.raises(pa.ArrowInvalid) as err:
        _put(client, table)
    message = str(err.value)
    assert "[json]" in message and "'properties'" in message and "row 1" in message
    assert _read(client, "va_pageview_event").empty
