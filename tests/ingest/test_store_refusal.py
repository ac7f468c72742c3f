"""A put the store itself refuses (issue 15, item 2), through DoPut and Flight SQL ingest.

The values pass every ingest rule; the store refuses them, as an operator's index
can (here a unique index, on both backends). The put answers INVALID_ARGUMENT with
rule `store` and the row counted across the put, as every other refusal does;
nothing of it is committed.
"""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest
from flightdeck.ingest import ingest

from tests.doput import put_events

TAKEN = "https://taken.example/"
CHUNK = 3  # rows a batch: a refused row is counted across batches

pytestmark = pytest.mark.filterwarnings("ignore:Cannot disable autocommit")


@pytest.fixture
def refusing(store):
    """The store with a unique index on referrer, and TAKEN already stored."""
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX ux_test_referrer ON tb_pageview_event (referrer)")
        conn.commit()
    ingest(store, [pa.RecordBatch.from_pylist([_event(0, referrer=TAKEN)])])
    return store


def _event(i: int, **values: object) -> dict:
    return {"session_id": f"s{i % 3}", "page_url": "/p", "recorded_at": "2024-01-15T10:00:00Z",
            "event_id": f"e{i}", "referrer": f"https://r{i}.example/", **values}  # fmt: skip


def _put_table(n: int, bad: dict[int, dict]) -> pa.Table:
    return pa.Table.from_pylist([_event(i, **bad.get(i, {})) for i in range(1, n + 1)])


def _stored(store) -> tuple[int, int]:
    """Events and counted views: both must stay as they were after a refused put."""
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tb_pageview_event")
        events = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(sum(view_count), 0) FROM tb_pageview_aggregate")
        views = cursor.fetchone()[0]
        conn.rollback()
    return events, int(views)


def _cases() -> list[tuple[str, int, dict[int, dict]]]:
    """(case, the refused row counted from 0, the bad values by event number)."""
    cases = [
        ("taken before the put", 7, {8: {"referrer": TAKEN}}),
        ("taken earlier in the put", 10, {3: {"referrer": "https://x/"},
                                          11: {"referrer": "https://x/"}}),
        ("first row", 0, {1: {"referrer": TAKEN}}),
        ("last row", 12, {13: {"referrer": TAKEN}}),
    ]  # fmt: skip
    return cases


def test_a_put_the_store_refuses_names_rule_and_row_and_commits_nothing(refusing, client):
    before = _stored(refusing)
    for case, row, bad in _cases():
        with pytest.raises(pa.ArrowInvalid) as err:
            put_events(client, _put_table(13, bad), CHUNK)
        message = str(err.value)
        assert "[store]" in message and f"row {row})" in message, (case, message)
        assert refusing.backend in message, (case, message)
        assert "INSERT" not in message and "SELECT" not in message, (case, message)
        assert _stored(refusing) == before, case  # nothing of the put
    # and the server keeps serving
    assert put_events(client, _put_table(13, {}), CHUNK)["accepted"] == 13
    assert _stored(refusing) == (before[0] + 13, before[1] + 13)


def test_the_refusal_names_the_column_when_the_store_does(refusing, client):
    with pytest.raises(pa.ArrowInvalid) as err:
        put_events(client, _put_table(5, {4: {"referrer": TAKEN}}), CHUNK)
    message = str(err.value)
    assert "column 'referrer'" in message, message  # as both stores name it
    assert "[store]" in message and "row 3)" in message, message


def test_flight_sql_ingest_the_store_refuses_names_rule_and_row(refusing, server):
    before = _stored(refusing)
    table = _put_table(6, {5: {"referrer": TAKEN}})
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as conn, conn.cursor() as cursor:
        with pytest.raises(flightsql.Error, match=r"\[store\].*row 4\)"):
            cursor.adbc_ingest("tb_pageview_event", table, mode="append")
        assert _stored(refusing) == before
        assert cursor.adbc_ingest("tb_pageview_event", _put_table(6, {}), mode="append") == 6
