"""Errors as users see them: the server's sentence, the right class, nothing half-loaded."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck import (
    Error,
    LoadError,
    NotFoundError,
    QueryError,
    ServerError,
    ServerUnavailable,
    connect,
)
from flightdeck.error_detail import TRAILER, ErrorDetail, decode
from flightdeck.errors import LoadInterrupted, clean_message, from_arrow

from tests.clients.conftest import pageviews

NOISE = ("Detail:", "Traceback", "gRPC client debug", "Client context", "pyarrow")

# Messages pyarrow 26 produced from a flightdeck server (shortened tracebacks).
_TRACEBACK = (
    ". Detail: Python exception: Traceback (most recent call last):\n"
    '  File "pyarrow/_flight.pyx", line 2222, in pyarrow._flight._get_flight_info\n'
    '  File "/work/main/flight_server/errors.py", line 61, in flight_errors\n'
    "    raise to_flight_error(exc) from None\n"
    "pyarrow.lib.ArrowInvalid: {sentence}\n"
)
REAL = {
    "guard": "query refused [va-views-only]: table 'tb_pageview_event' is not a va_ view",
    "duckdb": (
        'duckdb error: Binder Error: Referenced column "nope" not found in FROM clause!\n'
        'Candidate bindings: "page_url"\n\nLINE 1: SELECT nope FROM va_pageview_event\n'
        "               ^^^^"
    ),
    "postgresql": (
        'postgresql error: NOT_FOUND: Failed to prepare query: ERROR:  column "nope" does not '
        "exist\nLINE 1: SELECT nope FROM va_pageview_event\n               ^\n\n"
        "Query was: SELECT nope FROM va_pageview_event. SQLSTATE: 42703"
    ),
}


@pytest.mark.parametrize("sentence", REAL.values(), ids=REAL.keys())
def test_clean_message_keeps_only_the_servers_sentence(sentence):
    assert clean_message(sentence + _TRACEBACK.format(sentence=sentence)) == sentence
    # DoGet and DoPut refusals add the gRPC status and the client's context as well.
    doubled = (
        f"{sentence}{_TRACEBACK.format(sentence=sentence)}. gRPC client debug context: "
        f"INVALID_ARGUMENT:{sentence}{_TRACEBACK.format(sentence=sentence)}. "
        "Client context: IOError: Server never sent a data message. Detail: Internal"
    )
    assert clean_message(doubled) == sentence


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("bad thing. Detail: Python exception: ArrowInvalid", "bad thing"),
        (
            "nats error: live updates need NATS; none is connected. Detail: Unavailable. "
            "gRPC client debug context: UNAVAILABLE:nats error: live updates need NATS; "
            "none is connected. Detail: Unavailable. Client context: OK",
            "nats error: live updates need NATS; none is connected",
        ),
        (
            "Flight returned unavailable error, with message: failed to connect to all "
            "addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused",
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
            "Connection refused",
        ),
        ("plain words", "plain words"),
    ],
)
def test_clean_message_other_shapes(raw, clean):
    assert clean_message(raw) == clean


def test_from_arrow_picks_the_class_and_the_named_parts():
    refused = pa.ArrowInvalid(
        "batch refused [not-null] (column 'session_id', row 12): a value is required"
    )
    sent = ErrorDetail(rule="not-null", column="session_id", row=12)
    load = from_arrow(refused, "load", detail=sent)
    assert type(load) is LoadError and load.code == "INVALID_ARGUMENT"
    assert (load.rule, load.column, load.row) == ("not-null", "session_id", 12)
    # What the error names is data the server sent, never words read from the sentence.
    assert from_arrow(refused, "load").rule is None
    assert type(from_arrow(refused, "query")) is QueryError
    assert type(from_arrow(pa.ArrowKeyError("unknown view 'va_x'"))) is NotFoundError
    assert type(from_arrow(flight.FlightInternalError("boom"))) is ServerError
    assert type(from_arrow(flight.FlightUnavailableError("down"))) is ServerUnavailable


def _quiet(error: Error) -> None:
    for noise in NOISE:
        assert noise not in str(error)
    assert isinstance(error.__cause__, pa.ArrowException)


def test_bad_sql_is_a_query_error_in_the_servers_words(fd):
    with pytest.raises(QueryError) as refused:
        fd.query("SELECT * FROM tb_pageview_event")
    assert str(refused.value).startswith("query refused [va-views-only]: table 'tb_pageview_event'")
    assert refused.value.rule == "va-views-only" and refused.value.code == "INVALID_ARGUMENT"
    _quiet(refused.value)


def test_a_query_the_store_rejects_keeps_the_stores_reason(fd, backend):
    with pytest.raises(QueryError) as refused:
        fd.query("SELECT no_such_column FROM va_pageview_event")
    assert str(refused.value).startswith(f"{backend} error:")
    assert "no_such_column" in str(refused.value)
    _quiet(refused.value)


def test_an_unknown_view_is_not_found_and_lists_the_views(fd):
    with pytest.raises(NotFoundError) as missing:
        fd.query("SELECT * FROM va_nope")
    assert "va_nope" in str(missing.value) and "va_pageview_event" in str(missing.value)
    assert missing.value.view == "va_nope"
    _quiet(missing.value)


def test_a_load_missing_a_required_column_names_it(fd):
    events = pageviews(5).drop_columns(["recorded_at"])
    with pytest.raises(LoadError) as refused:
        fd.load(events, progress=False)
    assert refused.value.column == "recorded_at" and refused.value.rule == "required-column"
    assert "recorded_at" in str(refused.value)
    _quiet(refused.value)


def test_a_bad_row_in_a_late_batch_refuses_the_whole_load(fd):
    events = pageviews(200)
    sessions = events.column("session_id").to_pylist()
    sessions[150] = None
    events = events.set_column(1, "session_id", pa.array(sessions))
    with pytest.raises(LoadError) as refused:
        fd.load(events, progress=False, batch_rows=50)
    assert (refused.value.rule, refused.value.column, refused.value.row) == (
        "not-null",
        "session_id",
        150,
    )
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 0}]


def test_a_source_failing_half_way_commits_nothing(fd):
    good = pageviews(100)

    def batches():
        yield from good.to_batches(max_chunksize=40)
        raise pa.ArrowInvalid("CSV parse error: Expected 5 columns, got 2")

    with pytest.raises(LoadError, match=r"Expected 5 columns.*nothing was loaded"):
        fd.load(pa.RecordBatchReader.from_batches(good.schema, batches()), progress=False)
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 0}]
    assert fd.load(good, progress=False).accepted == 100  # the server carries on


def test_ctrl_c_during_a_load_commits_nothing(fd):
    good = pageviews(100)

    def batches():
        yield from good.to_batches(max_chunksize=40)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fd.load(pa.RecordBatchReader.from_batches(good.schema, batches()), progress=False)
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 0}]


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in any interactive Python. A test run started
    in the background of a non-interactive shell inherits SIGINT ignored, and then the
    signal these tests send would be lost."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_the_server_commits_commits_nothing(fd, slow_commit, ctrl_c_raises):
    # The late Ctrl-C: every batch sent, the server at work on its commit.
    def interrupt():
        slow_commit.reached.wait(30)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the client reacts while the server is still busy
        slow_commit.set()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(LoadInterrupted, match="the put was aborted, nothing was committed") as e:
        fd.load(pageviews(100), progress=False)
    assert e.value.committed is False
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 0}]
    assert fd.load(pageviews(100), progress=False).accepted == 100  # the server carries on


def test_ctrl_c_after_the_commit_says_the_put_was_committed(fd, slow_answer, ctrl_c_raises):
    # The narrowest race: the server committed and has not answered yet.
    def interrupt():
        slow_answer.reached.wait(30)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        slow_answer.set()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(LoadInterrupted, match="the put was committed") as e:
        fd.load(pageviews(100), progress=False)
    assert e.value.committed is True
    assert e.value.result == {"accepted": 100, "duplicates": 0}
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 100}]


def test_unknown_files_are_refused_before_connecting(tmp_path):
    (tmp_path / "events.json").write_text("{}")
    with connect("grpc://127.0.0.1:1") as fd:
        with pytest.raises(LoadError, match=r"use a \.parquet, \.pq or \.csv file"):
            fd.load(tmp_path / "events.json")
        with pytest.raises(LoadError, match="no such file"):
            fd.load(tmp_path / "missing.parquet")
        with pytest.raises(TypeError, match="pandas DataFrame"):
            fd.load([{"session_id": "s"}])


def test_no_server_is_server_unavailable_naming_the_location():
    with connect("grpc://127.0.0.1:1") as fd:
        with pytest.raises(ServerUnavailable) as down:
            fd.views()
    assert str(down.value).startswith("cannot reach a flightdeck server at grpc://127.0.0.1:1")
    _quiet(down.value)


class _Trailers(flight.ClientMiddlewareFactory):
    """What a plain pyarrow.flight client receives in the trailers of its calls."""

    def __init__(self) -> None:
        self.received: list[dict] = []

    def start_call(self, info):
        received = self.received

        class Reader(flight.ClientMiddleware):
            def received_headers(self, headers):
                received.append(headers)

        return Reader()


def test_a_plain_flight_client_receives_the_detail_intact(location):
    trailers = _Trailers()
    with flight.connect(location, middleware=[trailers]) as client:
        sql = b"SELECT * FROM tb_pageview_event"
        with pytest.raises(pa.ArrowInvalid, match=r"query refused \[va-views-only\]"):
            client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    sent = [h[TRAILER][-1] for h in trailers.received if TRAILER in h]
    assert [decode(value) for value in sent] == [ErrorDetail(rule="va-views-only")]
