"""DoPut ingest on both backends: exact aggregates, atomic puts, dedupe, clear refusals."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from tests.doput import EVENTS, put_events
from tests.reference import daily


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
    assert put_events(client, _seed_batch()) == {"accepted": 10, "duplicates": 0}
    daily = _read(client, "va_pageview_aggregate")
    row = daily.iloc[0]
    assert (row.page_url, row.view_count, row.unique_visitors) == ("/test-page", 10, 5)
    assert row.bounce_rate == 0.0 and row.avg_session_duration == 300.0
    hourly = _read(client, "va_pageview_hourly")
    assert hourly[["view_count", "unique_visitors"]].values.tolist() == [[10, 5]]


def test_same_put_twice_counts_once(client):
    put_events(client, _seed_batch())
    assert put_events(client, _seed_batch()) == {"accepted": 0, "duplicates": 10}
    assert _read(client, "va_pageview_aggregate").view_count.tolist() == [10]
    assert len(_read(client, "va_pageview_event")) == 10


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
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
        put_events(
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
         "timestamp", 2, "timestamp"),  # the sender's name for recorded_at
        (pa.table({"session_id": ["a", "b"], "page_url": ["/"] * 2,
                   "timestamp": ["2024-01-15T10:00:00Z"] * 2, "duration_s": ["1.5", "long"]}),
         "duration_s", 1, "type"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_column_row_and_rule(client, table, column, row, rule):
    good = _seed_batch(4)
    with pytest.raises(pa.ArrowInvalid) as err:
        put_events(client, table)
    message = str(err.value)
    assert f"[{rule}]" in message and repr(column) in message
    if row is not None:
        assert f"row {row}" in message
    assert len(_read(client, "va_pageview_event")) == 0  # nothing from the put was written
    assert put_events(client, good)["accepted"] == 4  # and the server keeps serving


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
        flight.FlightDescriptor.for_path("events", "click", "extra"), _seed_batch().schema
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
    assert put_events(client, table) == {"accepted": 10, "duplicates": 0}


def _meta(body: dict) -> pa.Buffer:
    return pa.py_buffer(json.dumps(body).encode())


def _load_status(client, load_id: str) -> dict:
    (result,) = client.do_action(flight.Action("load-status", load_id.encode()))
    return json.loads(result.body.to_pybytes())


def test_a_put_records_its_load_id_in_its_commit(client):
    # The load id is how a client interrupted at the last moment learns what happened.
    table = _seed_batch()
    writer, meta = client.do_put(EVENTS, table.schema)
    writer.write_metadata(_meta({"load_id": "load-1"}))
    writer.write_table(table)
    writer.done_writing()
    assert json.loads(meta.read().to_pybytes()) == {"accepted": 10, "duplicates": 0}
    writer.close()
    assert _load_status(client, "load-1") == {
        "load_id": "load-1",
        "committed": True,
        "accepted": 10,
        "duplicates": 0,
    }
    assert _load_status(client, "load-2") == {"load_id": "load-2", "committed": False}
    with pytest.raises(pa.ArrowInvalid, match="load-id"):
        _load_status(client, "no spaces; please")


# The client runs in its own process: it sends everything, then dies while the server
# commits, as a loader does when the user hits Ctrl-C or closes the terminal.
_DYING_LOADER = """
import json, sys, time
import pyarrow as pa, pyarrow.flight as flight
client = flight.connect(sys.argv[1])
table = pa.table({"session_id": ["s"] * 10, "page_url": ["/p"] * 10,
                  "recorded_at": [f"2024-01-15T10:0{i}:00Z" for i in range(10)]})
writer, meta = client.do_put(flight.FlightDescriptor.for_path("events", "pageview"),
                             table.schema)
writer.write_metadata(pa.py_buffer(json.dumps({"load_id": "dying"}).encode()))
writer.write_table(table)
writer.done_writing()
print("sent", flush=True)
meta.read()
"""


def test_a_put_whose_client_goes_before_the_commit_commits_nothing(server, client, slow_commit):
    loader = subprocess.Popen(
        [sys.executable, "-c", _DYING_LOADER, f"grpc://127.0.0.1:{server.port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert loader.stdout.readline() == "sent\n"
        assert slow_commit.reached.wait(30), "the put never reached its commit"
        loader.send_signal(signal.SIGKILL)
        loader.wait(10)
    finally:
        loader.kill()
    slow_commit.set()
    # The server finishes its work, sees the caller gone and rolls back; then it is
    # free for the next writer.
    assert put_events(client, _seed_batch(3)) == {"accepted": 3, "duplicates": 0}
    assert len(_read(client, "va_pageview_event")) == 3
    assert _load_status(client, "dying")["committed"] is False


def _writes_within(client, table: pa.Table, seconds: float) -> dict:
    answer: list[dict] = []
    other = threading.Thread(target=lambda: answer.append(put_events(client, table)), daemon=True)
    other.start()
    other.join(seconds)
    assert answer, f"another writer was still blocked after {seconds} s"
    return answer[0]


@pytest.mark.parametrize("silent", ["mid-put", "after-the-last-batch"])
def test_a_client_that_stops_talking_blocks_no_other_writer(server, client, silent):
    table = _seed_batch()
    with flight.connect(f"grpc://127.0.0.1:{server.port}") as quiet:
        writer, _ = quiet.do_put(EVENTS, table.schema)
        writer.write_metadata(_meta({"load_id": "quiet"}))
        writer.write_table(table.slice(0, 5))
        if silent == "after-the-last-batch":
            writer.write_table(table.slice(5))
            writer.done_writing()  # and never reads the answer
        time.sleep(0.5)
        answer = _writes_within(client, _seed_batch(3), 20)
        assert answer["accepted"] + answer["duplicates"] == 3
        with contextlib.suppress(pa.ArrowException):
            writer.close()


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
    assert put_events(client, table) == {"accepted": 2, "duplicates": 0}
    assert _read(client, "va_pageview_aggregate").view_count.tolist() == [2]


@pytest.mark.parametrize("text", ["{not json", "NaN", "[" * 30_000 + "]" * 30_000])
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
        put_events(client, table)
    message = str(err.value)
    assert "[json]" in message and "'properties'" in message and "row 1" in message
    assert _read(client, "va_pageview_event").empty


# Values that poison clients (issue 14, item 10): a stored year 33658 crashed
# `flightdeck query` and query_pandas; NUL or an overlong key failed PostgreSQL
# with its own error, and only there. Each is refused before anything is written.

_LIMITS = {  # bytes of UTF-8, as the README documents them
    "event_id": 256,
    "session_id": 256,
    "user_id": 256,
    "page_url": 2048,
    "referrer": 2048,
    "user_agent": 1024,
    "properties": 65_536,
}
_GOOD = {
    "event_id": "e",
    "session_id": "s",
    "user_id": "u",
    "page_url": "/p",
    "referrer": "https://example.com/",
    "user_agent": "Mozilla/5.0",
    "properties": '{"a": "b"}',
}


def _epoch(unit: str, year: int) -> int:
    """`year`-01-01 in `unit` since 1970, past what Python's datetime can hold too."""

    def days_before(y: int) -> int:  # proleptic Gregorian, from 0001-01-01
        return 365 * (y - 1) + (y - 1) // 4 - (y - 1) // 100 + (y - 1) // 400

    per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400 * 10**9}[unit]
    return (days_before(year) - days_before(1970)) * per_day


def _one_bad(column: str, good, bad, type_: pa.DataType | None = None) -> pa.Table:
    """Three events; the third carries `bad` in `column`."""
    base = {
        "session_id": ["a", "b", "c"],
        "page_url": ["/"] * 3,
        "recorded_at": ["2024-01-15T10:00:00Z"] * 3,
    }
    base[column] = pa.array([good, good, bad], type_)
    return pa.table(base)


def _bad_times() -> list:
    cases = [
        ("iso-2300", pa.string(), "2024-01-15T10:00:00Z", "2300-01-01T00:00:00Z"),
        ("iso-1969", pa.string(), "2024-01-15T10:00:00Z", "1969-12-31T23:59:59Z"),
        ("iso-year-1", pa.string(), "2024-01-15 10:00:00", "0001-01-01 00:00:00"),
        ("iso-date-2262", pa.string(), "2024-01-15", "2262-01-01"),
        ("iso-offset", pa.string(), "2024-01-15T10:00:00Z", "2261-12-31T23:30:00-01:00"),
        ("date32", pa.date32(), dt.date(2024, 1, 15), dt.date(9999, 12, 31)),
    ]
    for unit in ("s", "ms", "us", "ns"):
        for tz in (None, "UTC", "+05:00", "America/New_York"):
            name = f"{unit}-{tz or 'naive'}"
            type_ = pa.timestamp(unit, tz)
            good = _epoch(unit, 2024)
            late = _epoch(unit, 2262) if unit == "ns" else _epoch(unit, 33658)
            cases.append((f"{name}-late", type_, good, late))
            # One microsecond before the range: a nanosecond less would be refused as lossy.
            early = _epoch(unit, 1970) - (1000 if unit == "ns" else 1)
            cases.append((f"{name}-early", type_, good, early))
    cases.append(("ms-year-287168", pa.timestamp("ms", "UTC"), 0, _epoch("ms", 287168)))
    return cases


@pytest.mark.slow  # a long exactness run: make test runs it
def test_a_timestamp_outside_the_range_is_refused_naming_it(client):
    # One server for every case: a fresh store per case cost a minute of the suite.
    for case, type_, good, bad in _bad_times():
        table = _one_bad("recorded_at", good, bad, type_)
        _assert_refused(client, table, "recorded_at", "timestamp", case)


def _assert_refused(client, table: pa.Table, column: str, rule: str, case: str = "") -> str:
    """`table` is refused after a good batch: the row counts across the put (2 + 2)."""
    stored = len(_read(client, "va_pageview_event"))
    writer, meta = client.do_put(EVENTS, table.schema)
    with pytest.raises(pa.ArrowInvalid) as err:
        writer.write_batch(table.slice(0, 2).to_batches()[0])
        writer.write_batch(table.to_batches()[0])
        writer.done_writing()
        meta.read()
        writer.close()
    message = str(err.value)
    assert f"[{rule}]" in message and repr(column) in message and "row 4" in message, (
        case,
        message,
    )
    assert "INTERNAL" not in message, case
    assert len(_read(client, "va_pageview_event")) == stored, case  # nothing of the put
    good = _seed_batch(2).append_column("event_id", pa.array([f"{case}-{i}" for i in range(2)]))
    assert put_events(client, good)["accepted"] == 2, case  # and the server keeps serving
    return message


def test_the_timestamp_refusal_names_the_accepted_range(client):
    message = _assert_refused(
        client, _one_bad("recorded_at", "2024-01-15", "2300-01-01"), "recorded_at", "timestamp"
    )
    assert "1970-01-01T00:00:00Z" in message and "2262-01-01T00:00:00Z" in message
    assert "2300-01-01" in message  # the value sent


def test_a_duration_that_is_not_finite_or_negative_is_refused(client):
    bad_values = [(float("inf"), "finite"), (float("-inf"), "finite"),
                  (float("nan"), "finite"), (-1.5, "non-negative")]  # fmt: skip
    for type_ in [pa.float64(), pa.float32(), pa.string()]:
        for bad, rule in bad_values:
            good = "1.5" if type_ == pa.string() else 1.5
            sent = str(bad) if type_ == pa.string() else bad
            table = _one_bad("duration_s", good, sent, type_)
            _assert_refused(client, table, "duration_s", rule, f"{type_} {bad}")


def test_nul_in_a_text_field_is_refused(client):
    for column, good in _GOOD.items():
        bad = '{"a": "b\x00"}' if column == "properties" else good + "\x00tail"
        _assert_refused(client, _one_bad(column, good, bad), column, "text", column)
    escaped = _one_bad("properties", "{}", '{"a": "\\u0000"}')  # jsonb refuses it
    _assert_refused(client, escaped, "properties", "text", "escaped")
    lone = _one_bad("properties", "{}", '{"a": "\\ud800"}')  # DuckDB refuses it, mid-commit
    _assert_refused(client, lone, "properties", "text", "lone surrogate")


def test_a_text_field_over_its_length_limit_is_refused(client):
    for column, limit in _LIMITS.items():
        # One byte over, in half as many characters: the limit counts bytes.
        bad = '{"a": "' + "x" * limit + '"}' if column == "properties" else "/" + "é" * (limit // 2)
        table = _one_bad(column, _GOOD[column], bad)
        message = _assert_refused(client, table, column, "length", column)
        assert f"{limit:,} bytes" in message


def test_text_that_is_not_utf8_is_refused(client):
    # Arrow does not check the UTF-8 of a string array it receives; PostgreSQL
    # refused it with its own error and DuckDB stored what clients then failed to decode.
    good = pa.array(["a", "b", "c"])
    offsets, data = good.buffers()[1], pa.py_buffer(b"ab\xff")
    bad = pa.Array.from_buffers(pa.string(), 3, [None, offsets, data])
    table = pa.table(
        {"session_id": bad, "page_url": ["/"] * 3, "recorded_at": ["2024-01-15T10:00:00Z"] * 3}
    )
    _assert_refused(client, table, "session_id", "text")


def _random_text(rng: random.Random, size: int) -> str:
    """Text that does not compress: PostgreSQL's index limit counts it in full."""
    alphabet = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\']  # JSON as is
    return "".join(rng.choice(alphabet) for _ in range(size))


def test_values_at_the_limits_are_accepted_and_read_back(client):
    rng = random.Random(14)
    values = {name: "/" + _random_text(rng, limit - 1) for name, limit in _LIMITS.items()}
    values["properties"] = json.dumps({"k": _random_text(rng, _LIMITS["properties"] - 12)})
    table = pa.table(
        {
            **{name: [value, "x"] for name, value in values.items() if name != "event_id"},
            "properties": [values["properties"], "{}"],
            "recorded_at": pa.array(
                [_epoch("us", 1970), _epoch("us", 2262) - 1], pa.timestamp("us", "UTC")
            ),
            "duration_s": [0.0, -0.0],
        }
    )  # no event_id: the one built from the content is longest
    assert put_events(client, table) == {"accepted": 2, "duplicates": 0}
    events = client.do_get(flight.Ticket(b"va_pageview_event")).read_all()
    times = sorted(events.column("recorded_at").to_pylist())
    assert [t.isoformat() for t in times] == [
        "1970-01-01T00:00:00+00:00",
        "2261-12-31T23:59:59.999999+00:00",
    ]
    assert sorted(events.to_pandas().recorded_at.dt.year) == [1970, 2261]
    (long,) = [row for row in events.to_pylist() if row["session_id"] != "x"]
    assert {name: long[name] for name in values if name not in ("event_id", "properties")} == {
        name: value for name, value in values.items() if name not in ("event_id", "properties")
    }
    assert json.loads(long["properties"]) == json.loads(values["properties"])


@pytest.mark.parametrize(
    ("column", "bad"),
    [("page_url", ""), ("page_url", "  \t"), ("session_id", ""), ("session_id", " ")],
)
def test_empty_page_urls_and_session_ids_are_refused(client, column, bad):
    # Issue 15, item 5: the same rule as over NATS (tests/ingest/test_nats.py).
    _assert_refused(client, _one_bad(column, "/x", bad), column, "not-empty")


@pytest.mark.parametrize(
    ("column", "values", "type_"),
    [
        ("session_id", [1.5, 2.0, 3.0], pa.float64()),
        ("session_id", [True, False, True], pa.bool_()),
        ("user_id", [1.5, 2.0, 3.0], pa.float32()),
    ],
)
def test_ids_that_are_neither_text_nor_integers_are_refused(client, column, values, type_):
    stored = len(_read(client, "va_pageview_event"))
    with pytest.raises(pa.ArrowInvalid) as err:
        put_events(client, _one_bad(column, values[0], values[2], type_))
    message = str(err.value)
    assert "[type]" in message and repr(column) in message and "row 0" in message, message
    assert len(_read(client, "va_pageview_event")) == stored


def test_integer_session_ids_are_stored_as_their_digits(client):
    table = _one_bad("session_id", 41, 42, pa.int64())
    table = table.append_column("event_id", pa.array(["int-a", "int-b", "int-c"]))
    assert put_events(client, table)["accepted"] == 3
    stored = set(_read(client, "va_pageview_event")["session_id"])
    assert {"41", "42"} <= stored
