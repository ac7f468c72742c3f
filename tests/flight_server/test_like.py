"""LIKE patterns of the Flight SQL catalog filters: SQL semantics, and no backtracking.

The reference is DuckDB's own LIKE (with ESCAPE '\\'), so the matcher is held to
what a database answers, not to a translation we wrote ourselves.
"""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.flight_sql import messages as pb
from flightdeck.flight_server.flight_sql.commands import pack
from flightdeck.flight_server.flight_sql.like import like
from hypothesis import given, settings
from hypothesis import strategies as st

_ALPHABET = "ab_%\\é\n"  # wildcards, the escape, a non-ASCII character, a newline
_VALUE_CHARS = "abé_%\\\n"


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    yield conn
    conn.close()


def _reference(conn: duckdb.DuckDBPyConnection, pattern: str, value: str) -> bool:
    return conn.execute("SELECT ? LIKE ? ESCAPE '\\'", [value, pattern]).fetchone()[0]


# DuckDB refuses a pattern ending in a lone escape; everywhere else it is the reference.
_patterns = st.text(_ALPHABET, max_size=10).filter(
    lambda p: (len(p) - len(p.rstrip("\\"))) % 2 == 0
)


@settings(max_examples=400, deadline=None)
@given(pattern=_patterns, value=st.text(_VALUE_CHARS, max_size=10))
def test_matches_what_the_database_answers(duck, pattern, value):
    assert like(pattern, value) == _reference(duck, pattern, value)


@settings(max_examples=200, deadline=None)
@given(pattern=_patterns, value=st.text(_VALUE_CHARS, max_size=10))
def test_a_value_made_to_fit_the_pattern_matches(pattern, value):
    # Random pairs rarely match; build a matching value from the pattern itself.
    fitted, escaped = [], False
    for char in pattern:
        if escaped:
            fitted.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "_":
            fitted.append(value[:1] or "z")
        elif char == "%":
            fitted.append(value)
        else:
            fitted.append(char)
    assert like(pattern, "".join(fitted))


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (None, "anything", True),
        ("", "", True),
        ("", "a", False),
        ("%", "", True),
        ("va\\_%", "va_x", True),
        ("va\\_%", "vaax", False),
        ("100\\%", "100%", True),
        ("100\\%", "1000", False),
        ("a\\\\b", "a\\b", True),
        ("ab\\", "ab\\", True),  # a trailing escape stands for itself
        ("va.pageview%", "va_pageview_event", False),  # LIKE, not a regular expression
        ("VA_%", "va_pageview_event", False),  # case-sensitive
        ("%_%_", "ab", True),
        ("%_%_", "a", False),
        ("a%b%c", "abbbc", True),
        ("a%b%c", "acb", False),
    ],
)
def test_examples(pattern, value, expected):
    assert like(pattern, value) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "%" * 15 + "x",
        "%" * 5000 + "x",
        "%a" * 2000 + "x",
        "%_" * 2000 + "x",
        "a%" * 3000 + "b",
    ],
)
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_pathological_patterns_finish_at_once(pattern):
    # In a child process: a backtracking matcher holds the GIL, so no thread of
    # this process could notice the hang (minutes to years for these patterns).
    code = (
        "import sys; from flightdeck.flight_server.flight_sql.like import like; "
        "print(like(sys.argv[1], 'a' * 200))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, pattern], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"like() did not answer within 10 s for {pattern[:20]!r}...")
    assert done.stdout.strip() == "False", done.stderr


def test_a_pathological_table_filter_does_not_stall_the_server(client):
    message = pb.CommandGetTables(table_name_filter_pattern="%" * 40 + "x")
    options = flight.FlightCallOptions(timeout=10)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(pack(message)), options)
    found = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert found.num_rows == 0
    schemas = pb.CommandGetDbSchemas(db_schema_filter_pattern="%" * 40 + "x")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(pack(schemas)), options)
    assert client.do_get(info.endpoints[0].ticket, options).read_all().num_rows == 0
    # and the server is still serving
    assert client.do_get(flight.Ticket(b"va_pageview_hourly"), options).read_all().num_rows == 0
