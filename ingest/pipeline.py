"""The one ingest pipeline: validate, dedupe, append raw events, keep aggregates exact, commit.

Every entry point (DoPut, the NATS worker) goes through `ingest()`. A call is
one transaction: every row is committed or none. Batches are validated one at
a time as they arrive. A put that fits a memory bound is held in Arrow and
appended in bulk (held_put.py); a bigger one is staged batch by batch into a
temporary table, so memory holds one batch, not the whole put.

The commit also writes an outbox entry naming its version; the publisher
(`publisher.py`) sends the rows of that version to NATS afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
from flightdeck.views import BackendError, Store
from flightdeck.views.rollup_spec import Rollup
from flightdeck.views.store import backend_errors

from . import aggregates, loads, retention, rollup_install, rollups
from .append import NEW, SKIP, append_new
from .derived import with_derived
from .event_types import PAGEVIEW, EventTypes, check_type_name
from .events import check_not_expired, normalise
from .held_put import HELD_BYTES, SEQ, Held, HoldBudget, append_held, hold
from .scalar import scalar
from .session_locks import lock_sessions
from .store_refusal import StoreRefusals
from .turns import join_appends, take_fold_turn, take_turn
from .typed_append import NEW_EVENT, append_typed

__all__ = ["IngestResult", "Repair", "ingest", "reaggregate"]

_STAGE = "flightdeck_stage"
# DuckDB 2.0's ADBC ingest fails on batches larger than its 2,048-row vectors.
_STAGE_ROWS = {"duckdb": 2048, "postgresql": 65_536}
# The most a put may hold in memory to take the held path (held_put.py), by backend.
_HELD_BYTES = {"duckdb": -1, "postgresql": HELD_BYTES}
# The event type of each table of a commit's new events (append.py, typed_append.py).
_EVENT_TYPE = {NEW: f"'{PAGEVIEW}'", NEW_EVENT: "event_type"}
_UNIQUE_VIOLATION = "23505"
_DEADLOCK = "40P01"
_EVENT_KEY = "tb_pageview_event_pkey"  # PostgreSQL's name for the events' primary key
_COLLISION_TRIES = 3
# What all puts of this process may hold at once: a process-wide resource, as a lock is.
_HOLD_BUDGET = HoldBudget(HELD_BYTES)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    version: int | None  # the commit's version; None when nothing new was written


@dataclass(frozen=True)
class Repair:
    days: list[dt.date]  # days recomputed (those that still have raw events)
    daily_changed: int  # daily rows that were wrong or missing
    hourly_changed: int
    removed: int  # aggregate rows that had no events behind them
    version: int
    applied: bool  # False for a check: nothing was written
    rollup_rows: int = 0  # rows of declared rollups that were wrong, missing or extra
    versions: tuple[int, ...] = ()  # every part's (`version` is the last)

    @property
    def differences(self) -> int:
        return self.daily_changed + self.hourly_changed + self.removed + self.rollup_rows


def ingest(
    store: Store,
    batches: Iterable[pa.RecordBatch],
    control: loads.PutControl | None = None,
    *,
    dry_run: bool = False,
    normalised: bool = False,
    event_type: str = PAGEVIEW,
    event_types: EventTypes | None = None,
) -> IngestResult:
    """Ingest `batches` atomically; InvalidBatch (nothing written) on the first bad row.

    `control`, if given, is asked whether the put is still wanted (what it raises
    rolls everything back) between the steps and last right before the commit; its
    load id is recorded in the same transaction. Nothing in here waits on a client:
    the batches have all arrived before the writer turn is taken.

    Events of a day whose raw events retention deleted are refused: recomputing
    that day from what remains would lose its kept aggregates. With `dry_run`
    everything is done and then rolled back: whether the store would take them.
    `normalised`: the batches come from `events.normalise` already (the NATS worker's
    decoder), so their rows are not validated a second time. `event_type`: every
    event of the put is of this type; other types than `pageview` are kept in
    tb_event (`_write_typed`), checked against `event_types`' declarations.
    """
    check_type_name(event_type)
    types = event_types or EventTypes()
    types.check_known(event_type)
    with store.write(staging=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")  # left by a put whose store went away
        expired = retention.expired_days(cursor)
        validated = _Validated(batches, expired, normalised, event_type, types)
        if event_type != PAGEVIEW:
            return _write_typed(store, conn, cursor, validated, expired, control, dry_run)
        held = hold(iter(validated), _HELD_BYTES[store.backend], _HOLD_BUDGET)
        try:
            return _write_put(store, conn, cursor, held, validated, expired, control, dry_run)
        finally:
            _HOLD_BUDGET.give(held.reserved)


def _write_put(
    store: Store,
    conn,
    cursor,
    held: Held,
    validated: _Validated,
    expired: frozenset[dt.date],
    control: loads.PutControl | None,
    dry_run: bool,
) -> IngestResult:
    """The put held in memory, appended in bulk; else (or if the store refuses it) staged."""
    if held.whole and validated.rows:  # (an empty put goes on to the staged path's check)
        _check_wanted(control)  # a cancelled put need not wait for the turn
        store.end_staging(conn)
        written = _write_held(conn, cursor, store.backend, held, expired, control)
        if written is not None:
            return _finish(conn, cursor, control, dry_run, validated.rows, *written)
    # Over the bound, or refused by the store: staged, so a refused row is named.
    batches_left = itertools.chain(held.batches, held.rest or ())
    write = functools.partial(
        _write, cursor=cursor, backend=store.backend, expired=expired, control=control
    )
    return _write_staged(store, conn, cursor, batches_left, validated, control, dry_run, write)


def _write_staged(
    store: Store,
    conn,
    cursor,
    batches: Iterable[pa.RecordBatch],
    validated: _Validated,
    control: loads.PutControl | None,
    dry_run: bool,
    write: Callable[[StoreRefusals], tuple[int, int | None]],
) -> IngestResult:
    """Stage `batches`, then `write(refusals)` in the writer's turn: how many it
    appended and the commit's version. A row the store refuses is named (StoreRefusals)."""
    staged = _stage(cursor, batches, _STAGE_ROWS[store.backend], validated)
    if staged == 0:
        conn.rollback()
        return IngestResult(0, 0, None)
    _check_wanted(control)  # a cancelled put need not wait for the turn
    store.end_staging(conn)  # a client still sending held no other writer up
    refusals = StoreRefusals(conn, cursor, store.backend, _STAGE)
    accepted, version = refusals.run(functools.partial(write, refusals), staged)
    return _finish(conn, cursor, control, dry_run, staged, accepted, version)


def _write_typed(
    store: Store,
    conn,
    cursor,
    validated: _Validated,
    expired: frozenset[dt.date],
    control: loads.PutControl | None,
    dry_run: bool,
) -> IngestResult:
    """A put of one type other than `pageview`: staged, then appended to tb_event in
    the writer's turn. No page-view aggregate reads it."""

    def write(_refusals: StoreRefusals) -> tuple[int, int | None]:
        take_turn(cursor, store.backend)
        retention.recheck(cursor, _STAGE, expired)
        accepted = append_typed(cursor, validated.event_type)
        _check_wanted(control)
        if not accepted:
            return 0, None
        return accepted, _fold_new_events(cursor, store.backend, validated.event_type)

    return _write_staged(store, conn, cursor, validated, validated, control, dry_run, write)


def _fold_new_events(cursor, backend: str, event_type: str) -> int | None:
    """Fold a commit's new events of a type other than `pageview` (in
    `flightdeck_new_event`, typed_append.py) into the rollups that read it, in the
    writer's turn: the commit's version, or None when no rollup reads the type."""
    kept = [r for r in rollup_install.installed(cursor) if r.reads(event_type)]
    if not kept:
        return None
    version = _next_version(cursor)
    _fold_rollups(cursor, backend, kept, version, NEW_EVENT)
    return version


def _fold_rollups(
    cursor, backend: str, kept: Sequence[Rollup], version: int, new_table: str
) -> None:
    """Fold the commit's new events (`new_table`) into the rollups `kept`."""
    _new_events(cursor, new_table)
    rollups.fold(cursor, backend, kept, version)
    cursor.execute(f"DROP TABLE {rollups.NEW_EVENTS}")


def _new_events(cursor, new_table: str) -> None:
    """rollups.NEW_EVENTS: the commit's new events of `new_table`, as the rollups read them."""
    cursor.execute(
        f"CREATE TEMP TABLE {rollups.NEW_EVENTS} AS SELECT event_id, "
        f"{_EVENT_TYPE[new_table]} AS event_type, session_id, recorded_at, user_id "
        f"FROM {new_table}"
    )


def _finish(
    conn,
    cursor,
    control: loads.PutControl | None,
    dry_run: bool,
    rows: int,
    accepted: int,
    version: int | None,
) -> IngestResult:
    if dry_run:
        conn.rollback()
    elif control is not None:
        _before_commit(cursor, control, accepted, rows - accepted)
    _drop(cursor, _STAGE, SKIP, NEW, NEW_EVENT)  # the stage was committed: see store_refusal.py
    conn.commit()
    return IngestResult(accepted, rows - accepted, version)


def _write_held(
    conn,
    cursor,
    backend: str,
    held: Held,
    expired: frozenset[dt.date],
    control: loads.PutControl | None,
) -> tuple[int, int | None] | None:
    """Append the held put's new events beside other held puts, work out what they
    change with their sessions locked, then write that in our turn (turns.py,
    session_locks.py); None if the store refused them as data (rolled back: the
    staged path then names the row).

    A key collision is no fault of the data: another put sent one of our ids and
    committed while we appended. The try is rolled back and made again, and its
    probe now finds that id stored; after `_COLLISION_TRIES` the put is staged. So
    is a deadlock: two puts whose appends each wait for an id the other wrote."""
    for _ in range(_COLLISION_TRIES):
        try:
            with backend_errors(backend):
                join_appends(cursor, backend)
                accepted = append_held(cursor, held.table(), expired)
                return _folded(cursor, backend, control, accepted, take_fold_turn)
        except BackendError as exc:
            if not (exc.data_refused or exc.sqlstate == _DEADLOCK):
                raise
            with backend_errors(backend):
                conn.rollback()
                cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")  # as at the start
            if exc.data_refused and not _collided(exc):
                return None
    return None


def _collided(exc: BackendError) -> bool:
    """Whether a held put's COPY met an event_id another put committed meanwhile (a
    unique index of the user's own refuses the data itself: that is no collision)."""
    return exc.sqlstate == _UNIQUE_VIOLATION and _EVENT_KEY in exc.reason


def _before_commit(cursor, control: loads.PutControl, accepted: int, duplicates: int) -> None:
    # A client gone or cancelled during the work rolls it back. One that goes after
    # this check finds its load committed, by its load id.
    _check_wanted(control)
    if control.load_id is not None:
        loads.record(cursor, control.load_id, accepted, duplicates)


def _check_wanted(control: loads.PutControl | None) -> None:
    if control is not None:
        control.check_wanted()


def reaggregate(store: Store, days: Sequence[dt.date] | None, *, apply: bool = True) -> Repair:
    """Recompute the aggregates of `days` (None: every day with raw events) from raw events.

    In parts, each in its own transaction and writer's turn: the page-view
    aggregates, then each installed rollup. A put that arrives meanwhile waits
    for the part under way, not for the whole repair, and folds its events into
    every part as it does between puts; so each part, recomputed from the raw
    events of its own moment, stays exact after it. Days whose raw events
    retention removed (looked at again in each part) are left as they are. With
    `apply=False` every part is rolled back: a check that reports differences.
    """
    with _repair_part(store, apply) as cursor:
        checked = retention.days_with_events(cursor, days)
        listed = [_date(d) for d in checked]
        versions = [version := _next_version(cursor)]
        aggregates.rebuild(cursor, listed, version, store.backend)
        removed = aggregates.remove_orphans(cursor, listed, version)
        daily, hourly = aggregates.changed(cursor, version)
        names = [rollup.name for rollup in rollup_install.installed(cursor)] if checked else []
    rollup_rows = 0
    for name in names:
        with _repair_part(store, apply) as cursor:
            rollup = next((r for r in rollup_install.installed(cursor) if r.name == name), None)
            still = retention.days_with_events(cursor, checked)
            if rollup is not None and still:  # not dropped, nor every day retired, meanwhile
                versions.append(version := _next_version(cursor))
                rollup_rows += rollups.rebuild(cursor, store.backend, [rollup], still, version)
    return Repair(checked, daily, hourly, removed, version, apply, rollup_rows, tuple(versions))


@contextlib.contextmanager
def _repair_part(store: Store, apply: bool) -> Iterator:
    """A cursor in the writer's turn; committed after the block, or rolled back for a check."""
    with store.write() as conn, conn.cursor() as cursor:
        take_turn(cursor, store.backend)
        yield cursor
        if apply:
            conn.commit()
        else:
            conn.rollback()


class _Validated:
    """The put's batches validated one by one as they arrive, each with its rows' places
    in the put (`flightdeck_seq`: of several rows with one event_id the first sent wins);
    `rows` counts those read so far."""

    def __init__(
        self,
        batches: Iterable[pa.RecordBatch],
        expired: frozenset[dt.date],
        normalised: bool,
        event_type: str,
        types: EventTypes,
    ) -> None:
        self._batches = batches
        self._expired = expired
        self._normalised = normalised
        self.event_type = event_type
        self._types = types
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            # A second validation of decoded JSON parsed every properties value again.
            events = (
                batch
                if self._normalised
                else normalise(batch, first_row=self.rows, event_type=self.event_type)
            )
            self._types.check(self.event_type, events.column("properties"), self.rows)
            if self._expired:
                check_not_expired(events, self._expired, first_row=self.rows)
            events = with_derived(events)  # once here, so both append paths store them
            order = pa.array(range(self.rows, self.rows + events.num_rows), pa.int64())
            self.rows += batch.num_rows
            if events.num_rows:
                yield events.append_column(SEQ, order)


def _stage(
    cursor, batches: Iterable[pa.RecordBatch], chunk_rows: int, validated: _Validated
) -> int:
    """Ingest the validated `batches` into the stage; the put's rows in all."""
    for batch in batches:
        reader = pa.Table.from_batches([batch]).to_reader(max_chunksize=chunk_rows)
        cursor.adbc_ingest(_STAGE, reader, mode="create_append", temporary=True)
    return validated.rows


def _write(
    refusals: StoreRefusals,
    cursor,
    backend: str,
    expired: frozenset[dt.date],
    control: loads.PutControl | None,
) -> tuple[int, int | None]:
    """In our turn, append what the stage holds that is new; the commit's version, if any."""

    def append() -> int:
        retention.recheck(cursor, _STAGE, expired)  # retention may have run since we looked
        return append_new(cursor, backend, refusals.restart)

    return _in_turn(cursor, backend, control, append)


def _in_turn(
    cursor, backend: str, control: loads.PutControl | None, append: Callable[[], int]
) -> tuple[int, int | None]:
    """Take the writer's turn, `append()` the put's new events, fold them into the
    aggregates: how many, and the commit's version if any."""
    take_turn(cursor, backend)
    return _folded(cursor, backend, control, append())


def _folded(
    cursor,
    backend: str,
    control: loads.PutControl | None,
    accepted: int,
    take_turn_then: Callable[[object, str], None] | None = None,
) -> tuple[int, int | None]:
    """Fold the `accepted` new events into the aggregates: how many, and the version.

    What a fold reads and works out belongs to its sessions, locked first; only the
    writes to shared rows need the writer's turn. A caller already in its turn
    passes no `take_turn_then`; a held put passes take_fold_turn, taken in between,
    so folds of other sessions prepare beside it (session_locks.py)."""
    _check_wanted(control)  # recomputing is the long part: skip it for nothing
    if not accepted:
        return accepted, None
    prepared = _prepare(cursor, backend)
    if take_turn_then is not None:
        take_turn_then(cursor, backend)
    return accepted, _apply(cursor, backend, prepared)


def _prepare(cursor, backend: str) -> rollups.Prepared | None:
    """Lock the sessions of `flightdeck_new`, fold them into their session state and
    work out what they add to each rollup that reads page views."""
    lock_sessions(cursor, backend, NEW)
    if backend == "postgresql":
        cursor.execute(f"ANALYZE {NEW}")  # temp tables lack statistics (aggregates.prepare)
    aggregates.prepare(cursor)
    kept = [r for r in rollup_install.installed(cursor) if r.reads(PAGEVIEW)]
    if not kept:
        return None
    _new_events(cursor, NEW)
    return rollups.prepare(cursor, backend, kept)


def _apply(cursor, backend: str, prepared: rollups.Prepared | None) -> int:
    """In the writer's turn: take the next version, write what `_prepare` worked out."""
    version = _next_version(cursor)
    aggregates.apply(cursor, version)
    if prepared is not None:
        rollups.apply(cursor, backend, prepared, version)
        cursor.execute(f"DROP TABLE {rollups.NEW_EVENTS}")
    return version


def _next_version(cursor) -> int:
    """The commit's version, noted in the outbox so the publisher sends what it changed."""
    version = scalar(cursor, "SELECT nextval('sq_pageview_version')")
    cursor.execute(f"INSERT INTO tb_aggregate_outbox (version) VALUES ({version})")
    return version


def _date(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def _drop(cursor, *tables: str) -> None:
    for table in tables:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
