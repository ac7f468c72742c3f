"""Events of any type (issue 19): DoPut ["events", TYPE], tb_event, va_event, declared types."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.server import FlightdeckServer
from flightdeck.flight_server.settings import Settings
from flightdeck.ingest import InvalidBatch, ingest, reaggregate, retention
from flightdeck.ingest.event_types import EventTypes

from tests.doput import put_events

NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
_REFUSED = (flight.FlightError, pa.ArrowInvalid)


def _put(client, event_type: str, table: pa.Table) -> dict:
    descriptor = flight.FlightDescriptor.for_path("events", event_type)
    writer, meta = client.do_put(descriptor, table.schema)
    writer.write_table(table)
    writer.done_writing()
    buf = meta.read()
    writer.close()
    return json.loads(buf.to_pybytes())


def _read(client, sql: str) -> pd.DataFrame:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    return client.do_get(info.endpoints[0].ticket).read_all().to_pandas()


def _logins(n: int = 3, **extra) -> pa.Table:
    return pa.table(
        {
            "event_id": [f"login-{i}" for i in range(n)],
            "session_id": [f"s{i}" for i in range(n)],
            "user_id": [f"u{i}" for i in range(n)],
            "recorded_at": [f"2024-05-30T10:0{i}:00Z" for i in range(n)],
            **extra,
        }
    )


def _requests(durations: list) -> pa.Table:
    n = len(durations)
    return pa.table(
        {
            "event_id": [f"req-{i}" for i in range(n)],
            "session_id": ["s1"] * n,
            "recorded_at": [f"2024-05-30T11:0{i}:00Z" for i in range(n)],
            "properties": [
                json.dumps({"duration_ms": d, "service": "api", "endpoint": "/x"})
                for d in durations
            ],
        }
    )


def _pageviews() -> pa.Table:
    return pa.table(
        {
            "event_id": ["pv-1", "pv-2"],
            "session_id": ["s1", "s1"],
            "page_url": ["/a", "/b"],
            "recorded_at": ["2024-05-30T09:00:00Z", "2024-05-30T09:01:00Z"],
        }
    )


def test_typed_events_are_stored_and_served_by_va_event(client):
    assert _put(client, "user.login", _logins()) == {"accepted": 3, "duplicates": 0}
    assert _put(client, "api.request", _requests([12.5, 40])) == {"accepted": 2, "duplicates": 0}
    put_events(client, _pageviews())
    events = _read(client, "SELECT * FROM va_event ORDER BY recorded_at")
    assert list(events.columns) == [
        "event_id", "event_type", "session_id", "user_id", "page_url", "recorded_at",
        "referrer", "user_agent", "duration_s", "properties", "ingested_at",
    ]  # fmt: skip
    assert events.event_type.tolist() == ["pageview"] * 2 + ["user.login"] * 3 + ["api.request"] * 2
    assert events.page_url.isna().tolist() == [False] * 2 + [True] * 5
    assert json.loads(events.properties.iloc[-1])["duration_ms"] == 40


def test_the_same_id_twice_is_a_duplicate(client):
    _put(client, "user.login", _logins())
    assert _put(client, "user.login", _logins(4)) == {"accepted": 1, "duplicates": 3}
    put_events(client, _pageviews())
    clash = _logins(1).set_column(0, "event_id", pa.array(["pv-1"]))  # stored as a page view
    assert _put(client, "user.login", clash) == {"accepted": 0, "duplicates": 1}
    assert _read(client, "SELECT count(*) AS n FROM va_event").n[0] == 6


def test_resent_events_without_ids_dedupe_by_content(client):
    table = _logins(2).drop_columns(["event_id"])
    assert _put(client, "user.login", table) == {"accepted": 2, "duplicates": 0}
    assert _put(client, "user.login", table) == {"accepted": 0, "duplicates": 2}
    # The same content as another type is another event.
    assert _put(client, "user.logout", table) == {"accepted": 2, "duplicates": 0}


@pytest.mark.parametrize("name", ["User.Login", "1login", "user login", "x" * 65, "_a"])
def test_a_bad_type_name_is_refused_naming_the_rule(client, name):
    with pytest.raises(_REFUSED, match=r"\[event-type\]"):
        _put(client, name, _logins())


def test_page_url_is_required_for_page_views_only(client):
    assert _put(client, "task.created", _logins())["accepted"] == 3
    with pytest.raises(_REFUSED, match=r"\[required-column\].*page_url"):
        _put(client, "pageview", _logins())


def test_extra_columns_land_in_properties_sender_keys_win(client):
    table = _logins(
        2,
        method=["password", "sso"],
        properties=[json.dumps({"method": "mine"}), None],
        attempts=pa.array([1, None], pa.int64()),
    )
    _put(client, "user.login", table)
    rows = _read(client, "SELECT properties FROM va_event ORDER BY event_id")
    got = [json.loads(p) for p in rows.properties]
    assert got == [{"method": "mine", "attempts": 1}, {"method": "sso"}]


def test_extra_columns_need_an_object_in_properties(client):
    table = _logins(1, method=["sso"], properties=["[1, 2]"])
    with pytest.raises(_REFUSED, match=r"\[json-object\].*row 0"):
        _put(client, "user.login", table)


def test_other_types_leave_the_page_view_aggregates_alone(client, store):
    put_events(client, _pageviews())
    before = _read(client, "SELECT * FROM va_pageview_aggregate")
    version = _read(client, "SELECT max(version) AS v FROM va_pageview_aggregate").v[0]
    _put(client, "user.login", _logins())
    _put(client, "api.request", _requests([1, 2, 3]))
    pd.testing.assert_frame_equal(_read(client, "SELECT * FROM va_pageview_aggregate"), before)
    assert _read(client, "SELECT max(version) AS v FROM va_pageview_aggregate").v[0] == version
    assert reaggregate(store, None, apply=False).differences == 0


def _types_file(tmp_path: Path) -> Path:
    path = tmp_path / "types.toml"
    path.write_text(
        '[types."api.request"]\n'
        'required = {duration_ms = "float", service = "string", endpoint = "string"}\n'
    )
    return path


def test_declared_types_name_the_property_and_row(store, tmp_path):
    types = EventTypes.load(_types_file(tmp_path))
    batch = _requests([1.5, "slow", 3]).to_batches()[0]
    with pytest.raises(InvalidBatch, match=r"properties\.duration_ms.*row 1.*must be float"):
        ingest(store, [batch], event_type="api.request", event_types=types)
    missing = _logins(2).to_batches()[0]
    with pytest.raises(InvalidBatch, match=r"properties\.duration_ms.*row 0.*required"):
        ingest(store, [missing], event_type="api.request", event_types=types)
    assert ingest(store, [_logins().to_batches()[0]], event_type="user.login", event_types=types)


def test_strict_mode_refuses_undeclared_types_over_doput(store, tmp_path):
    settings = Settings(
        port=0, data_dir=tmp_path, event_types=_types_file(tmp_path), strict_event_types=True
    )
    server = FlightdeckServer(settings, store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            with pytest.raises(_REFUSED, match=r"\[undeclared-type\].*user\.login"):
                _put(client, "user.login", _logins())
            assert _put(client, "api.request", _requests([5]))["accepted"] == 1
            assert put_events(client, _pageviews())["accepted"] == 2  # always known
    finally:
        server.shutdown()


def test_retention_deletes_old_typed_events(store):
    old = _logins(2).set_column(3, "recorded_at", pa.array(["2024-01-01T00:00:00Z"] * 2))
    new = _logins(3).set_column(0, "event_id", pa.array(["n0", "n1", "n2"]))
    ingest(store, old.to_batches(), event_type="user.login")
    ingest(store, new.to_batches(), event_type="user.login")
    expired = retention.delete_expired(store, 30, now=NOW)
    assert (expired.deleted, expired.days) == (2, 1)
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT event_id FROM tb_event ORDER BY event_id")
        assert [r[0] for r in cursor.fetchall()] == ["n0", "n1", "n2"]
    with pytest.raises(InvalidBatch, match=r"\[retention\]"):
        ingest(store, old.to_batches(), event_type="user.login")
