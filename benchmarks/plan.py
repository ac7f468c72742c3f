"""What a run measures: sizes, rounds and durations for --quick and for the full run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    name: str
    runs: int  # interleaved rounds per comparison
    backends: tuple[str, ...]
    query_sizes: tuple[int, ...]  # rows of va_pageview_event
    big_query_runs: int  # rounds at sizes of 5 M rows and more (no warm-up round there)
    pandas_max_rows: int  # larger reads skip the two pandas contenders (minutes, GBs of objects)
    ingest_sizes: tuple[int, ...]  # rows per DoPut / adbc_ingest
    seed_sample: int  # events the one-statement-per-event worker ingests per round
    nats_events: int  # JSON events published per NATS round
    live_subscribers: tuple[int, ...]
    live_stalled_with: int  # subscriber count of the run with one stalled subscriber added
    live_seconds: float  # steady ingest per live run
    live_puts_per_s: float  # open-loop schedule: puts start on time, not after the last returns
    live_events_per_put: int
    live_storm: int  # subscribers subscribing with a snapshot at once (0: no storm)
    live_settle_s: float  # an update not arrived this long after the last put is missing

    def query_runs(self, size: int) -> int:
        return self.big_query_runs if size >= 5_000_000 else self.runs

    def query_warmup(self, size: int) -> bool:
        return size < 5_000_000


QUICK = Plan(
    name="quick",
    runs=3,
    backends=("duckdb", "postgresql"),
    query_sizes=(100_000, 250_000),
    big_query_runs=3,
    pandas_max_rows=1_000_000,
    ingest_sizes=(10_000, 25_000),
    seed_sample=100,
    nats_events=8_000,
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
    live_subscribers=(1, 10, 100, 1_000, 10_000),
    live_stalled_with=100,
    live_seconds=5.0,
    live_puts_per_s=10.0,
    live_events_per_put=20,
    live_storm=2_048,
    live_settle_s=2.0,
)
