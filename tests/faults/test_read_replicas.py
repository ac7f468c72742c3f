"""Read replicas (--read-replica): client queries read a streaming standby, round robin;
live snapshots stay on the primary, so they are exact however far the replica lags;
a replica beyond --replica-max-lag, or down, is skipped and the primary answers.

The standby's replay is paused (pg_wal_replay_pause) to make the lag as long as the
test needs, without depending on timing.
"""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight
from flightdeck import Client, LiveTable
from flightdeck.ingest import ingest
from flightdeck.views import StoreOptions, migrations, open_store
from flightdeck.views.replicas import parse_lsn

from tests.flight_server.test_live import _server
from tests.services import wait_for

from .standby import primary_and_standby
from .workload import count, flight_query, pageviews

SEED = 2_000
LATER = 500


def _caught_up(primary, standby) -> bool:
    (sent,) = primary.sql("SELECT pg_current_wal_lsn()::text")[0]
    (replayed,) = standby.sql("SELECT pg_last_wal_replay_lsn()::text")[0]
    return parse_lsn(replayed) >= parse_lsn(sent)


def _answers(location: str) -> int | None:
    try:
        return count(flight_query(location))
    except flight.FlightError:
        return None


def test_queries_read_the_replica_and_live_snapshots_stay_exact_while_it_lags(
    nats_server, tmp_path
):
    with primary_and_standby() as (primary, standby):
        primary.sql("CREATE DATABASE replicas")
        db = primary.url("replicas")
        replica = f"postgresql://127.0.0.1:{standby.port}/replicas"

        def open_with(max_lag_s: float):
            return open_store(
                StoreOptions(
                    db=db,
                    data_dir=tmp_path,
                    pool_size=2,
                    read_replicas=(replica,),
                    replica_max_lag_s=max_lag_s,
                )
            )

        store = open_with(600.0)
        strict = open_with(1.0)  # the same replica, a tight lag bound
        try:
            migrations.apply(store, migrations.load_migrations(store.backend))
            ingest(store, pageviews(SEED, seed=51, prefix="seed").to_batches())
            for each in (store, strict):  # as `serve` does at start: sets the reader login up
                with each.read("SELECT 1 AS ok") as reader:
                    reader.read_all()
            with _server(store, nats_server.url, tmp_path) as location:
                assert wait_for(lambda: _caught_up(primary, standby), timeout=60)
                standby.sql("SELECT pg_wal_replay_pause()")
                ingest(store, pageviews(LATER, seed=52, prefix="later").to_batches())

                # Queries are answered by the replica, which has not replayed the later put.
                assert wait_for(lambda: _answers(location) == SEED, timeout=60)
                assert [_answers(location) for _ in range(3)] == [SEED] * 3
                assert _flight_sql_count(location) == SEED  # Flight SQL reads it too
                # A live snapshot reads the primary: exact, with the later put in it.
                with LiveTable(Client(location), "va_pageview_aggregate") as live:
                    snapshot = live.wait_ready(60)
                assert sum(snapshot.column("view_count").to_pylist()) == SEED + LATER
                with store.read("SELECT * FROM va_pageview_aggregate") as reader:
                    primary_rows = reader.read_all()
                assert snapshot.sort_by(_keys()).equals(
                    primary_rows.select(snapshot.column_names).sort_by(_keys())
                )
                # Beyond a 1 s bound, the paused replica is skipped: the primary answers.
                assert wait_for(lambda: _strict_count(strict) == SEED + LATER, timeout=60)

                standby.sql("SELECT pg_wal_replay_resume()")
                assert wait_for(lambda: _answers(location) == SEED + LATER, timeout=60)
                standby.stop()  # down: skipped, the primary answers
                assert wait_for(lambda: _answers(location) == SEED + LATER, timeout=60)
                assert [_answers(location) for _ in range(3)] == [SEED + LATER] * 3
        finally:
            strict.close()
            store.close()


def _keys() -> list[tuple[str, str]]:
    return [("page_url", "ascending"), ("date", "ascending")]


def _strict_count(store) -> int:
    sql = "SELECT count(*) AS n FROM va_pageview_event"
    with store.read(sql, replica=True) as reader:
        return reader.read_all().column("n")[0].as_py()


def _flight_sql_count(location: str) -> int:
    with flightsql.connect(location) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) AS n FROM va_pageview_event")
        return cursor.fetchone()[0]
