"""The ADBC store on both backends: streaming reads, conformed types, defence in depth."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from flightdeck.views import BackendError, InvalidQuery, StoreOptions, migrations, open_store


def test_read_streams_conformed_types(store):
    sql = (
        "SELECT CAST('2024-01-15 10:00:00+00' AS TIMESTAMPTZ) AS ts, CAST('x' AS TEXT) AS s, "
        "CAST(1.5 AS NUMERIC(5,2)) AS n, CAST('{\"a\": 1}' AS JSON) AS j"
    )
    with store.read(sql) as reader:
        table = reader.read_all()
    assert table.schema.field("ts").type == pa.timestamp("us", "UTC")
    assert table.schema.field("s").type == pa.string()
    assert table.schema.field("j").type == pa.string()
    assert table.schema.field("n").type == pa.decimal128(5, 2)
    assert table.column("n").to_pylist()[0] == __import__("decimal").Decimal("1.50")
    assert not table.schema.metadata
    assert store.schema(sql).field("ts").type == pa.timestamp("us", "UTC")


def test_unconstrained_numbers_arrive_as_numbers(store):
    with store.read("SELECT sum(x) AS s FROM (SELECT CAST(3 AS BIGINT) AS x) AS t") as reader:
        value = reader.read_all().column("s").to_pylist()[0]
    assert value == 3 and not isinstance(value, str)


def test_reads_are_batches_not_one_table(store):
    with store.read(
        "SELECT * FROM range(100000) AS t(i)"
        if store.backend == "duckdb"
        else "SELECT i FROM generate_series(1, 100000) AS i"
    ) as reader:
        assert isinstance(reader, pa.RecordBatchReader)
        sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 100_000


def test_backend_error_keeps_the_backends_reason(store):
    with pytest.raises(BackendError) as err:
        with store.read("SELECT missing_column FROM va_pageview_event") as reader:
            reader.read_all()
    assert "missing_column" in err.value.reason
    assert err.value.kind == "invalid"
    with store.read("SELECT 1 AS one") as reader:  # the store keeps serving
        assert reader.read_all().column(0).to_pylist() == [1]


def test_read_connections_cannot_write(store):
    # On DuckDB the engine check refuses a client's write first; flightdeck's own
    # unchecked reads show the read-only transaction beneath it.
    read = store.read_internal if store.backend == "duckdb" else store.read
    with pytest.raises(BackendError, match="read-only"):
        with read("CREATE TABLE sneaky (a int)") as reader:
            reader.read_all()


def test_duckdb_cannot_reach_files_even_unguarded(store):
    if store.backend != "duckdb":
        pytest.skip("DuckDB-only defence")
    for sql in ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/hostname'"]:
        with pytest.raises(InvalidQuery, match="engine-check"), store.read(sql) as reader:
            reader.read_all()
        # Even flightdeck's own, unchecked path cannot: external access is off for good.
        with pytest.raises(BackendError, match=r"(?i)permission|disabled|does not exist"):
            with store.read_internal(sql) as reader:
                reader.read_all()
    with pytest.raises(BackendError):
        with store.read_internal("SET enable_external_access = true") as reader:
            reader.read_all()


def test_duckdb_buffer_pool_is_bounded_by_the_setting(tmp_path):
    # DuckDB's own default is 80 % of RAM, kept full of every block a scan touched.
    store = open_store(StoreOptions(data_dir=tmp_path, duckdb_memory_limit="100MB"))
    try:
        with store.read_internal("SELECT current_setting('memory_limit') AS m") as reader:
            assert reader.read_all().column("m")[0].as_py() in ("95.3 MiB", "100.0 MB")
        with pytest.raises(BackendError), store.read_internal("SET memory_limit = '8GB'") as r:
            r.read_all()  # and no query, not even flightdeck's own, can raise it again
    finally:
        store.close()


def test_statement_timeout(db_url, backend, tmp_path):
    slow = {
        "postgresql": "SELECT pg_sleep(5)",
        "duckdb": "SELECT count(*) FROM range(100000000000) AS a(i)",
    }[backend]
    store = open_store(StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=0.3))
    try:
        migrations.apply(store, migrations.load_migrations(store.backend))  # the reader role
        with pytest.raises(BackendError) as err:
            with store.read(slow) as reader:
                reader.read_all()
        assert err.value.kind == "timeout", err.value.reason
        with store.read("SELECT 1 AS one") as reader:  # and the store still serves
            assert reader.read_all().num_rows == 1
    finally:
        store.close()


def test_concurrent_reads_from_many_threads(store):
    errors: list[Exception] = []

    def work() -> None:
        try:
            for _ in range(5):
                with store.read("SELECT count(*) AS n FROM va_pageview_event") as reader:
                    assert reader.read_all().column(0).to_pylist() == [0]
        except Exception as exc:  # collected: asserting in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_write_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.write() as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tb_pageview_hourly (page_url, hour, view_count, unique_visitors, "
                "computed_at) VALUES ('/x', CURRENT_TIMESTAMP, 1, 1, CURRENT_TIMESTAMP)"
            )
        raise RuntimeError("fail before commit")
    with store.read("SELECT count(*) AS n FROM va_pageview_hourly") as reader:
        assert reader.read_all().column(0).to_pylist() == [0]


def test_unreachable_postgres_is_a_clear_error(tmp_path):
    from benchmarks.postgres_server import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(BackendError) as err:
        open_store(StoreOptions(db=url, data_dir=tmp_path))
    assert err.value.backend == "postgresql"


def test_driver_errors_are_classified_by_code_not_by_words(store):
    # A column named like a kind of failure is still a mistake in the query.
    for column in ("timeout", "connection", "cancelled", "interrupt"):
        with pytest.raises(BackendError) as err:
            with store.read(f"SELECT {column} FROM va_pageview_event") as reader:
                reader.read_all()
        assert err.value.kind == "invalid", (column, err.value.reason)
