"""Property: whatever the split, order and duplicates, the stored aggregates equal a recomputation.

Events come from a small universe (a few sessions and pages, timestamps
bunched near UTC midnights and inside one hour, some shared exactly) so that
puts keep touching the same sessions, pages, days and hours: late events,
cross-page bounces and day boundaries are the cases an incremental recompute
gets wrong. Each example is sent as 1-5 puts through `ingest()`, and the
views are compared with tests/reference.py on the deduplicated events.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pytest
from flightdeck.ingest import ingest, reaggregate
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from tests import reference
from tests.budget import examples

SESSIONS = ["s0", "s1", "s2", "s3"]
PAGES = ["/a", "/b", "/c"]
USERS = [None, "u0", "u1"]
# Few ids, so explicit ids collide across events with different content too.
EVENT_IDS = [f"e{i}" for i in range(4)]
DAY0 = dt.datetime(2024, 1, 14, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)
# Offsets into a day that every example should be able to hit exactly (and share).
SPECIAL_OFFSETS = [
    dt.timedelta(0),
    US,
    dt.timedelta(seconds=1),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10, minutes=30),
    dt.timedelta(hours=11) - US,
    dt.timedelta(hours=11),
    dt.timedelta(hours=23, minutes=59, seconds=59),
    dt.timedelta(days=1) - US,
]
# Everything ingest writes; each example starts from none of it.
TABLES = [
    "tb_pageview_event",
    "tb_pageview_aggregate",
    "tb_pageview_hourly",
    "tb_session_day",
    "tb_aggregate_outbox",
    "tb_expired_day",
]


class Event(NamedTuple):
    session_id: str
    page_url: str
    recorded_at: dt.datetime
    user_id: str | None
    event_id: str | None

    def key(self) -> str | tuple:
        """The pipeline's dedupe key: the id, or else the event's content."""
        if self.event_id is not None:
            return self.event_id
        return (self.session_id, self.page_url, self.recorded_at, self.user_id)


class Put(NamedTuple):
    seed_shaped: bool  # `timestamp` as ISO text and `user_pk`, like the seed, vs Arrow types
    with_event_id: bool  # send an event_id column (null where an event has none)
    batches: list[list[Event]]


timestamps = st.builds(
    lambda day, offset: DAY0 + dt.timedelta(days=day) + offset,
    st.integers(0, 2),
    st.one_of(
        st.sampled_from(SPECIAL_OFFSETS),
        # inside the 10:00 hour, to the second: several events per page-hour
        st.integers(10 * 3600, 11 * 3600 - 1).map(lambda s: dt.timedelta(seconds=s)),
        # the last and first minute of a day, to the microsecond
        st.integers(-60_000_000, 60_000_000).map(
            lambda us: dt.timedelta(days=1 if us < 0 else 0, microseconds=us)
        ),
        st.integers(0, 86_400_000_000 - 1).map(lambda us: dt.timedelta(microseconds=us)),
    ),
)

events = st.builds(
    Event,
    st.sampled_from(SESSIONS),
    st.sampled_from(PAGES),
    timestamps,
    st.sampled_from(USERS),
    st.one_of(st.none(), st.sampled_from(EVENT_IDS)),
)


@st.composite
def scenarios(draw) -> list[Put]:
    """A pool of events, and 1-5 puts of 1-3 batches each drawn from it in any order.

    An event drawn twice is an exact re-send; two pool events with one explicit id
    are a conflict, which the first one sent must win. Puts are drawn as lists of
    pool events (not as cuts of one shuffled list) so that failures shrink well.
    """
    pool = draw(st.lists(events, min_size=1, max_size=12))
    pick = st.integers(0, len(pool) - 1).map(pool.__getitem__)
    puts = []
    for _ in range(draw(st.integers(1, 5))):
        batches = draw(st.lists(st.lists(pick, max_size=8), min_size=1, max_size=3))
        sent_ids = any(e.event_id for batch in batches for e in batch)
        puts.append(
            Put(
                seed_shaped=draw(st.booleans()),
                with_event_id=sent_ids or draw(st.booleans()),
                batches=batches,
            )
        )
    return puts


def _record_batch(put: Put, events: list[Event]) -> pa.RecordBatch:
    columns: dict[str, pa.Array] = {
        "session_id": pa.array([e.session_id for e in events], pa.string()),
        "page_url": pa.array([e.page_url for e in events], pa.string()),
    }
    if put.seed_shaped:
        columns["timestamp"] = pa.array(
            [e.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for e in events], pa.string()
        )
        columns["user_pk"] = pa.array([e.user_id for e in events], pa.string())
    else:
        columns["recorded_at"] = pa.array(
            [e.recorded_at for e in events], pa.timestamp("us", "UTC")
        )
        columns["user_id"] = pa.array([e.user_id for e in events], pa.string())
    if put.with_event_id:
        columns["event_id"] = pa.array([e.event_id for e in events], pa.string())
    return pa.RecordBatch.from_pydict(columns)


def _clear(store) -> None:
    with store.write() as conn, conn.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {table}")
        conn.commit()


def _read(store, sql: str) -> pd.DataFrame:
    with store.read(sql) as reader:
        return reader.read_all().to_pandas()


def _frame(events: list[Event]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "session_id": [e.session_id for e in events],
            "page_url": [e.page_url for e in events],
            "recorded_at": pd.to_datetime([e.recorded_at for e in events], utc=True),
        }
    )


# One id sent twice in one put with different content: the first sent must win, as it
# does when the two are sent in separate puts (the result must not depend on the split).
_CONFLICT_IN_ONE_PUT = [
    Put(
        seed_shaped=False,
        with_event_id=True,
        batches=[
            [
                Event("s0", "/a", DAY0 + dt.timedelta(hours=10), None, "e0"),
                Event("s0", "/a", DAY0, None, "e0"),
            ]
        ],
    )
]


@pytest.mark.slow  # a long exactness run: make test runs it
@settings(
    # In full about 25 s on DuckDB and 12 s on PostgreSQL on a 2-core machine.
    max_examples=examples(100),
    deadline=None,
    database=None,  # no example database; failures are pinned with @example instead
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(puts=scenarios())
@example(puts=_CONFLICT_IN_ONE_PUT)
def test_aggregates_equal_recomputation_of_deduplicated_events(store, puts):
    _clear(store)
    kept: dict[str | tuple, Event] = {}  # first event sent with each key wins
    for number, put in enumerate(puts):
        expected_accepted = 0
        for event in (e for batch in put.batches for e in batch):
            if event.key() not in kept:
                kept[event.key()] = event
                expected_accepted += 1
        sent = sum(len(b) for b in put.batches)
        result = ingest(store, [_record_batch(put, b) for b in put.batches])
        assert (result.accepted, result.duplicates) == (
            expected_accepted,
            sent - expected_accepted,
        ), f"put {number}"

    truth = _frame(list(kept.values()))
    got_daily = _read(
        store,
        "SELECT page_url, date, view_count, unique_visitors, bounce_rate, avg_session_duration "
        "FROM va_pageview_aggregate ORDER BY page_url, date",
    )
    got_hourly = _read(
        store,
        "SELECT page_url, hour, view_count, unique_visitors "
        "FROM va_pageview_hourly ORDER BY page_url, hour",
    )
    reference.assert_matches(got_daily, got_hourly, truth, note)
    # The incremental state agrees with a rebuild from raw events, to the row.
    assert reaggregate(store, None, apply=False).differences == 0
