"""Flight sessions through ADBC (cookie middleware on): catalog and schema, both backends."""

from __future__ import annotations

import logging

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.session import messages as pb

pytestmark = pytest.mark.filterwarnings("ignore:Cannot disable autocommit")

COOKIES = {"adbc.flight.sql.rpc.with_cookie_middleware": "true"}


@pytest.fixture
def conn(server):
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}", db_kwargs=COOKIES) as connection:
        yield connection


def test_current_catalog_and_schema_are_what_metadata_lists(conn, store):
    assert conn.adbc_current_catalog == ""
    assert conn.adbc_current_db_schema == store.schema_name
    schemas = conn.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
    assert [s["db_schema_name"] for c in schemas for s in c["catalog_db_schemas"]] == [
        store.schema_name
    ]


def test_setting_a_listed_schema_is_kept_for_the_session(conn, store):
    conn.adbc_current_db_schema = store.schema_name
    conn.adbc_current_catalog = ""
    assert conn.adbc_current_db_schema == store.schema_name
    with conn.cursor() as cursor:  # queries go on working in the session
        cursor.execute("SELECT count(*) FROM va_pageview_event")
        assert cursor.fetchone() == (0,)


@pytest.mark.parametrize(
    ("attribute", "option"),
    [("adbc_current_db_schema", "schema"), ("adbc_current_catalog", "catalog")],
)
def test_an_unknown_value_is_refused_naming_the_option(conn, store, attribute, option):
    with pytest.raises(flightsql.ProgrammingError, match=rf"'{option}' \(invalid value\)"):
        setattr(conn, attribute, "no_such_thing")
    assert conn.adbc_current_db_schema == store.schema_name  # unchanged


def test_close_session_is_answered_quietly(server, caplog):
    caplog.set_level(logging.INFO, logger="flightdeck")
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}", db_kwargs=COOKIES) as connection:
        assert connection.adbc_current_catalog == ""
    assert not [r for r in caplog.records if "CloseSession" in r.getMessage()]


class _Cookies(flight.ClientMiddlewareFactory):
    """A client that keeps the session cookie, as the JDBC driver does."""

    def __init__(self) -> None:
        self.cookie: str | None = None

    def start_call(self, info):
        return _CookieCall(self)


class _CookieCall(flight.ClientMiddleware):
    def __init__(self, jar: _Cookies) -> None:
        self._jar = jar

    def sending_headers(self):
        return {"cookie": self._jar.cookie} if self._jar.cookie else {}

    def received_headers(self, headers):
        for value in headers.get("set-cookie", []):
            self._jar.cookie = value.split(";")[0]


def _action(client: flight.FlightClient, name: str, message) -> bytes:
    (result,) = client.do_action(flight.Action(name, message.SerializeToString()))
    return result.body.to_pybytes()


def test_raw_session_protocol_sets_errors_and_closes(server, store):
    jar = _Cookies()
    with flight.connect(f"grpc://127.0.0.1:{server.port}", middleware=[jar]) as client:
        request = pb.SetSessionOptionsRequest()
        request.session_options["schema"].string_value = store.schema_name
        request.session_options["timezone"].string_value = "UTC"
        request.session_options["catalog"].bool_value = True
        result = pb.SetSessionOptionsResult.FromString(
            _action(client, "SetSessionOptions", request)
        )
        assert jar.cookie is not None and jar.cookie.startswith("arrow_flight_session_id=")
        assert {name: error.value for name, error in result.errors.items()} == {
            "timezone": pb.INVALID_NAME,
            "catalog": pb.INVALID_VALUE,
        }
        got = pb.GetSessionOptionsResult.FromString(
            _action(client, "GetSessionOptions", pb.GetSessionOptionsRequest())
        )
        assert {k: v.string_value for k, v in got.session_options.items()} == {
            "catalog": "",
            "schema": store.schema_name,
        }
        closed = pb.CloseSessionResult.FromString(
            _action(client, "CloseSession", pb.CloseSessionRequest())
        )
        assert closed.status == pb.CLOSED
        assert len(server._sessions._store) == 0
