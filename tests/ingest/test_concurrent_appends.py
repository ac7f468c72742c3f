"""Puts held in memory append beside one another on PostgreSQL (ingest/turns.py).

A test connection holds the aggregate turn, as a put folding its events would;
the locks each put's backend holds or waits for then show where it stands:
its COPY done (a lock on tb_pageview_event), waiting for the turn, or waiting
for another put's uncommitted row with the same event_id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from flightdeck.ingest import IngestResult, ingest, pipeline, reaggregate
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups, parse_rollup

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

_WAIT_S = 30.0


def _batch(first: int, last: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {
                "event_id": f"e{i}",
                "session_id": f"s{i % 3}",
                "page_url": f"/p{i % 2}",
                "timestamp": f"2024-03-01T10:{i:02d}:00Z",
            }
            for i in range(first, last)
        ]
    )


class _Put(threading.Thread):
    def __init__(self, store, batch: pa.RecordBatch) -> None:
        super().__init__(daemon=True)
        self._store, self._batch = store, batch
        self.result: IngestResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = ingest(self._store, [self._batch])
        except BaseException as exc:  # reported by the test, in its own thread
            self.error = exc

    def outcome(self) -> tuple[int, int]:
        self.join(_WAIT_S)
        assert not self.is_alive(), "the put did not finish"
        assert self.error is None, self.error
        assert self.result is not None
        return self.result.accepted, self.result.duplicates


def _locks(watch, waiting: bool) -> set[tuple[str, str]]:
    """(what, mode) of the locks other backends hold (or wait for, with `waiting`)."""
    with watch.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(relation::regclass::text, locktype), mode FROM pg_locks "
            f"WHERE pid <> pg_backend_pid() AND granted = {str(not waiting).lower()}"
        )
        return {(what, mode) for what, mode in cursor.fetchall()}


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _waiting_for_turn(watch) -> bool:
    return ("tb_ingest_turn", "ExclusiveLock") in _locks(watch, waiting=True)


@pytest.fixture
def turn(db_url: str, store):
    """A connection that holds the aggregate turn until `release()`."""
    conn = pg.connect(db_url)
    with conn.cursor() as cursor:
        cursor.execute("LOCK TABLE tb_ingest_turn IN EXCLUSIVE MODE")
    conn.release = conn.rollback  # type: ignore[attr-defined]
    yield conn
    conn.close()


@pytest.fixture
def watch(db_url: str):
    with pg.connect(db_url, autocommit=True) as conn:
        yield conn


def test_a_held_put_appends_while_another_holds_the_turn(store, turn, watch):
    put = _Put(store, _batch(0, 10))
    put.start()
    _until(lambda: _waiting_for_turn(watch))
    # Its events are appended already; only the fold waits. Before, the whole put waited.
    assert ("tb_pageview_event", "RowExclusiveLock") in _locks(watch, waiting=False)
    turn.release()
    assert put.outcome() == (10, 0)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_repeat_two_held_puts_send_together_is_stored_and_counted_once(
    store, turn, watch, monkeypatch
):
    staged = []
    monkeypatch.setattr(pipeline, "_stage", lambda *a: staged.append(a) or 0)
    first = _Put(store, _batch(0, 10))
    first.start()
    _until(lambda: _waiting_for_turn(watch))
    second = _Put(store, _batch(5, 15))  # e5..e9 are the first put's, not yet committed
    second.start()
    # The second put's COPY waits for the first put's transaction, on the shared key.
    _until(lambda: any(what == "transactionid" for what, _ in _locks(watch, waiting=True)))
    turn.release()
    assert first.outcome() == (10, 0)
    assert second.outcome() == (5, 5)  # refused by the key, tried again: repeats counted
    assert staged == []  # held both times, not staged
    with watch.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT event_id) FROM tb_pageview_event")
        assert cursor.fetchone() == (15, 15)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_staged_put_waits_for_held_appends_and_sees_them(store, turn, watch, monkeypatch):
    held = _Put(store, _batch(0, 2))
    monkeypatch.setitem(pipeline._HELD_BYTES, "postgresql", held._batch.nbytes * 3)
    held.start()
    _until(lambda: _waiting_for_turn(watch))
    staged = _Put(store, _batch(0, 30))  # over the bound: staged, in the whole turn
    staged.start()
    _until(lambda: ("tb_ingest_gate", "ExclusiveLock") in _locks(watch, waiting=True))
    turn.release()
    assert held.outcome() == (2, 0)
    assert staged.outcome() == (28, 2)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_put_postgresql_ends_for_a_deadlock_is_tried_again(store, monkeypatch):
    # Two appends that each wait for an id the other wrote deadlock; PostgreSQL ends
    # one of them. Raised here by PostgreSQL itself, as it would be, in the first try.
    tries = []
    real = pipeline.append_held

    def deadlocked_once(cursor, *args):
        tries.append(len(tries))
        if len(tries) == 1:
            cursor.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"
            )
        return real(cursor, *args)

    monkeypatch.setattr(pipeline, "append_held", deadlocked_once)
    put = _Put(store, _batch(0, 10))
    put.start()
    assert put.outcome() == (10, 0)
    assert tries == [0, 1]
    assert reaggregate(store, None, apply=False).differences == 0


# ---- folds of different sessions side by side (ingest/session_locks.py) ----


def _views(events: list[tuple[str, str, str, str]]) -> pa.RecordBatch:
    """(event_id, session_id, page_url, timestamp) rows."""
    names = ("event_id", "session_id", "page_url", "timestamp")
    return pa.RecordBatch.from_pylist([dict(zip(names, e, strict=True)) for e in events])


def _turn_waiters(watch) -> int:
    with watch.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted "
            "AND relation = 'tb_ingest_turn'::regclass"
        )
        return cursor.fetchone()[0]


def test_a_held_put_works_out_its_fold_before_its_turn(store, turn, watch):
    put = _Put(store, _batch(0, 10))
    put.start()
    _until(lambda: _waiting_for_turn(watch))
    # Its session-days are written already: only the shared rows wait for the turn.
    held = _locks(watch, waiting=False)
    assert ("tb_session_day", "RowExclusiveLock") in held
    assert ("tb_session_lock", "RowExclusiveLock") in held
    turn.release()
    assert put.outcome() == (10, 0)
    assert reaggregate(store, None, apply=False).differences == 0


def test_puts_of_other_sessions_prepare_side_by_side(store, turn, watch):
    first = _Put(
        store, _views([(f"a{i}", "s-a", "/x", f"2024-03-01T10:0{i}:00Z") for i in range(3)])
    )
    second = _Put(
        store, _views([(f"b{i}", "s-b", "/x", f"2024-03-01T10:0{i}:00Z") for i in range(3)])
    )
    first.start()
    second.start()
    _until(lambda: _turn_waiters(watch) == 2)  # both prepared, each waiting to write
    turn.release()
    assert first.outcome() == second.outcome() == (3, 0)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_put_of_a_session_another_put_is_folding_waits_for_it(store, turn, watch):
    # One view each on /a and /b of session s: together they end the bounce on /a.
    # Read while the first put's fold is still open, the second would count the
    # session twice and keep the bounce.
    first = _Put(store, _views([("v1", "s", "/a", "2024-03-01T10:00:00Z")]))
    first.start()
    _until(lambda: _waiting_for_turn(watch))
    second = _Put(store, _views([("v2", "s", "/b", "2024-03-01T10:05:00Z")]))
    second.start()
    _until(lambda: any(what == "transactionid" for what, _ in _locks(watch, waiting=True)))
    assert _turn_waiters(watch) == 1  # the second waits for the session, not the turn
    turn.release()
    assert first.outcome() == second.outcome() == (1, 0)
    assert reaggregate(store, None, apply=False).differences == 0
    with watch.cursor() as cursor:
        cursor.execute(
            "SELECT page_url, unique_visitors, bounce_rate FROM va_pageview_aggregate "
            "ORDER BY page_url"
        )
        assert cursor.fetchall() == [("/a", 1, 0.0), ("/b", 1, 0.0)]


# Weekly and monthly visits span several session-days: a fold must lock the session,
# not the session-day, or two puts of one visit on two days would each count it.
_LONG_GRAINS = [
    parse_rollup(
        f'name = "entries_{grain}"\ngrain = "{grain}"\ndimensions = ["entry_page"]\n'
        'measures = ["visits", "visitors", "bounce_rate", "avg_visit_duration"]',
        f"entries_{grain}.toml",
    )
    for grain in ("week", "month")
]


def test_many_puts_of_shared_sessions_at_once_leave_every_aggregate_exact(store):
    # Sessions spread over hours, days and a month boundary, so session-days, page-days,
    # page-hours, users and weekly and monthly visits are shared by puts running at once.
    install(store, [*load_rollups([BUILTIN_DIR]), *_LONG_GRAINS])
    days = ("2024-02-27", "2024-02-29", "2024-03-01")
    stamps = [f"{d}T{h:02d}:{m:02d}:00Z" for d in days for h in (9, 23) for m in (0, 30)]

    def event(put: int, i: int) -> dict:
        session = (put * 7 + i) % 9
        return {
            "event_id": f"p{put}e{i}",
            "session_id": f"s{session}",
            "page_url": f"/p{i % 4}",
            "timestamp": stamps[(put + i) % len(stamps)],
            "user_id": f"u{session % 4}" if session % 3 else None,
        }

    puts = [
        _Put(store, pa.RecordBatch.from_pylist([event(p, i) for i in range(40)])) for p in range(12)
    ]
    for put in puts:
        put.start()
    assert [put.outcome() for put in puts] == [(40, 0)] * 12
    check = reaggregate(store, None, apply=False)
    assert (check.differences, check.rollup_rows) == (0, 0)
