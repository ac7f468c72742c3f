"""Which rollups a store keeps: installed from their files, read back by every writer.

`install` makes the store keep exactly the declared rollups. A new rollup, or
one whose declaration changed, gets fresh tables and view and is backfilled
from the raw events the store still holds (`Installed.backfilled`; days
retention already deleted cannot be recounted, see `Installed.expired_days`).
A rollup no longer declared is dropped with its view. The declarations are
recorded in `tb_rollup`, so a `flightdeck ingest` worker, started without the
files, folds the same rollups as the server (`installed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flightdeck.views import Store
from flightdeck.views.migrations import grant_to_readers
from flightdeck.views.rollup_spec import Rollup, stored_rollup

from . import retention
from . import rollups as engine
from .rollup_tables import create_statements, drop_statements, view_sql
from .scalar import scalar
from .turns import take_turn

__all__ = ["Installed", "install", "installed"]


@dataclass(frozen=True)
class Installed:
    kept: list[str] = field(default_factory=list)  # unchanged
    backfilled: list[str] = field(default_factory=list)  # created (or changed) and recounted
    dropped: list[str] = field(default_factory=list)
    expired_days: int = 0  # days whose raw events retention deleted: not in the backfill


def installed(cursor) -> list[Rollup]:
    """The rollups the store keeps, in name order."""
    cursor.execute("SELECT name, spec FROM tb_rollup ORDER BY name")
    return [stored_rollup(name, spec) for name, spec in cursor.fetchall()]


def install(store: Store, rollups: Sequence[Rollup]) -> Installed:
    with store.write() as conn, conn.cursor() as cursor:
        take_turn(cursor, store.backend)
        cursor.execute("SELECT name, spec FROM tb_rollup")
        have = dict(cursor.fetchall())
        wanted = {r.name: r for r in rollups}
        dropped = sorted(set(have) - set(wanted))
        for name in dropped:
            _drop(cursor, name)
        fresh = [r for r in rollups if have.get(r.name) != r.text]
        for rollup in fresh:
            _drop(cursor, rollup.name)
            _create(cursor, store.backend, rollup)
        expired = 0
        if fresh:
            expired = _backfill(cursor, store.backend, fresh)
        conn.commit()
    kept = sorted(set(wanted) - {r.name for r in fresh})
    return Installed(kept, [r.name for r in fresh], dropped, expired)


def _drop(cursor, name: str) -> None:
    for statement in drop_statements(name):
        cursor.execute(statement)
    cursor.execute(f"DELETE FROM tb_rollup WHERE name = '{name}'")


def _create(cursor, backend: str, rollup: Rollup) -> None:
    for statement in create_statements(rollup):
        cursor.execute(statement)
    cursor.execute(f"CREATE VIEW {rollup.view} AS {view_sql(rollup)}")
    if backend == "postgresql":
        cursor.execute(grant_to_readers(rollup.view))
    text = rollup.text.replace("'", "''")
    cursor.execute(f"INSERT INTO tb_rollup (name, spec) VALUES ('{rollup.name}', '{text}')")


def _backfill(cursor, backend: str, fresh: Sequence[Rollup]) -> int:
    """Recount the new rollups over every day with raw events; expired days skipped."""
    days = retention.days_with_events(cursor)
    # Not in the outbox: a new view's subscribers start from a snapshot anyway.
    version = int(scalar(cursor, "SELECT nextval('sq_pageview_version')"))
    engine.rebuild(cursor, backend, fresh, days, version)
    return len(retention.expired_days(cursor))
