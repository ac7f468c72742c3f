"""What a run measures: sizes, rounds and durations for --quick and for the full run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    name: str
    runs: int  # interleaved rounds per comparison
    backends: tuple[str, ...]
    query_sizes: tuple[int, ...]  # rows of va_pageview_event
    big_query_runs: int  # rounds at sizes of 5 M rows and more (after the same warm-up round)
    pandas_max_rows: int  # larger reads skip the two pandas contenders (minutes, GBs of objects)
    ingest_sizes: tuple[int, ...]  # rows per DoPut / adbc_ingest
    seed_sample: int  # events the one-statement-per-event worker ingests per round
    nats_events: int  # JSON events published per NATS round
    ingest_stored: tuple[int, ...]  # events stored before each growth step (DoPut, NATS)
    growth_put_rows: int  # rows per DoPut / adbc_ingest at each growth step
    preload_put_rows: int  # rows per DoPut that fills the store up to a growth step
    live_subscribers: tuple[int, ...]
    live_stalled_with: int  # subscriber count of the run with one stalled subscriber added
    live_seconds: float  # steady ingest per live run
    live_puts_per_s: float  # open-loop schedule: puts start on time, not after the last returns
    live_events_per_put: int
    live_storm: int  # subscribers subscribing with a snapshot at once (0: no storm)
    live_settle_s: float  # an update not arrived this long after the last put is missing

    def scaled(self, factor: float) -> Plan:
        """Every row and event count times `factor` (at least 1): a tiny run to check
        the harness, not figures to keep."""

        def n(x: int) -> int:
            return max(1, int(x * factor)) if x else 0

        return dataclasses.replace(
            self,
            query_sizes=tuple(n(x) for x in self.query_sizes),
            ingest_sizes=tuple(n(x) for x in self.ingest_sizes),
            seed_sample=n(self.seed_sample),
            nats_events=n(self.nats_events),
            ingest_stored=tuple(n(x) for x in self.ingest_stored),
            growth_put_rows=n(self.growth_put_rows),
            preload_put_rows=n(self.preload_put_rows),
        )

    def query_runs(self, size: int) -> int:
        return self.big_query_runs if size >= 5_000_000 else self.runs

    def query_warmup(self, size: int) -> bool:
        # Every contender at every size gets one untimed round first: all are compared warm.
        return True


QUICK = Plan(
    name="quick",
    runs=3,
    backends=("duckdb", "postgresql"),
    query_sizes=(100_000, 1_000_000),  # a 1 M-row read: a regression signal
    big_query_runs=3,
    pandas_max_rows=1_000_000,
    ingest_sizes=(10_000, 25_000),
    seed_sample=100,
    nats_events=8_000,
    ingest_stored=(0, 100_000, 300_000),
    growth_put_rows=25_000,
    preload_put_rows=100_000,
    live_subscribers=(10, 100),
    live_stalled_with=10,
    live_seconds=2.0,
    live_puts_per_s=10.0,
    live_events_per_put=20,
    live_storm=64,
    live_settle_s=1.5,
)

FULL = Plan(
    name="full",
    runs=5,
    backends=("duckdb", "postgresql"),
    query_sizes=(100_000, 1_000_000, 10_000_000),
    big_query_runs=3,
    pandas_max_rows=1_000_000,
    ingest_sizes=(10_000, 100_000, 300_000),
    seed_sample=500,
    nats_events=50_000,
    ingest_stored=(0, 1_000_000, 5_000_000),
    growth_put_rows=100_000,
    preload_put_rows=250_000,
    live_subscribers=(1, 10, 100, 1_000, 10_000),
    live_stalled_with=100,
    live_seconds=5.0,
    live_puts_per_s=10.0,
    live_events_per_put=20,
    live_storm=2_048,
    live_settle_s=2.0,
)
