"""Fuzzing DoPut: a random put is ingested exactly or refused cleanly, and the server keeps serving.

Each example resets the store, then sends 1-3 puts to ["events", "pageview"]
on the real in-process server (both backends). A put is 0-3 batches of 0 to a
few thousand rows; the schema is drawn per put (an IPC stream has one schema, so
the schema differs between the puts of an example, not within one): required
columns under their names or aliases, optional and extra columns, each column in
a random Arrow encoding (string, large_string, string_view, dictionary, binary,
int, timestamps of every unit with and without a zone, dates, ISO text with and
without a zone, floats (NaN and inf only in ignored extras), decimals, nested
list/struct extras), nulls, empty strings and strings at their length limits.
About a third of the puts carry one defect (a missing or renamed required column,
a null required value, a nested or non-UTF-8 value, a bad timestamp or number,
properties that are not JSON text, a time outside the accepted range, a NaN or
negative duration, NUL or an overlong key).

The test knows the logical events behind the columns, so it knows the outcome:
a clean put returns exactly the accepted/duplicates counts of its deduplicated
rows (first sent wins; against earlier puts too), and the views then equal
tests/reference.py recomputed from every event kept; a defective put fails with
pyarrow.ArrowInvalid (INVALID_ARGUMENT, never INTERNAL) naming the column and
rule, and nothing of it is committed. EXAMPLES examples per backend, about 35 s
for both.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import random
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from tests import reference
from tests.budget import examples

EXAMPLES = examples(50)  # per backend; a quarter under a bare pytest
EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
TABLES = [
    "tb_pageview_event",
    "tb_pageview_aggregate",
    "tb_pageview_hourly",
    "tb_session_day",
    "tb_aggregate_outbox",
    "tb_expired_day",
]
DAY0 = dt.datetime(2024, 1, 14, tzinfo=dt.UTC)
# The longest are at their limits (256 and 2,048 bytes of UTF-8).
SESSIONS = ["s0", "s1", "session-3", "s\u00e9\u2603", "s" * 256]
PAGES = ["/a", "/b", "/products?id=1", "/\U0001f600", "/" + "x" * 2047]
FAR = dt.datetime(2262, 1, 1, tzinfo=dt.UTC)  # the first time past the accepted range
USERS = [None, "u0", "2"]


class Event(NamedTuple):
    session_id: str
    page_url: str
    recorded_at: dt.datetime
    user_id: str | None
    event_id: str | None

    def key(self) -> str | tuple:
        if self.event_id is not None:
            return self.event_id
        return (self.session_id, self.page_url, self.recorded_at, self.user_id)


class Shape(NamedTuple):
    """How one put encodes its events: a choice per column, and at most one defect."""

    session: str
    page: str
    time: str
    time_name: str  # recorded_at or timestamp
    user: str
    event_id: bool
    optional: tuple[str, ...]
    extras: tuple[str, ...]
    defect: str | None


class Put(NamedTuple):
    shape: Shape
    batches: list[list[Event]]


STRING_ENCODINGS = ["string", "large_string", "string_view", "dictionary", "binary"]
TIME_ENCODINGS = [
    "ts_us_utc", "ts_us_naive", "ts_ns_utc", "ts_ms_utc", "ts_s_utc", "ts_us_plus5",
    "ts_us_new_york", "iso_z", "iso_offset", "iso_naive", "iso_space", "large_iso", "view_iso",
    "dictionary_iso", "date32",
]  # fmt: skip
OPTIONAL = ["referrer", "user_agent", "duration_float", "duration_int", "duration_decimal",
            "duration_text", "properties"]  # fmt: skip
EXTRAS = ["date", "list", "struct", "binary", "bad_utf8", "float", "decimal", "bool", "ts_ns",
          "dictionary", "large_binary", "null"]  # fmt: skip
# (defect, the column the refusal must name, the rule)
DEFECTS = {
    "missing_session": ("session_id", "required-column"),
    "missing_page": ("page_url", "required-column"),
    "missing_time": ("recorded_at", "required-column"),
    "renamed_page": ("page_url", "required-column"),
    "null_session": ("session_id", "not-null"),
    "null_page": ("page_url", "not-null"),
    "null_time": ("recorded_at", "not-null"),
    "list_page": ("page_url", "type"),
    "struct_session": ("session_id", "type"),
    "bad_utf8_session": ("session_id", "type"),
    "bad_time_text": ("recorded_at", "timestamp"),
    "int_time": ("recorded_at", "type"),
    "float_time": ("recorded_at", "type"),
    "bad_duration": ("duration_s", "type"),
    "int_properties": ("properties", "type"),
    "bad_json": ("properties", "json"),
    "far_time": ("recorded_at", "timestamp"),
    "nan_duration": ("duration_s", "finite"),
    "negative_duration": ("duration_s", "non-negative"),
    "nul_page": ("page_url", "text"),
    "long_session": ("session_id", "length"),
    "blank_session": ("session_id", "not-empty"),
    "blank_page": ("page_url", "not-empty"),
    "float_session": ("session_id", "type"),
}
VALUE_DEFECTS = {"null_session", "null_page", "null_time", "bad_utf8_session", "bad_time_text",
                 "bad_duration", "bad_json", "far_time", "nan_duration", "negative_duration",
                 "nul_page", "long_session", "blank_session", "blank_page"}  # fmt: skip


@st.composite
def shapes(draw) -> Shape:
    time = draw(st.sampled_from(TIME_ENCODINGS))
    defect = draw(st.one_of(st.none(), st.none(), st.sampled_from(sorted(DEFECTS))))
    return Shape(
        session=draw(st.sampled_from(STRING_ENCODINGS)),
        page=draw(st.sampled_from(STRING_ENCODINGS)),
        time=time,
        time_name=draw(st.sampled_from(["recorded_at", "timestamp"])),
        user=draw(st.sampled_from(["none", "user_id", "user_pk_int", "user_pk_text"])),
        event_id=draw(st.booleans()),
        optional=tuple(draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=4))),
        extras=tuple(draw(st.lists(st.sampled_from(EXTRAS), unique=True, max_size=4))),
        defect=defect,
    )


def _time_for(shape: Shape, rng: random.Random) -> dt.datetime:
    """A time the encoding can carry exactly (whole seconds for `s`, midnight for dates)."""
    day = DAY0 + dt.timedelta(days=rng.randrange(3))
    if shape.time == "date32":
        return day
    offset = dt.timedelta(seconds=rng.choice([0, 1, 36_000, 37_799, 86_399]))
    if shape.time == "ts_s_utc":
        return day + offset
    if shape.time == "ts_ms_utc":
        return day + offset + dt.timedelta(milliseconds=rng.randrange(1000))
    return day + offset + dt.timedelta(microseconds=rng.choice([0, 1, 999_999, 123_456]))


@st.composite
def puts(draw) -> list[Put]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        shape = draw(shapes())
        rng = random.Random(draw(st.integers(0, 2**32)))
        sizes = draw(
            st.lists(
                st.one_of(st.integers(0, 12), st.sampled_from([0, 1, 2047, 2048, 2049, 3000])),
                max_size=3,
            )
        )
        if sum(sizes) > 3_000:
            sizes = [min(s, 40) for s in sizes]
        pool = [
            Event(
                rng.choice(SESSIONS[:3] if rng.random() < 0.9 else SESSIONS),
                rng.choice(PAGES[:3] if rng.random() < 0.95 else PAGES),
                _time_for(shape, rng),
                None if shape.user == "none" else rng.choice(USERS),
                rng.choice([None, "e0", "e1", "e2"]) if shape.event_id else None,
            )
            for _ in range(40)
        ]
        if shape.user == "user_pk_int":
            pool = [e._replace(user_id=None if e.user_id != "2" else "2") for e in pool]
        out.append(Put(shape, [[rng.choice(pool) for _ in range(size)] for size in sizes]))
    return out


def _strings(values: list, encoding: str) -> pa.Array:
    if encoding == "binary":
        return pa.array([None if v is None else v.encode() for v in values], pa.binary())
    if encoding == "dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, getattr(pa, encoding)())


def _times(values: list[dt.datetime | None], encoding: str) -> pa.Array:
    if encoding.startswith("ts_"):
        _, unit, zone = encoding.split("_", 2)
        tz = {"utc": "UTC", "naive": None, "plus5": "+05:00", "new_york": "America/New_York"}
        array = pa.array(values, pa.timestamp("us", "UTC")).cast(pa.timestamp(unit, "UTC"))
        if tz[zone] is None:
            return array.cast(pa.timestamp(unit))
        return array.cast(pa.timestamp(unit, tz[zone]))
    if encoding == "date32":
        return pa.array([None if v is None else v.date() for v in values], pa.date32())

    def iso(value: dt.datetime | None, style: str) -> str | None:
        if value is None:
            return None
        if style == "iso_offset":
            return value.astimezone(dt.timezone(dt.timedelta(hours=-3, minutes=-30))).isoformat()
        naive = value.replace(tzinfo=None).isoformat()
        if style == "iso_naive":
            return naive
        if style == "iso_space":
            return naive.replace("T", " ")
        return naive + "Z"

    style = "iso_z" if encoding in ("large_iso", "view_iso", "dictionary_iso") else encoding
    text = [iso(v, style) for v in values]
    if encoding == "large_iso":
        return pa.array(text, pa.large_string())
    if encoding == "view_iso":
        return pa.array(text, pa.string_view())
    if encoding == "dictionary_iso":
        return pa.array(text, pa.string()).dictionary_encode()
    return pa.array(text, pa.string())


def _extra(name: str, n: int, rng: random.Random) -> pa.Array:
    if name == "date":
        return pa.array(["2024-01-15"] * n, pa.string())
    if name == "list":
        return pa.array(
            [[rng.randrange(9)] * rng.randrange(3) for _ in range(n)], pa.list_(pa.int64())
        )
    if name == "struct":
        return pa.array(
            [{"a": i, "b": None} for i in range(n)],
            pa.struct([("a", pa.int64()), ("b", pa.string())]),
        )
    if name == "binary":
        return pa.array([bytes([i % 256]) for i in range(n)], pa.binary())
    if name == "bad_utf8":
        return pa.array([b"\xff\xfe"] * n, pa.binary())
    if name == "float":
        values = [rng.choice([float("nan"), float("inf"), -0.0, None]) for _ in range(n)]
        return pa.array(values, pa.float64())
    if name == "decimal":
        return pa.array([decimal.Decimal("1.25")] * n, pa.decimal128(10, 2))
    if name == "bool":
        return pa.array([i % 2 == 0 for i in range(n)], pa.bool_())
    if name == "ts_ns":
        return pa.array([i for i in range(n)], pa.timestamp("ns"))
    if name == "dictionary":
        return pa.array(["x", None] * (n // 2) + ["x"] * (n % 2), pa.string()).dictionary_encode()
    if name == "large_binary":
        return pa.array([b"\x00" * 3] * n, pa.large_binary())
    return pa.nulls(n)


def _batch(shape: Shape, events: list[Event], rng: random.Random) -> pa.RecordBatch:
    n = len(events)
    defect = shape.defect
    row = rng.randrange(n) if n else 0  # where a value defect goes

    def spoil(values: list, bad) -> list:
        values = list(values)
        if n and defect in VALUE_DEFECTS:
            values[row] = bad
        return values

    columns: dict[str, pa.Array] = {}
    sessions = [e.session_id for e in events]
    if defect == "null_session":
        columns["session_id"] = _strings(spoil(sessions, None), shape.session)
    elif defect == "struct_session":
        columns["session_id"] = pa.array(
            [{"id": s} for s in sessions], pa.struct([("id", pa.string())])
        )
    elif defect == "long_session":
        columns["session_id"] = _strings(spoil(sessions, "s" * 257), shape.session)
    elif defect == "blank_session":
        columns["session_id"] = _strings(spoil(sessions, " "), shape.session)
    elif defect == "float_session":
        columns["session_id"] = pa.array([float(i) for i in range(len(sessions))], pa.float64())
    elif defect == "bad_utf8_session":
        raw = spoil([s.encode() for s in sessions], b"\xc3\x28")
        columns["session_id"] = pa.array(raw, pa.binary())
    elif defect != "missing_session":
        columns["session_id"] = _strings(sessions, shape.session)

    pages = [e.page_url for e in events]
    if defect == "null_page":
        columns["page_url"] = _strings(spoil(pages, None), shape.page)
    elif defect == "list_page":
        columns["page_url"] = pa.array([[p] for p in pages], pa.list_(pa.string()))
    elif defect == "blank_page":
        columns["page_url"] = _strings(spoil(pages, ""), shape.page)
    elif defect == "nul_page":
        columns["page_url"] = _strings(spoil(pages, "/a\x00"), shape.page)
    elif defect == "renamed_page":
        columns["page"] = _strings(pages, shape.page)
    elif defect != "missing_page":
        columns["page_url"] = _strings(pages, shape.page)

    times = [e.recorded_at for e in events]
    if defect == "null_time":
        columns[shape.time_name] = _times(spoil(times, None), shape.time)
    elif defect == "far_time":
        columns[shape.time_name] = _times(spoil(times, FAR), shape.time)
    elif defect == "bad_time_text":
        text = [t.isoformat() for t in times]
        columns[shape.time_name] = pa.array(spoil(text, "soon"), pa.string())
    elif defect == "int_time":
        columns[shape.time_name] = pa.array([int(t.timestamp()) for t in times], pa.int64())
    elif defect == "float_time":
        columns[shape.time_name] = pa.array([t.timestamp() for t in times], pa.float64())
    elif defect != "missing_time":
        columns[shape.time_name] = _times(times, shape.time)

    users = [e.user_id for e in events]
    if shape.user == "user_id":
        columns["user_id"] = pa.array(users, pa.string())
    elif shape.user == "user_pk_text":
        columns["user_pk"] = pa.array(users, pa.large_string())
    elif shape.user == "user_pk_int":
        columns["user_pk"] = pa.array([None if u is None else int(u) for u in users], pa.int64())
    if shape.event_id:
        columns["event_id"] = pa.array([e.event_id for e in events], pa.string())

    for name in shape.optional:
        if name in ("referrer", "user_agent"):
            values = [rng.choice([None, "", "Mozilla/5.0"]) for _ in events]
            columns[name] = pa.array(values, pa.string())
        elif name == "duration_float":
            values = [rng.choice([None, 1.5, 0.0, -0.0, 1e300]) for _ in events]
            columns["duration_s"] = pa.array(values, pa.float64())
        elif name == "duration_int":
            columns["duration_s"] = pa.array([rng.randrange(100) for _ in events], pa.int32())
        elif name == "duration_decimal":
            columns["duration_s"] = pa.array([decimal.Decimal("2.50")] * n, pa.decimal128(6, 2))
        elif name == "duration_text":
            columns["duration_s"] = pa.array(["1.5"] * n, pa.string())
        elif name == "properties":
            values = [rng.choice([None, '{"a": 1}', "{}", '{"k": ["\u00e9"]}']) for _ in events]
            columns["properties"] = pa.array(values, pa.string())
    if defect == "bad_duration":
        columns["duration_s"] = pa.array(spoil(["1.5"] * n, "long"), pa.string())
    elif defect in ("nan_duration", "negative_duration"):
        bad = float("nan") if defect == "nan_duration" else -2.0
        columns["duration_s"] = pa.array(spoil([1.5] * n, bad), pa.float64())
    elif defect == "int_properties":
        columns["properties"] = pa.array(list(range(n)), pa.int64())
    elif defect == "bad_json":
        columns["properties"] = pa.array(spoil(['{"a": 1}'] * n, "{not json"), pa.string())
    for name in shape.extras:
        columns[f"extra_{name}" if name != "date" else "date"] = _extra(name, n, rng)
    return pa.RecordBatch.from_pydict(columns)


def _send(client: flight.FlightClient, batches: list[pa.RecordBatch], schema: pa.Schema) -> dict:
    # One IPC stream has one schema; a batch that differs fails in the client.
    assert all(batch.schema == schema for batch in batches), [b.schema for b in batches]
    writer, meta = client.do_put(EVENTS, schema)
    try:
        for batch in batches:
            writer.write_batch(batch)
        writer.done_writing()
        buf = meta.read()
    finally:
        # Always end the stream: a put left open keeps the server waiting for more.
        writer.close()
    return json.loads(buf.to_pybytes())


def _reset(store) -> None:
    with store.write() as conn, conn.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {table}")
        conn.commit()


def _view(client: flight.FlightClient, view: str) -> pd.DataFrame:
    return client.do_get(flight.Ticket(view.encode())).read_all().to_pandas()


def _refused(put: Put) -> bool:
    """Whether the put must be refused: a defect that shows in the rows it has."""
    if put.shape.defect is None:
        return False
    if put.shape.defect in VALUE_DEFECTS:
        return any(put.batches)  # a row to spoil
    return bool(put.batches)  # a schema defect shows in any batch, even an empty one


def _check_views(client: flight.FlightClient, kept: dict) -> None:
    events = _view(client, "va_pageview_event")
    assert len(events) == len(kept)
    daily = _view(client, "va_pageview_aggregate")
    hourly = _view(client, "va_pageview_hourly")
    if not kept:
        assert daily.empty and hourly.empty
        return
    truth = pd.DataFrame(
        {
            "session_id": [e.session_id for e in kept.values()],
            "page_url": [e.page_url for e in kept.values()],
            "recorded_at": pd.to_datetime([e.recorded_at for e in kept.values()], utc=True),
        }
    )
    reference.assert_matches(daily, hourly, truth, note)


SETTINGS = {
    "max_examples": EXAMPLES,
    "deadline": None,
    "database": None,
    "derandomize": False,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}

_PLAIN = Shape("string", "string", "iso_z", "timestamp", "user_pk_int", False, (), (), None)
_NOON = DAY0 + dt.timedelta(hours=12)


@pytest.mark.slow  # a long exactness run: make test runs it
def test_random_puts_are_exact_or_refused_cleanly(store, client) -> None:
    @settings(**SETTINGS)
    @given(example_puts=puts())
    @example(example_puts=[Put(_PLAIN, [])])  # no batches at all
    @example(
        example_puts=[
            Put(_PLAIN._replace(time="view_iso", session="string_view"),
                [[Event("s0", "/a", _NOON, "2", None)] * 2]),
            Put(_PLAIN._replace(defect="bad_json", optional=("properties",)),
                [[Event("s1", "/b", _NOON, None, None)]]),
            Put(_PLAIN._replace(time="ts_ns_utc", extras=("list", "struct", "bad_utf8")),
                [[Event("s1", "/b", _NOON, "2", None)] * 3]),
        ]
    )  # fmt: skip
    def run(example_puts: list[Put]) -> None:
        _reset(store)
        kept: dict[str | tuple, Event] = {}
        rng = random.Random(0)
        for number, put in enumerate(example_puts):
            batches = [_batch(put.shape, rows, rng) for rows in put.batches]
            schema = batches[0].schema if batches else _batch(put.shape, [], rng).schema
            note(f"put {number}: {put.shape}, rows {[len(b) for b in put.batches]}")
            if _refused(put):
                column, rule = DEFECTS[put.shape.defect]
                if column == "recorded_at" and rule != "required-column":
                    column = put.shape.time_name  # errors use the sender's name
                try:
                    _send(client, batches, schema)
                except pa.ArrowInvalid as err:
                    message = str(err)
                    assert repr(column) in message and f"[{rule}]" in message, message
                else:
                    raise AssertionError(f"put {number} with {put.shape.defect} was accepted")
            else:
                new = 0
                for event in (e for rows in put.batches for e in rows):
                    if event.key() not in kept:
                        kept[event.key()] = event
                        new += 1
                sent = sum(map(len, put.batches))
                assert _send(client, batches, schema) == {
                    "accepted": new,
                    "duplicates": sent - new,
                }, f"put {number}"
            _check_views(client, kept)  # exact, nothing of a refused put, still serving

    run()
