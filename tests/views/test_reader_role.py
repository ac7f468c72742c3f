"""The second wall: what the database alone refuses when a query gets past the guard.

Every query here goes straight to `store.read`, the path client queries take,
with the guard switched off (it is never called). On PostgreSQL that path logs
in as the least-privilege reader role; on DuckDB the store checks the relations
and table functions of DuckDB's own plan. Either way a read of a tb_ table, a
catalog, a file or a setting must fail or return no marker, and nothing the
query did (a setting, a lock, a large object, a file) may outlive it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from flightdeck.base_error import FlightdeckError
from flightdeck.ingest import ingest
from flightdeck.views import StoreOptions, migrations, open_store
from flightdeck.views.reader_role import ReaderRoleError

SECRET = "ZQX-READER-SECRET-51"  # only in tb_ tables
CATALOG_TABLE = "tb_zqxreadercatalog52"  # its name shows only in a catalog
OLD_INGEST_LOCK_KEY = 0x666C6463  # the advisory lock key ingest used to take turns on
OUT_FILE = Path("/tmp/flightdeck-reader-role-escape.out")

# The issue's escapes, as a reader would send them, and their DuckDB counterparts.
POSTGRES_ESCAPES = [
    "SELECT ('/etc/passwd'::text).pg_read_file AS f",
    "SELECT pg_read_file('/etc/passwd') AS f",
    "SELECT ('.'::text).pg_ls_dir AS f",
    "SELECT ('data_directory'::text).current_setting AS f",
    "SELECT * FROM ts_stat('SELECT to_tsvector(session_id) FROM tb_session_day')",
    "SELECT ('SELECT to_tsvector(secret) FROM tb_reader_secret'::text).ts_stat AS f",
    "SELECT * FROM ts_stat('SELECT to_tsvector(rolname || rolpassword) FROM pg_shadow')",
    "SELECT query_to_xml('SELECT * FROM tb_reader_secret', true, true, '') AS x",
    "SELECT * FROM tb_reader_secret",
    "SELECT * FROM public.tb_session_day",
    "WITH RECURSIVE tb_session_day AS (SELECT * FROM tb_session_day UNION ALL "
    "SELECT * FROM tb_session_day WHERE false) SELECT * FROM tb_session_day",
    "SELECT * FROM pg_shadow",
    "SELECT rolname, rolpassword FROM pg_authid",
    "SELECT password FROM tb_reader_credential",
    "SELECT * FROM tb_flightdeck_migration",
    "SELECT set_config('default_transaction_read_only', 'off', false) AS s",
    "SELECT set_config('statement_timeout', '0', false) AS s",
    "SET default_transaction_read_only = off",
    "SELECT set_config('search_path', 'pg_temp', false) AS s",
    "SELECT lo_from_bytea(0, 'ZQX') AS o",
    f"SELECT lo_export(lo_from_bytea(0, 'ZQX'), '{OUT_FILE}') AS o",
    f"COPY (SELECT 1) TO '{OUT_FILE}'",
    f"COPY (SELECT 1) TO PROGRAM 'touch {OUT_FILE}'",
    f"SELECT ({OLD_INGEST_LOCK_KEY}::bigint).pg_advisory_lock AS l",
    f"SELECT pg_advisory_lock({OLD_INGEST_LOCK_KEY}) AS l",
    "LOCK TABLE tb_ingest_turn IN EXCLUSIVE MODE",
    "LOCK TABLE tb_ingest_gate IN ROW SHARE MODE",
    "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)",
    "SELECT pg_reload_conf() AS r",
    "SELECT nextval('sq_pageview_version') AS n",
    "RESET ROLE",
    "SET ROLE postgres",
    "ALTER ROLE CURRENT_USER PASSWORD 'ZQX'",
    "BEGIN",
    "CREATE TEMP TABLE t AS SELECT 1 AS a",
]
DUCKDB_ESCAPES = [
    "WITH RECURSIVE tb_session_day AS (SELECT * FROM tb_session_day UNION ALL "
    "SELECT * FROM tb_session_day WHERE false) SELECT * FROM tb_session_day",
    "SELECT * FROM tb_reader_secret",
    "SELECT * FROM main.tb_session_day",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM query('SELECT * FROM tb_reader_secret')",
    "SET threads = 1",
]


def _markers(store) -> tuple[str, ...]:
    # The secret value and, on DuckDB, a table's name (found only through a catalog)
    # and the database file's path (what duckdb_databases() gave away). PostgreSQL's
    # catalogs are readable by every role by design (drivers read pg_type to log
    # in): names show there; contents, files and settings do not.
    if store.backend == "duckdb":
        return (SECRET, "root:x:0:0", CATALOG_TABLE, str(store.path))
    return (SECRET, "root:x:0:0")


def _rows(store, sql: str, internal: bool = True) -> list[dict]:
    with store.read_internal(sql) if internal else store.read(sql) as reader:
        return reader.read_all().to_pylist()


def _seed(store) -> None:
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE tb_reader_secret (secret TEXT)")
        cursor.execute(f"INSERT INTO tb_reader_secret VALUES ('{SECRET}')")
        cursor.execute(f"CREATE TABLE {CATALOG_TABLE} (x INTEGER)")
        cursor.execute(
            "INSERT INTO tb_session_day (session_id, day, views, first_at, last_at) VALUES "
            f"('{SECRET}', DATE '2024-01-15', 1, TIMESTAMPTZ '2024-01-15 10:00:00+00', "
            "TIMESTAMPTZ '2024-01-15 10:00:00+00')"
        )
        conn.commit()


def _state(store) -> dict:
    """What an escaped query could leave behind, seen by the owner and by a reader."""
    if store.backend == "postgresql":
        session = (
            "SELECT current_user AS who, current_setting('default_transaction_read_only') AS ro, "
            "current_setting('statement_timeout') AS timeout, "
            "current_setting('search_path') AS path"
        )
        owner = {
            "advisory_locks": _rows(
                store, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
            ),
            "large_objects": _rows(store, "SELECT count(*) AS n FROM pg_largeobject_metadata"),
            "roles": _rows(
                store,
                "SELECT a.rolname, a.rolpassword, r.rolconfig FROM pg_authid a "
                "JOIN pg_roles r ON r.oid = a.oid "
                "WHERE a.rolname LIKE 'flightdeck_reader%' ORDER BY a.rolname",
            ),
        }
    else:
        session = (
            "SELECT current_setting('enable_external_access') AS ext, "
            "current_setting('lock_configuration') AS locked, current_setting('threads') AS t"
        )
        owner = {}
    return {
        **owner,
        # DuckDB's settings belong to the database (each read has a fresh connection),
        # and its client path may not read settings at all: the owner looks.
        "session": _rows(store, session, internal=store.backend == "duckdb"),
        "secret": _rows(store, "SELECT * FROM tb_reader_secret"),
        "file": OUT_FILE.exists(),
    }


def _escapes(backend: str) -> list[str]:
    return POSTGRES_ESCAPES if backend == "postgresql" else DUCKDB_ESCAPES


@pytest.mark.parametrize(
    ("backend", "sql"),
    [
        pytest.param(backend, sql, id=f"{backend}: {sql[:60]}")
        for backend in ("duckdb", "postgresql")
        for sql in _escapes(backend)
    ],
)
def test_the_database_alone_refuses_the_issue_escapes(store, sql: str) -> None:
    OUT_FILE.unlink(missing_ok=True)
    _seed(store)
    _rows(store, "SELECT 1 AS ok", internal=False)  # the reader's login is set up
    before = _state(store)
    try:
        with store.read(sql) as reader:
            result = reader.read_all()
    except FlightdeckError:
        pass  # refused by the database (or the store's own check of the plan)
    else:
        text = repr(result.to_pylist())
        for marker in _markers(store):
            assert marker not in text, f"{sql!r} read {marker!r} with the guard off"
    assert _state(store) == before, f"{sql!r} left something behind"
    with store.read("SELECT 1 AS ok") as reader:  # and reads still work
        assert reader.read_all().num_rows == 1


# ---------------------------------------------------------------------------
# The reader role itself (PostgreSQL)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_queries_log_in_as_a_least_privilege_role(store) -> None:
    (who,) = _rows(store, "SELECT current_user AS who, session_user AS login", internal=False)
    assert who["who"] == who["login"] != "postgres"  # its own login, not SET ROLE
    (role,) = _rows(
        store,
        "SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "rolcanlogin, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS groups, "
        "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owns "
        f"FROM pg_roles r WHERE rolname = '{who['who']}'",
    )
    assert role == {
        "rolsuper": False,
        "rolinherit": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolreplication": False,
        "rolbypassrls": False,
        "rolcanlogin": True,
        "groups": 0,
        "owns": 0,
    }
    privileges = _rows(
        store,
        "SELECT c.relname AS name, has_table_privilege("
        f"'{who['who']}', c.oid, 'SELECT') AS can_select FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S') ORDER BY 1",
    )
    readable = {p["name"] for p in privileges if p["can_select"]}
    assert readable == {
        "va_event",
        "va_pageview_aggregate",
        "va_pageview_event",
        "va_pageview_hourly",
    }
    assert any(p["name"].startswith("tb_") for p in privileges)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_reader_logs_in_with_a_password(store, db_url: str) -> None:
    _rows(store, "SELECT 1 AS ok", internal=False)  # the first read sets the password
    (row,) = _rows(store, "SELECT role_name, password FROM tb_reader_credential")
    host = db_url.split("@", 1)[1]
    with pg.connect(f"postgresql://{row['role_name']}:{row['password']}@{host}") as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM va_pageview_event")
            assert cursor.fetchone() == (0,)
    with pytest.raises(pg.Error, match="password authentication failed"):
        pg.connect(f"postgresql://{row['role_name']}:wrong@{host}").close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_processes_on_one_database_share_the_password(store, db_url: str, tmp_path) -> None:
    other = open_store(StoreOptions(db=db_url, data_dir=tmp_path))
    try:
        for s in (other, store, other):  # the second store set nothing new
            with s.read("SELECT count(*) AS n FROM va_pageview_event") as reader:
                assert reader.read_all().column(0).to_pylist() == [0]
        # A fresh store logs in after its password was changed behind its back.
        with store.write() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT role_name FROM tb_reader_credential")
            (role,) = cursor.fetchone()
            cursor.execute(f"ALTER ROLE \"{role}\" PASSWORD 'changed'")
            conn.commit()
    finally:
        other.close()
    again = open_store(StoreOptions(db=db_url, data_dir=tmp_path))
    try:
        with again.read("SELECT 1 AS ok") as reader:
            assert reader.read_all().num_rows == 1
    finally:
        again.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_reader_cannot_stop_ingest(store, db_url: str) -> None:
    _rows(store, "SELECT 1 AS ok", internal=False)  # the first read sets the password
    (row,) = _rows(store, "SELECT role_name, password FROM tb_reader_credential")
    host = db_url.split("@", 1)[1]
    # A reader session holding every lock it can get, on the old key and the new table.
    with pg.connect(f"postgresql://{row['role_name']}:{row['password']}@{host}") as reader:
        with reader.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_lock({OLD_INGEST_LOCK_KEY})")
            cursor.fetchall()
            for table in ("tb_ingest_turn", "tb_ingest_gate"):
                with pytest.raises(pg.Error, match="permission denied"):
                    cursor.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
                reader.rollback()
        done = threading.Event()
        batch = pa.RecordBatch.from_pydict(
            {"session_id": ["s"], "page_url": ["/p"], "timestamp": ["2024-01-15T10:00:00Z"]}
        )
        worker = threading.Thread(target=lambda: (ingest(store, [batch]), done.set()))
        worker.start()
        assert done.wait(30), "ingest waited on a lock a reader holds"
        worker.join()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_views_keep_their_grant_when_recreated_or_added(store, tmp_path) -> None:
    views = tmp_path / "views"
    views.mkdir()
    (views / "va_custom.sql").write_text("SELECT page_url FROM tb_pageview_event")

    def count() -> list:
        with store.read("SELECT count(*) AS n FROM va_custom") as reader:
            return reader.read_all().column(0).to_pylist()

    migrations.apply(store, migrations.load_migrations(store.backend, [views]))
    assert count() == [0]  # added after the reader was set up
    (views / "va_custom.sql").write_text("SELECT page_url, session_id FROM tb_pageview_event")
    assert [
        m.name for m in migrations.apply(store, migrations.load_migrations("postgresql", [views]))
    ] == ["va_custom"]
    assert count() == [0]  # re-created: DROP took its grant, the migration gave it back


def _readme_reader_sql(role: str, password: str, database: str) -> list[str]:
    """The README's SQL for a managed PostgreSQL, as written but for the names."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("### PostgreSQL reader role") :]
    sql = section[section.index("```sql\n") + 7 : section.index("```", section.index("```sql") + 6)]
    sql = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    sql = sql.replace("choose-a-long-random-password", password)
    sql = sql.replace("DATABASE flightdeck", f"DATABASE {database}")
    sql = sql.replace("flightdeck_reader", role)
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_operator_made_reader_role(store, db_url: str, tmp_path) -> None:
    host = db_url.split("@", 1)[1]
    database = db_url.rsplit("/", 1)[1]
    role = f"ops_reader_{database}"
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        for statement in _readme_reader_sql(role, "ops-secret", database):
            cursor.execute(statement)
        conn.commit()
    url = f"postgresql://{role}:ops-secret@{host}"
    ops = open_store(StoreOptions(db=db_url, data_dir=tmp_path, read_db=url))
    try:
        (who,) = _rows(ops, "SELECT current_user AS who", internal=False)
        assert who == {"who": role}
        with ops.read("SELECT count(*) AS n FROM va_pageview_event") as reader:
            assert reader.read_all().column(0).to_pylist() == [0]  # granted at start
    finally:
        ops.close()


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("power", ["superuser", "table", "member"])
def test_a_too_powerful_reader_url_stops_the_start(store, db_url: str, tmp_path, power) -> None:
    host = db_url.split("@", 1)[1]
    role = f"strong_{power}_{db_url.rsplit('/', 1)[1]}"
    grant = {
        "superuser": f"ALTER ROLE {role} SUPERUSER",
        "table": f"GRANT SELECT ON tb_pageview_event TO {role}",
        "member": f"GRANT pg_read_server_files TO {role}",
    }[power]
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        cursor.execute(grant)
        conn.commit()
    strong = open_store(
        StoreOptions(db=db_url, data_dir=tmp_path, read_db=f"postgresql://{role}:pw@{host}")
    )
    try:
        with pytest.raises(ReaderRoleError) as err:
            with strong.read("SELECT 1 AS ok") as reader:
                reader.read_all()
    finally:
        strong.close()
    expected = {
        "superuser": "is a superuser",
        "table": "tb_pageview_event",
        "member": "pg_read_server_files",
    }[power]
    assert err.value.role == role and expected in str(err.value), str(err.value)


def test_login_and_session_options_keep_the_rest_of_the_url() -> None:
    from flightdeck.views import reader_role

    url = "postgresql://admin:secret@db.example:5433/app?sslmode=require&user=admin"
    login = reader_role._with_login(url, "flightdeck_reader_app", "p/w+=")
    assert (
        login
        == "postgresql://flightdeck_reader_app:p%2Fw%2B%3D@db.example:5433/app?sslmode=require"
    )
    assert reader_role.url_user(login) == "flightdeck_reader_app"
    session = reader_role.with_session(login + "&options=-c%20work_mem%3D8MB", 1500)
    assert session.startswith("postgresql://flightdeck_reader_app:p%2Fw%2B%3D@db.example:5433/app?")
    assert "sslmode=require" in session
    assert (
        "options=-c%20work_mem%3D8MB%20-c%20default_transaction_read_only%3Don"
        "%20-c%20statement_timeout%3D1500" in session
    )


def test_the_reader_login_keeps_a_multi_host_url_and_asks_for_the_primary():
    """A failover URL (several hosts, target_session_attrs=read-write) keeps its hosts for
    the reader; but its sessions are read-only by default, which libpq's read-write test
    takes for a standby, so the reader asks for the primary instead (libpq 14+)."""
    from flightdeck.views import reader_role

    owner = "postgresql://app:pw@h1:5432,h2:5433/app?target_session_attrs=read-write"
    login = reader_role._with_login(owner, "flightdeck_reader_app", "secret")
    session = reader_role.with_session(login, 1500)
    assert session.startswith("postgresql://flightdeck_reader_app:secret@h1:5432,h2:5433/app?")
    assert "target_session_attrs=primary" in session
    assert "read-write" not in session
    assert reader_role.url_user(session) == "flightdeck_reader_app"
