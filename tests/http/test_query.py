"""POST /api/query answers what a Flight DoGet of the same SQL answers, in every format."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from tests.doput import put_events
from tests.seed import events

# Every format on both backends: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

SQL = (
    "SELECT page_url, date, view_count, unique_visitors, bounce_rate, avg_session_duration "
    "FROM va_pageview_aggregate ORDER BY page_url, date"
)


@pytest.fixture
def loaded(client):
    put_events(client, events(500))
    return client


def _flight(client: flight.FlightClient, sql: str) -> pa.Table:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    return client.do_get(info.endpoints[0].ticket).read_all()


def _post(http, sql: str, accept: str):
    response = http.post("/api/query", json={"sql": sql}, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(accept)
    return response


def test_arrow_stream_equals_doget(http, loaded):
    body = _post(http, SQL, "application/vnd.apache.arrow.stream").content
    expected = _flight(loaded, SQL)
    assert expected.num_rows > 0
    assert pa.ipc.open_stream(body).read_all().equals(expected)


def test_parquet_equals_doget(http, loaded):
    body = _post(http, SQL, "application/vnd.apache.parquet").content
    assert pq.read_table(io.BytesIO(body)).equals(_flight(loaded, SQL))


def test_csv_equals_doget(http, loaded):
    body = _post(http, SQL, "text/csv").content
    expected = _flight(loaded, SQL)
    types = {f.name: f.type for f in expected.schema}
    read = csv.read_csv(io.BytesIO(body), convert_options=csv.ConvertOptions(column_types=types))
    assert read.cast(expected.schema).equals(expected)


def _as_json(table: pa.Table) -> list[dict]:
    """What JSON can say of each value: dates and times as ISO 8601, numbers as numbers."""
    rows = table.to_pylist()
    for row in rows:
        for name, value in row.items():
            if hasattr(value, "isoformat"):
                row[name] = value.isoformat()
            elif value is not None and not isinstance(value, (str, int, float)):
                row[name] = float(value)  # Decimal
    return rows


def test_json_and_ndjson_equal_doget(http, loaded):
    expected = _as_json(_flight(loaded, SQL))
    assert _post(http, SQL, "application/json").json() == expected
    lines = _post(http, SQL, "application/x-ndjson").text.splitlines()
    assert [json.loads(line) for line in lines] == expected


def test_json_is_the_default_and_empty_results_are_valid(http, loaded):
    response = http.post("/api/query", json={"sql": SQL + " LIMIT 0"})
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_refused_sql_names_the_rule(http):
    response = http.post("/api/query", json={"sql": "DELETE FROM tb_pageview_event"})
    assert response.status_code == 400
    body = response.json()
    assert body["rule"]
    assert "tb_pageview_event" in body["error"] or body["rule"] in body["error"]


def test_malformed_requests_are_refused_with_their_rule(http, server):
    assert http.post("/api/query", content=b"{").json()["rule"] == "json"
    assert http.post("/api/query", json={"query": "x"}).json()["rule"] == "sql"
    unknown = http.post("/api/query", json={"sql": SQL}, headers={"Accept": "image/png"})
    assert unknown.status_code == 406
    over = server.settings.max_query_bytes + 2048  # the body bound: the SQL limit and its JSON
    huge = http.post("/api/query", json={"sql": "SELECT 1 -- " + "x" * over})
    assert huge.status_code == 413
    assert huge.json()["rule"] == "body-size"
