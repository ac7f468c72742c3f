"""A put held in Arrow (ingest/held_put.py) stores what the staged path stores.

The same puts go into two stores, one with the memory bound so small that every
put is staged, one with it large: raw events (properties' JSON text included)
and every aggregate and session row must be identical. Then the edges: a put
over the bound, a store refusal met on the held path, retention racing a put.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from flightdeck.ingest import InvalidBatch, RetentionRace, held_put, ingest, pipeline, reaggregate
from flightdeck.ingest.retention import delete_expired
from flightdeck.views import StoreOptions, migrations, open_store

from tests.ingest.test_store_refusal import TAKEN, _put_table, refusing  # noqa: F401

_EVENT_COLUMNS = ("event_id, session_id, page_url, recorded_at, user_id, referrer, user_agent, "
                  "duration_s, CAST(properties AS TEXT) AS properties")  # fmt: skip
_TABLES = {
    "tb_pageview_event": _EVENT_COLUMNS,
    "tb_pageview_aggregate": "*",
    "tb_pageview_hourly": "*",
    "tb_session_day": "*",
}
_PROPERTIES = ['{"a": 1,  "b" : [1, 2]}', None, '{"ü": "\\u00e9", "n": null}', "[]", '"x"']


@pytest.fixture
def other_store(backend: str, request, tmp_path: Path) -> Iterator:
    """A second migrated store of the test's backend."""
    if backend == "duckdb":
        db = str(tmp_path / "other.duckdb")
    else:
        db = request.getfixturevalue("db_url")  # the first store's is another fixture value
        db = db + "_other"
        admin = request.getfixturevalue("pg_admin_url")
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {db.rsplit('/', 1)[1]}")
            cursor.execute(f"CREATE DATABASE {db.rsplit('/', 1)[1]}")
    store = open_store(StoreOptions(db=db, data_dir=tmp_path / "other", statement_timeout_s=30))
    migrations.apply(store, migrations.load_migrations(store.backend))
    yield store
    store.close()


def _event(i: int, put: int) -> dict:
    # Sessions straddle puts and days; ids repeat within a put and across puts.
    at = dt.datetime(2024, 3, 1, 22, tzinfo=dt.UTC) + dt.timedelta(minutes=7 * i + 50 * put)
    return {
        "event_id": f"e{(i * 7 + put * 11) % 60}",
        "session_id": f"s{(i + put) % 9}",
        "page_url": f"/p{i % 4}",
        "recorded_at": at,
        "user_id": None if i % 5 else f"u{i}",
        "duration_s": i / 3,
        "properties": _PROPERTIES[i % len(_PROPERTIES)],
    }


def _puts() -> list[pa.Table]:
    return [pa.Table.from_pylist([_event(i, put) for i in range(40)]) for put in range(4)]


def _contents(store) -> dict[str, list[dict]]:
    contents = {}
    with store.write() as conn, conn.cursor() as cursor:
        for table, columns in _TABLES.items():
            cursor.execute(f"SELECT {columns} FROM {table}")
            found = cursor.fetch_arrow_table()
            # computed_at is the commit's clock: the one column two stores cannot share.
            rows = [{k: v for k, v in r.items() if k != "computed_at"} for r in found.to_pylist()]
            contents[table] = sorted(rows, key=repr)
        conn.rollback()
    return contents


def _bound(monkeypatch, backend: str, limit: int) -> None:
    monkeypatch.setitem(pipeline._HELD_BYTES, backend, limit)


def _ingest_all(store) -> list[tuple[int, int]]:
    results = []
    for table in _puts():
        result = ingest(store, table.to_batches(max_chunksize=9))
        results.append((result.accepted, result.duplicates))
    return results


def test_held_and_staged_puts_store_the_same(store, other_store, backend, monkeypatch):
    held_bytes = pipeline._HELD_BYTES[backend]  # DuckDB stages every put
    _bound(monkeypatch, backend, -1)  # every put staged
    staged = _ingest_all(store)
    _bound(monkeypatch, backend, held_bytes)
    held = _ingest_all(other_store)
    assert held == staged
    assert sum(accepted for accepted, _ in held) == 60  # every id once
    assert _contents(other_store) == _contents(store)
    assert reaggregate(other_store, None, apply=False).differences == 0


def test_a_put_over_the_bound_is_staged_after_what_was_held(store, backend, monkeypatch):
    batches = _puts()[0].to_batches(max_chunksize=9)
    _bound(monkeypatch, backend, batches[0].nbytes + 1)  # two batches held, then over
    result = ingest(store, batches)
    ids = len(set(_puts()[0].column("event_id").to_pylist()))
    assert (result.accepted, result.duplicates) == (ids, 40 - ids)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_refusal_on_the_held_path_names_the_row(refusing, backend, monkeypatch):  # noqa: F811
    tried = []

    def append_held(*args):
        tried.append(1)
        return held_put.append_held(*args)

    monkeypatch.setattr(pipeline, "append_held", append_held)
    table = _put_table(9, {7: {"referrer": TAKEN}})
    with pytest.raises(InvalidBatch) as refused:
        ingest(refusing, table.to_batches(max_chunksize=3))
    assert (refused.value.column, refused.value.row, refused.value.rule) == ("referrer", 6, "store")
    assert tried == ([1] if backend == "postgresql" else [])  # PostgreSQL tried holding it
    assert ingest(refusing, _put_table(9, {}).to_batches()).accepted == 9  # nothing was kept


def test_retention_expiring_a_day_of_the_put_meanwhile_refuses_it(store):
    old = {"session_id": "s", "page_url": "/p", "recorded_at": "2024-01-10T08:00:00Z"}
    ingest(store, [pa.RecordBatch.from_pylist([{**old, "event_id": "e0"}])])
    now = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)

    def batches_then_retention():
        yield pa.RecordBatch.from_pylist([{**old, "event_id": "e1"}])
        delete_expired(store, 10, now)  # after the put's batches were checked, before its turn

    with pytest.raises(RetentionRace):
        ingest(store, batches_then_retention())
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tb_pageview_event")
        assert cursor.fetchone()[0] == 0
        conn.rollback()


def test_puts_past_the_process_budget_are_staged_and_store_the_same(
    store, other_store, monkeypatch
):
    staged = _ingest_all(store)
    # Other puts hold the whole budget: each of these is staged, whatever its size.
    monkeypatch.setattr(pipeline, "_HOLD_BUDGET", held_put.HoldBudget(0))
    appended = []
    monkeypatch.setattr(pipeline, "append_held", lambda *a: appended.append(1))
    assert _ingest_all(other_store) == staged
    assert appended == []
    assert _contents(other_store) == _contents(store)


def test_every_put_gives_its_reservation_back_even_a_refused_one(store, monkeypatch):
    budget = held_put.HoldBudget(1 << 20)
    monkeypatch.setattr(pipeline, "_HOLD_BUDGET", budget)
    ingest(store, _puts()[0].to_batches(max_chunksize=9))
    assert budget.left == 1 << 20

    def good_then_bad():
        yield from _puts()[1].to_batches(max_chunksize=9)
        yield pa.RecordBatch.from_pylist([{**_event(0, 1), "page_url": ""}])

    with pytest.raises(InvalidBatch):
        ingest(store, good_then_bad())
    assert budget.left == 1 << 20
