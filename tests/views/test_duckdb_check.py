"""DuckDB's own wall: the store refuses what DuckDB itself would read beyond va_ views.

These call the store directly, as if the SQL guard had let everything through:
DuckDBStore.read and .schema check DuckDB's parse and plan of the query before it
runs. PostgreSQL's counterpart is its least-privilege read role, tested with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from flightdeck.views import (
    BackendError,
    InvalidQuery,
    StoreOptions,
    catalog,
    migrations,
    open_store,
)
from flightdeck.views.store import DuckDBStore

from tests.conftest import insert

SD = "tb_session_day"
SECRET = "secret-session"


def _seeded_store(path: Path) -> DuckDBStore:
    store = open_store(StoreOptions(db=str(path), statement_timeout_s=30))
    assert isinstance(store, DuckDBStore)
    migrations.apply(store, migrations.load_migrations("duckdb"))
    ts = pa.array([1_705_312_800_000_000], pa.timestamp("us", "UTC"))
    session = {"session_id": [SECRET], "day": pa.array([19737], pa.date32()), "views": [1]}
    insert(store, SD, pa.table({**session, "first_at": ts, "last_at": ts}))
    events = {"event_id": ["e1", "e2"], "session_id": ["s1", "s2"], "page_url": ["/a", "/b"]}
    insert(
        store, "tb_pageview_event", pa.table({**events, "recorded_at": pa.concat_arrays([ts, ts])})
    )
    return store


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """One seeded store for the module: the checks refuse before anything runs."""
    store = _seeded_store(tmp_path_factory.mktemp("duck") / "fdcheck.duckdb")
    yield store
    store.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files")
    csv = folder / "secret.csv"
    pacsv.write_csv(pa.table({"s": [SECRET]}), csv)
    parquet = folder / "secret.parquet"
    pq.write_table(pa.table({"s": [SECRET]}), parquet)
    return {"csv": csv, "parquet": parquet, "dir": folder}


# (sql, what the refusal must name); {csv}, {parquet}, {dir} are files on this machine.
ESCAPES = [
    # tb_ tables, however named
    (f"SELECT * FROM {SD}", SD),
    (f"SELECT * FROM main.{SD}", SD),
    (f"SELECT * FROM fdcheck.main.{SD}", SD),
    ('SELECT * FROM "TB_SESSION_DAY"', "TB_SESSION_DAY"),
    # ... behind a CTE of the same name: the recursive anchor, EXCEPT, BY NAME, plain
    (
        f"WITH RECURSIVE {SD} AS (SELECT * FROM {SD} UNION ALL SELECT * FROM {SD} "
        f"WHERE false) SELECT * FROM {SD}",
        SD,
    ),
    (
        f"WITH RECURSIVE {SD} AS (SELECT 'x' AS s EXCEPT SELECT session_id FROM {SD}) "
        f"SELECT * FROM {SD}",
        SD,
    ),
    (
        f"WITH RECURSIVE {SD} AS (SELECT 'x' AS session_id UNION ALL BY NAME "
        f"SELECT session_id FROM {SD}) SELECT * FROM {SD}",
        SD,
    ),
    (f"WITH {SD} AS (SELECT * FROM {SD}) SELECT * FROM {SD}", SD),
    (
        "WITH RECURSIVE c AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM c WHERE n < 2) "
        f"SELECT * FROM (WITH RECURSIVE {SD} AS (SELECT * FROM {SD} UNION ALL "
        f"SELECT * FROM {SD} WHERE false) SELECT * FROM {SD}) AS s",
        SD,
    ),
    # ... in subqueries, joins, lateral joins, set operations
    (f"SELECT * FROM va_pageview_event WHERE session_id IN (SELECT session_id FROM {SD})", SD),
    (f"SELECT (SELECT max(session_id) FROM {SD}) AS m", SD),
    (f"SELECT * FROM va_pageview_event AS e JOIN {SD} AS s ON true", SD),
    (f"SELECT * FROM va_pageview_event AS e, LATERAL (SELECT * FROM {SD}) AS s", SD),
    (f"SELECT session_id FROM va_pageview_event UNION SELECT session_id FROM {SD}", SD),
    # the catalog, settings and the database file's path
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT path FROM duckdb_databases()", "duckdb_databases"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM duckdb_tables", "duckdb_tables"),
    ("SELECT current_setting('memory_limit') AS m", "current_setting"),
    ("SELECT * FROM information_schema.tables", "information_schema"),
    ("SELECT * FROM sqlite_master", "sqlite_master"),
    ("SELECT * FROM pg_catalog.pg_class", "pg_class"),
    ("SELECT * FROM pragma_database_list", "pragma_database_list"),
    ("SELECT * FROM (DESCRIBE tb_session_day)", "DESCRIBE"),
    ("SELECT * FROM (SHOW TABLES)", "SHOW"),
    ("SELECT * FROM (SUMMARIZE va_pageview_event)", "SUMMARIZE"),
    # built-in macros with harmless names that read the catalog: only the plan shows it
    ("SELECT get_block_size('fdcheck') AS b", "pragma_database_size"),
    ("SELECT format_type(23, NULL) AS t", "duckdb_types"),
    # files
    ("SELECT * FROM read_csv('{csv}')", "read_csv"),
    ("SELECT * FROM read_parquet('{parquet}')", "read_parquet"),
    ("SELECT * FROM glob('{dir}/*')", "glob"),
    ("SELECT * FROM '{csv}'", "secret.csv"),
    # SQL run by a function
    (f"SELECT * FROM query('SELECT * FROM {SD}')", "query"),
    (f"SELECT * FROM query_table('{SD}')", "query_table"),
    # anything but one SELECT
    ("SET memory_limit = '8GB'", "SELECT"),
    (f"DELETE FROM {SD}", "SELECT"),
    ("EXPLAIN SELECT 1", "SELECT"),
    (f"SELECT 1 AS one; SELECT * FROM {SD}", "statements"),
]


def _refused(call) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as info:
        call()
    assert info.value.rule == "engine-check", info.value
    return info.value


def _read(store: DuckDBStore, sql: str, parameters: pa.RecordBatch | None = None) -> pa.Table:
    with store.read(sql, parameters) as reader:
        return reader.read_all()


@pytest.mark.parametrize(("sql", "offender"), ESCAPES, ids=[e[0][:70] for e in ESCAPES])
def test_read_refuses_what_is_not_a_va_view(duck, files, sql: str, offender: str) -> None:
    sql = sql.format(**files)
    error = _refused(lambda: _read(duck, sql))
    assert offender.lower() in error.detail.lower()
    assert _read(duck, "SELECT count(*) AS n FROM va_pageview_event").column(0)[0].as_py() == 2


@pytest.mark.parametrize(("sql", "offender"), ESCAPES, ids=[e[0][:70] for e in ESCAPES])
def test_schema_refuses_what_is_not_a_va_view(duck, files, sql: str, offender: str) -> None:
    error = _refused(lambda: duck.schema(sql.format(**files)))
    assert offender.lower() in error.detail.lower()


def test_parameters_do_not_open_a_way_around(duck) -> None:
    one = pa.record_batch([pa.array([SD])], names=["$1"])
    _refused(lambda: _read(duck, "SELECT * FROM query_table(?)", one))
    _refused(lambda: _read(duck, f"SELECT * FROM {SD} WHERE session_id <> $1", one))
    _refused(lambda: duck.schema(f"SELECT * FROM {SD} WHERE session_id = ?"))


# (sql, parameters or None, rows expected)
ALLOWED = [
    ("SELECT page_url FROM va_pageview_event ORDER BY page_url", None, 2),
    ("SELECT * FROM main.va_pageview_event", None, 2),
    ('SELECT * FROM "VA_PageView_Event"', None, 2),
    (
        "SELECT e.page_url, h.hour FROM va_pageview_event AS e "
        "LEFT JOIN va_pageview_hourly AS h ON h.page_url = e.page_url",
        None,
        2,
    ),
    (
        "WITH daily AS (SELECT page_url FROM va_pageview_event), "
        "top AS (SELECT page_url, count(*) AS n FROM daily GROUP BY page_url) SELECT * FROM top",
        None,
        2,
    ),
    (
        "WITH m AS MATERIALIZED (SELECT * FROM va_pageview_event) SELECT * FROM m AS a, m AS b",
        None,
        4,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
        "SELECT * FROM n",
        None,
        10,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION SELECT i + 1 FROM (SELECT * FROM n) AS s "
        "WHERE i < 3) SELECT n.i, e.page_url FROM n, va_pageview_event AS e",
        None,
        6,
    ),
    ("SELECT * FROM va_pageview_event WHERE page_url IN (SELECT '/a')", None, 1),
    (
        "SELECT e.page_url, x.n FROM va_pageview_event AS e, "
        "LATERAL (SELECT count(*) AS n FROM va_pageview_aggregate AS a "
        "WHERE a.page_url = e.page_url) AS x",
        None,
        2,
    ),
    ("SELECT * FROM generate_series(1, 5)", None, 5),
    ("SELECT * FROM range(3) AS t(i)", None, 3),
    ("SELECT * FROM unnest([1, 2, 3])", None, 3),
    ("SELECT unnest([1, 2]) AS u", None, 2),
    ("SELECT * FROM (VALUES (1), (2)) AS v(x)", None, 2),
    ("SELECT page_url, rank() OVER (ORDER BY page_url) FROM va_pageview_event", None, 2),
    ("SELECT count(*) AS n FROM va_pageview_event;", None, 1),
    ("-- note\nSELECT /* c */ 1 AS one", None, 1),
    (
        "SELECT * FROM va_pageview_event WHERE page_url = ?",
        pa.record_batch([pa.array(["/a"])], names=["$1"]),
        1,
    ),
    (
        "SELECT * FROM va_pageview_event WHERE page_url = $1 OR page_url = $2",
        pa.record_batch([pa.array(["/a"]), pa.array(["/b"])], names=["$1", "$2"]),
        2,
    ),
    ("SELECT * FROM range(?) AS t(i)", pa.record_batch([pa.array([4])], names=["$1"]), 4),
    ("SELECT ? AS x", pa.record_batch([pa.array([None], pa.null())], names=["$1"]), 1),
]


@pytest.mark.parametrize(("sql", "parameters", "rows"), ALLOWED, ids=[a[0][:70] for a in ALLOWED])
def test_ordinary_queries_still_run(duck, sql: str, parameters, rows: int) -> None:
    assert _read(duck, sql, parameters).num_rows == rows
    if parameters is None or "range" not in sql:
        assert duck.schema(sql, parameters).names


@pytest.mark.parametrize(
    "sql", ["SELECT", "\u2028 SELECT 1", "SELECT missing_column FROM va_pageview_event"]
)
def test_duckdb_errors_stay_duckdb_errors(duck, sql: str) -> None:
    # A query DuckDB cannot read is the client's mistake, not a refusal: same error as unchecked.
    with pytest.raises(BackendError) as checked:
        _read(duck, sql)
    with pytest.raises(BackendError) as unchecked, duck.read_internal(sql) as reader:
        reader.read_all()
    assert checked.value.kind == unchecked.value.kind == "invalid"
    assert checked.value.reason.split(":")[0] == unchecked.value.reason.split(":")[0]


def test_schema_with_placeholders_and_no_values(duck) -> None:
    schema = duck.schema("SELECT page_url FROM va_pageview_event WHERE page_url = ?")
    assert schema.names == ["page_url"]


def test_internal_reads_are_not_checked(duck) -> None:
    # flightdeck's own catalog and bookkeeping queries read what clients may not.
    with duck.read_internal(f"SELECT session_id FROM {SD}") as reader:
        assert reader.read_all().column(0).to_pylist() == [SECRET]
    assert catalog.view_names(duck) == [
        "va_event",
        "va_pageview_aggregate",
        "va_pageview_event",
        "va_pageview_hourly",
    ]
    every = migrations.load_migrations("duckdb")
    assert [m.state for m in migrations.status(duck, every)] == ["applied"] * len(every)


def test_a_view_that_is_redefined_is_checked_against_its_new_definition(tmp_path) -> None:
    duck = _seeded_store(tmp_path / "fdcheck.duckdb")
    try:
        _redefine_and_read(duck)
    finally:
        duck.close()


def _redefine_and_read(duck: DuckDBStore) -> None:
    assert _read(duck, "SELECT * FROM va_pageview_hourly").num_rows == 0
    with duck.write() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE OR REPLACE VIEW va_pageview_hourly AS SELECT * FROM {SD}")
        conn.commit()
    assert _read(duck, "SELECT session_id FROM va_pageview_hourly").num_rows == 1
    # The view reads tb_session_day now; a query naming only another view still may not.
    _refused(lambda: _read(duck, f"SELECT * FROM va_pageview_event, {SD}"))


class _NoCheck:
    """The engine check switched off, to show the wall beneath it on its own."""

    def check(self, cursor, sql: str, parameters) -> None:
        return None


WRITES = [
    f"WITH d AS (DELETE FROM {SD} RETURNING *) SELECT count(*) AS n FROM d",
    f"WITH d AS (INSERT INTO {SD} SELECT * FROM {SD} RETURNING *) SELECT count(*) AS n FROM d",
    f"DELETE FROM {SD}",
    "CREATE TABLE tb_planted (x INTEGER)",
]


@pytest.mark.parametrize("sql", WRITES)
def test_every_read_runs_in_a_read_only_transaction(tmp_path, sql: str) -> None:
    # Beneath the guard and the engine check, DuckDB itself refuses to write on a
    # read connection: client reads and flightdeck's own alike.
    store = _seeded_store(tmp_path / "ro.duckdb")
    try:
        with store.read_internal(f"SELECT count(*) AS n FROM {SD}") as reader:
            before = reader.read_all().to_pylist()
        store._engine_check = _NoCheck()
        for read in (store.read, store.read_internal):
            with pytest.raises(BackendError, match="read-only"), read(sql) as reader:
                reader.read_all()
        with store.read_internal(f"SELECT count(*) AS n FROM {SD}") as reader:
            assert reader.read_all().to_pylist() == before
    finally:
        store.close()
