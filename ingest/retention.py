"""Raw-event retention: delete the raw events (of every type) of old days; their aggregates stay.

The horizon is the start of a UTC day, so a day's raw events are kept or gone
as a whole. Each day that loses its events is recorded in `tb_expired_day`:
its aggregates are final from then on, and ingest refuses late events for it
(recomputing the day from what remains would lose the kept counts). Days that
never had events are not recorded, so a backfill of old data still works
until the next retention run expires it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from flightdeck.views import Store

from .aggregates import day_of, in_day
from .errors import RetentionRace
from .scalar import scalar
from .turns import take_turn

__all__ = ["Expired", "delete_expired", "expired_days", "horizon", "recheck", "recheck_days"]

_DAY = day_of("recorded_at")
_RAW = ("tb_pageview_event", "tb_event")  # the raw events of every type


@dataclass(frozen=True)
class Expired:
    horizon: dt.datetime  # raw events before this were deleted
    deleted: int
    days: int  # UTC days that lost their raw events in this run


def horizon(days: int, now: dt.datetime | None = None) -> dt.datetime | None:
    """Start of the oldest UTC day whose raw events are kept; None keeps everything (days ≤ 0)."""
    if days <= 0:
        return None
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    return dt.datetime.combine(today - dt.timedelta(days=days), dt.time(), dt.UTC)


def delete_expired(store: Store, days: int, now: dt.datetime | None = None) -> Expired | None:
    """Delete raw events older than `days` whole UTC days; None when retention is off."""
    cutoff = horizon(days, now)
    if cutoff is None:
        return None
    where = f"recorded_at < CAST('{cutoff.isoformat()}' AS TIMESTAMPTZ)"
    with store.write() as conn, conn.cursor() as cursor:
        take_turn(cursor, store.backend)
        # Events of every type (tb_event too): a day's raw events are kept or gone as a whole.
        old = " UNION ALL ".join(f"SELECT recorded_at FROM {t} WHERE {where}" for t in _RAW)
        deleted = scalar(cursor, f"SELECT count(*) FROM ({old}) o")
        expired = 0
        if deleted:
            expired = scalar(cursor, f"SELECT count(DISTINCT {_DAY}) FROM ({old}) o")
            cursor.execute(
                f"INSERT INTO tb_expired_day (day) SELECT DISTINCT {_DAY} "
                f"FROM ({old}) o ON CONFLICT (day) DO NOTHING"
            )
            for table in _RAW:
                cursor.execute(f"DELETE FROM {table} WHERE {where}")
        # The incremental state of closed days is no longer needed: no event can join them.
        cursor.execute(f"DELETE FROM tb_session_day WHERE day < DATE '{cutoff.date().isoformat()}'")
        conn.commit()
    return Expired(cutoff, deleted, expired)


def days_with_events(cursor, days: Sequence[dt.date] | None = None) -> list[dt.date]:
    """The UTC days (of `days`, or all) whose raw events of any type the store holds."""
    where = ""
    if days is not None:
        if not days:
            return []
        where = "WHERE " + " OR ".join(in_day("recorded_at", f"DATE '{d}'") for d in days)
    cursor.execute(
        f"SELECT DISTINCT {_DAY} AS day FROM tb_pageview_event {where} UNION "
        f"SELECT DISTINCT {_DAY} AS day FROM tb_event {where} ORDER BY day"
    )
    return [row[0] for row in cursor.fetchall()]


def expired_days(cursor) -> frozenset[dt.date]:
    cursor.execute("SELECT day FROM tb_expired_day")
    return frozenset(row[0] for row in cursor.fetchall())


def recheck(cursor, staged: str, seen: frozenset[dt.date]) -> None:
    """Refuse the put if a day of `staged` expired after `seen` was read (a rare race)."""
    late = expired_days(cursor) - seen
    if not late:
        return
    days = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(late))
    if scalar(cursor, f"SELECT count(*) FROM {staged} WHERE {_DAY} IN ({days})"):
        raise _race(late)


def recheck_days(cursor, put_days: frozenset[dt.date], seen: frozenset[dt.date]) -> None:
    """`recheck` for a put held in memory: `put_days` are the UTC days of its events."""
    late = expired_days(cursor) - seen
    if late & put_days:
        raise _race(late)


def _race(late: frozenset[dt.date]) -> RetentionRace:
    return RetentionRace(
        detail="retention deleted the raw events of a day in this put while it was being "
        f"ingested ({', '.join(str(d) for d in sorted(late))}); those days are final",
    )
