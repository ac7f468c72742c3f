"""check_query: what the SQL guard lets through, what it refuses, and what it says.

Pure unit tests: no database. Each case runs in every dialect it applies to.
"""

from __future__ import annotations

import pytest
import sqlglot
from flightdeck.views import guard
from flightdeck.views.errors import InvalidQuery, NotFound
from flightdeck.views.guard import check_query
from sqlglot import exp

KNOWN_VIEWS = frozenset({"va_pageview_aggregate", "va_pageview_hourly", "va_pageview_event"})
BOTH = ("duckdb", "postgresql")
DUCKDB = ("duckdb",)
POSTGRES = ("postgresql",)

SEED_QUERY = (
    "SELECT page_url, date, view_count, unique_visitors, bounce_rate "
    "FROM va_pageview_aggregate ORDER BY view_count DESC LIMIT 100"
)

# (sql, dialects)
ALLOWED = [
    (SEED_QUERY, BOTH),
    # Any character inside strings and quoted names; letters and symbols in comments.
    (
        "SELECT 'a\u00a0b\u2028\x0b' AS \"x\u3000y\" -- caf\u00e9 \U0001f469\u200d\U0001f4bb\n"
        "FROM va_pageview_event /* \u00e9t\u00e9 */",
        BOTH,
    ),
    (
        "SELECT a.page_url, a.view_count, h.hour FROM va_pageview_aggregate AS a "
        "JOIN va_pageview_hourly AS h ON h.page_url = a.page_url",
        BOTH,
    ),
    (
        "WITH daily AS (SELECT page_url, view_count FROM va_pageview_aggregate), "
        "top AS (SELECT page_url, sum(view_count) AS views FROM daily GROUP BY page_url) "
        "SELECT * FROM top ORDER BY views DESC",
        BOTH,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT range FROM range(1, 3) "
        "UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT count(*) FROM n",
        DUCKDB,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT g FROM generate_series(1, 3) AS g "
        "UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT count(*) FROM n",
        BOTH,
    ),
    (
        "SELECT * FROM (SELECT page_url, view_count FROM va_pageview_aggregate "
        "WHERE view_count > 10) AS busy "
        "WHERE page_url IN (SELECT page_url FROM va_pageview_event)",
        BOTH,
    ),
    (
        "SELECT a.page_url, e.n FROM va_pageview_aggregate AS a, LATERAL "
        "(SELECT count(*) AS n FROM va_pageview_event AS e WHERE e.page_url = a.page_url) AS e",
        BOTH,
    ),
    (
        "SELECT page_url, date, rank() OVER (PARTITION BY date ORDER BY view_count DESC) "
        "AS place FROM va_pageview_aggregate",
        BOTH,
    ),
    (
        "SELECT page_url FROM va_pageview_aggregate UNION SELECT page_url FROM va_pageview_hourly",
        BOTH,
    ),
    ("SELECT * FROM main.va_pageview_event", DUCKDB),
    ("SELECT * FROM public.va_pageview_event", POSTGRES),
    ('SELECT * FROM "va_pageview_event"', BOTH),
    ("SELECT * FROM VA_PAGEVIEW_EVENT", BOTH),
    # DuckDB matches even quoted names without regard to case.
    ('SELECT * FROM "VA_PageView_Event"', DUCKDB),
    ("SELECT count(*) FROM va_pageview_event;", BOTH),
    ("SELECT count(*) FROM va_pageview_event ; -- done", BOTH),
    ("SELECT count(*) FROM va_pageview_event;;", BOTH),
    ("-- top pages\nSELECT /* every column */ * FROM va_pageview_aggregate -- today", BOTH),
    (
        "SELECT * FROM va_pageview_event "
        "WHERE page_url = 'tb_pageview_event; DROP TABLE tb_pageview_event'",
        BOTH,
    ),
    ("SELECT 'read_csv(''/etc/passwd'')' AS s FROM va_pageview_event", BOTH),
    ("SELECT $x$; DELETE FROM tb_pageview_event$x$ AS s FROM va_pageview_event", BOTH),
    (
        "SELECT date_trunc('hour', recorded_at) AS h, count(*) FROM va_pageview_event GROUP BY 1",
        BOTH,
    ),
    ("SELECT * FROM generate_series(1, 5)", BOTH),
    ("SELECT * FROM range(5) AS t(i)", DUCKDB),
    ("SELECT * FROM unnest(ARRAY[1, 2, 3])", BOTH),
    ("SELECT pg_typeof(view_count) FROM va_pageview_aggregate LIMIT 1", POSTGRES),
    # A recursive CTE may read itself anywhere in the part after UNION.
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION SELECT i + 1 FROM n WHERE i < 10) "
        "SELECT count(*) FROM n",
        BOTH,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM (SELECT * FROM n) AS s "
        "WHERE i < 10 AND i IN (SELECT i FROM n)) SELECT count(*) FROM n",
        DUCKDB,
    ),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL (WITH m AS (SELECT * FROM n) "
        "SELECT i + 1 FROM m WHERE i < 10)) SELECT count(*) FROM n",
        DUCKDB,
    ),
    # A nested WITH may reuse a name: its body reads the outer CTE of that name.
    (
        "WITH c AS (SELECT page_url FROM va_pageview_event) "
        "SELECT * FROM (WITH c AS (SELECT * FROM c) SELECT * FROM c) AS s",
        BOTH,
    ),
    ("FROM va_pageview_event LIMIT 5", DUCKDB),
    ("SELECT count(*) FROM va_pageview_event WHERE page_url GLOB '/products*'", DUCKDB),
]

DROP = "DROP TABLE tb_pageview_event"
TB = "tb_pageview_event"
SD = "tb_session_day"

# (sql, rule, what the message must name, dialects)
REFUSED = [
    # Empty and garbage
    ("", "empty", "empty", BOTH),
    ("   \n\t ", "empty", "empty", BOTH),
    ("-- just a comment", "empty", "empty", BOTH),
    ("/* only a comment */", "empty", "empty", BOTH),
    (";", "empty", "empty", BOTH),
    ("SELEC * FRM", "syntax", "SELEC", BOTH),
    # Found by fuzzing: sqlglot parses a lone keyword to no statement at all.
    ("AS", "syntax", "AS", BOTH),
    ("/* SELECT 1 */ aS", "syntax", "aS", BOTH),
    ("SELECT * FROM", "syntax", "table name", BOTH),
    ("SELECT 'unterminated", "syntax", "'unterminate", BOTH),
    # Several statements, whatever hides the ';'
    (f"SELECT 1; {DROP}", "single-statement", DROP, BOTH),
    (f"SELECT 1;{DROP};", "single-statement", DROP, BOTH),
    (
        f"SELECT * FROM va_pageview_event /* */; DELETE FROM {TB}",
        "single-statement",
        "DELETE",
        BOTH,
    ),
    (f"SELECT 1 -- harmless\n; {DROP}", "single-statement", DROP, BOTH),
    ("SELECT 1; SELECT 2", "single-statement", "SELECT 2", BOTH),
    ("SELECT 1; EXPORT DATABASE '/tmp/x'", "single-statement", "EXPORT DATABASE", DUCKDB),
    # DDL and DML of every kind
    (DROP, "read-only", "DROP", BOTH),
    ("DROP VIEW va_pageview_aggregate", "read-only", "DROP", BOTH),
    ("CREATE TABLE stolen AS SELECT * FROM va_pageview_event", "read-only", "CREATE", BOTH),
    (f"CREATE VIEW va_evil AS SELECT * FROM {TB}", "read-only", "CREATE", BOTH),
    (f"ALTER TABLE {TB} ADD COLUMN x INT", "read-only", "ALTER", BOTH),
    (f"TRUNCATE {TB}", "read-only", "TRUNCATE", BOTH),
    (f"INSERT INTO {TB} SELECT * FROM va_pageview_event", "read-only", "INSERT", BOTH),
    (f"UPDATE {TB} SET page_url = '/x'", "read-only", "UPDATE", BOTH),
    (f"DELETE FROM {TB}", "read-only", "DELETE", BOTH),
    (
        f"MERGE INTO {TB} USING va_pageview_event AS v ON true WHEN MATCHED THEN DELETE",
        "read-only",
        "MERGE",
        BOTH,
    ),
    (f"GRANT SELECT ON {TB} TO PUBLIC", "read-only", "GRANT", POSTGRES),
    (f"EXPLAIN ANALYZE DELETE FROM {TB}", "read-only", "EXPLAIN", POSTGRES),
    # ';' inside a dollar-quoted body is not a statement separator.
    (f"DO $$ BEGIN DELETE FROM {TB}; END $$", "read-only", "DO", POSTGRES),
    ("VALUES (1)", "read-only", "VALUES", BOTH),
    # Writes hidden inside a query
    (f"WITH d AS (DELETE FROM {TB} RETURNING *) SELECT * FROM d", "read-only", "DELETE", BOTH),
    (
        f"WITH i AS (INSERT INTO {TB} SELECT * FROM va_pageview_event RETURNING 1) SELECT * FROM i",
        "read-only",
        "INSERT",
        POSTGRES,
    ),
    ("SELECT * INTO newtable FROM va_pageview_event", "read-only", "INTO newtable", BOTH),
    ("SELECT * FROM va_pageview_event FOR UPDATE", "read-only", "FOR UPDATE", BOTH),
    ("SELECT * FROM va_pageview_event FOR SHARE", "read-only", "FOR SHARE", POSTGRES),
    # DuckDB statements that reach outside the store
    ("ATTACH '/tmp/other.db' AS other", "read-only", "ATTACH", DUCKDB),
    ("DETACH other", "read-only", "DETACH", DUCKDB),
    ("COPY va_pageview_event TO '/tmp/out.csv'", "read-only", "COPY", BOTH),
    ("COPY (SELECT * FROM va_pageview_event) TO PROGRAM 'id'", "read-only", "COPY", POSTGRES),
    ("PRAGMA database_list", "read-only", "PRAGMA", DUCKDB),
    ("INSTALL httpfs", "read-only", "INSTALL", DUCKDB),
    ("LOAD httpfs", "read-only", "LOAD", DUCKDB),
    ("SET threads = 1", "read-only", "SET", DUCKDB),
    ("SET search_path = pg_catalog", "read-only", "SET", POSTGRES),
    ("CALL pragma_version()", "read-only", "CALL", DUCKDB),
    # tb_ tables wherever they hide
    (f"SELECT * FROM {TB}", "va-views-only", TB, BOTH),
    (f"SeLeCt * FrOm {TB.upper()}", "va-views-only", TB, BOTH),
    ('SELECT * FROM "TB_pageview_event"', "va-views-only", TB, BOTH),
    (f'SELECT * FROM "{TB}"', "va-views-only", TB, BOTH),
    (f"SELECT * FROM /* va_pageview_event */ {TB}", "va-views-only", TB, BOTH),
    (
        f"SELECT * FROM va_pageview_event -- harmless\nUNION ALL SELECT * FROM {TB}",
        "va-views-only",
        TB,
        BOTH,
    ),
    (f"SELECT * FROM (SELECT * FROM {TB}) AS s", "va-views-only", TB, BOTH),
    (
        f"SELECT * FROM va_pageview_event WHERE EXISTS (SELECT 1 FROM {TB})",
        "va-views-only",
        TB,
        BOTH,
    ),
    (
        f"SELECT * FROM va_pageview_event WHERE session_id IN (SELECT session_id FROM {TB})",
        "va-views-only",
        TB,
        BOTH,
    ),
    (f"SELECT * FROM va_pageview_event AS v JOIN {TB} AS t ON true", "va-views-only", TB, BOTH),
    (
        f"SELECT * FROM va_pageview_event AS v, LATERAL (SELECT * FROM {TB}) AS t",
        "va-views-only",
        TB,
        BOTH,
    ),
    (f"SELECT 1 FROM va_pageview_event UNION SELECT 1 FROM {TB}", "va-views-only", TB, BOTH),
    (f"SELECT 1 FROM va_pageview_event EXCEPT SELECT 1 FROM {TB}", "va-views-only", TB, BOTH),
    (f"SELECT (SELECT max(page_url) FROM {TB}) AS m", "va-views-only", TB, BOTH),
    (
        f"SELECT * FROM va_pageview_event ORDER BY (SELECT count(*) FROM {TB})",
        "va-views-only",
        TB,
        BOTH,
    ),
    ("SELECT * FROM va_pageview_event AS v, v.tb_pageview_event", "va-views-only", TB, BOTH),
    # CTEs: a CTE may hide a tb_ table, and a CTE name only counts where it is visible
    (f"WITH x AS (SELECT * FROM {TB}) SELECT * FROM x", "va-views-only", TB, BOTH),
    (
        f"WITH a AS (SELECT 1 AS n), b AS (SELECT * FROM a JOIN {TB} ON true) SELECT * FROM b",
        "va-views-only",
        TB,
        BOTH,
    ),
    # Inside its own (non-recursive) definition the name still means the real table.
    (f"WITH {TB} AS (SELECT * FROM {TB}) SELECT * FROM {TB}", "va-views-only", TB, BOTH),
    # A CTE is not visible to the CTEs before it.
    (
        f"WITH a AS (SELECT * FROM {TB}), {TB} AS (SELECT 1) SELECT * FROM a",
        "va-views-only",
        TB,
        BOTH,
    ),
    # A CTE in one subquery does not cover its sibling or the outer query.
    (
        f"SELECT * FROM (WITH {TB} AS (SELECT * FROM va_pageview_event) SELECT * FROM {TB}) "
        f"AS safe, {TB}",
        "va-views-only",
        TB,
        BOTH,
    ),
    (
        f"SELECT * FROM (WITH {TB} AS (SELECT 1) SELECT 1) AS s WHERE EXISTS (SELECT * FROM {TB})",
        "va-views-only",
        TB,
        BOTH,
    ),
    (
        f"WITH x AS (WITH {TB} AS (SELECT 1) SELECT * FROM {TB}) SELECT * FROM x, {TB}",
        "va-views-only",
        TB,
        BOTH,
    ),
    # In PostgreSQL a quoted CTE name keeps its case; the unquoted reference does not.
    (
        f'WITH "TB_PAGEVIEW_EVENT" AS (SELECT * FROM va_pageview_event) SELECT * FROM {TB}',
        "va-views-only",
        TB,
        POSTGRES,
    ),
    # A qualified name never means a CTE.
    (f"WITH {TB} AS (SELECT 1) SELECT * FROM main.{TB}", "va-views-only", TB, DUCKDB),
    # A CTE's own name, in its own body, means the real relation everywhere except
    # in the recursive part (after a plain UNION) of a WITH RECURSIVE: DuckDB binds the
    # anchor (the part before UNION) to the real table, as it does for EXCEPT, BY NAME
    # and a recursive CTE that is no UNION at all.
    (
        f"WITH RECURSIVE {SD} AS (SELECT * FROM {SD} UNION ALL SELECT * FROM {SD} WHERE false) "
        f"SELECT * FROM {SD}",
        "unverifiable",
        SD,
        BOTH,
    ),
    (
        "WITH RECURSIVE duckdb_databases AS (SELECT * FROM duckdb_databases UNION ALL "
        "SELECT * FROM duckdb_databases WHERE false) SELECT path FROM duckdb_databases",
        "unverifiable",
        "duckdb_databases",
        DUCKDB,
    ),
    (
        "WITH RECURSIVE duckdb_settings AS (SELECT * FROM duckdb_settings UNION ALL "
        "SELECT * FROM duckdb_settings WHERE false) SELECT * FROM duckdb_settings",
        "unverifiable",
        "duckdb_settings",
        DUCKDB,
    ),
    (
        "WITH RECURSIVE pg_settings AS (SELECT * FROM pg_settings UNION ALL "
        "SELECT * FROM pg_settings WHERE false) SELECT * FROM pg_settings",
        "unverifiable",
        "pg_settings",
        POSTGRES,
    ),
    (
        "WITH RECURSIVE c AS (SELECT * FROM c UNION ALL SELECT * FROM c WHERE false) "
        "SELECT * FROM c",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (  # UNION chains to the left: the anchor is everything before the last UNION.
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT * FROM c "
        "UNION ALL SELECT i + 1 FROM c WHERE i < 3) SELECT * FROM c",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "WITH RECURSIVE c(i) AS ((SELECT * FROM c UNION ALL SELECT 1) "
        "UNION ALL SELECT i + 1 FROM c WHERE i < 3) SELECT * FROM c",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "WITH RECURSIVE c(i) AS (SELECT i FROM (SELECT * FROM c) AS s "
        "UNION ALL SELECT i + 1 FROM c WHERE i < 3) SELECT * FROM c",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        f"WITH RECURSIVE {SD} AS (SELECT 1 AS n EXCEPT SELECT count(*) FROM {SD}) "
        f"SELECT * FROM {SD}",
        "unverifiable",
        SD,
        BOTH,
    ),
    (
        f"WITH RECURSIVE {SD} AS (SELECT 1 AS n INTERSECT SELECT count(*) FROM {SD}) "
        f"SELECT * FROM {SD}",
        "unverifiable",
        SD,
        BOTH,
    ),
    (
        f"WITH RECURSIVE {SD} AS (SELECT 1 AS n UNION ALL BY NAME SELECT count(*) AS n "
        f"FROM {SD}) SELECT * FROM {SD}",
        "unverifiable",
        SD,
        DUCKDB,
    ),
    (
        "WITH RECURSIVE c(i) USING KEY (i) AS (SELECT * FROM c UNION "
        "SELECT i + 1 FROM c WHERE i < 3) SELECT * FROM c",
        "unverifiable",
        "'c'",
        DUCKDB,
    ),
    ("WITH RECURSIVE c AS (SELECT * FROM c) SELECT * FROM c", "unverifiable", "'c'", BOTH),
    # ... wherever the WITH stands: in a subquery, a scalar subquery, EXISTS, a CTE.
    (
        "SELECT * FROM (WITH RECURSIVE c AS (SELECT * FROM c UNION ALL "
        "SELECT * FROM c WHERE false) SELECT * FROM c) AS s",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "SELECT (WITH RECURSIVE c AS (SELECT * FROM c UNION ALL SELECT * FROM c WHERE false) "
        "SELECT count(*) FROM c) AS n",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "SELECT * FROM va_pageview_event WHERE EXISTS (WITH RECURSIVE c AS "
        "(SELECT * FROM c UNION ALL SELECT * FROM c WHERE false) SELECT 1 FROM c)",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "WITH a AS (WITH RECURSIVE c AS (SELECT * FROM c UNION ALL SELECT * FROM c WHERE false) "
        "SELECT * FROM c) SELECT * FROM a",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    (
        "SELECT * FROM va_pageview_event AS v, LATERAL (WITH RECURSIVE c AS "
        "(SELECT * FROM c UNION ALL SELECT * FROM c WHERE false) SELECT * FROM c) AS s",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    # An outer CTE of the same name does not make the anchor's reference provable.
    (
        "WITH c(i) AS (SELECT 1) SELECT * FROM (WITH RECURSIVE c(i) AS (SELECT * FROM c "
        "UNION ALL SELECT i + 1 FROM c WHERE i < 3) SELECT * FROM c) AS s",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    # One WITH defining a name twice: which one a reference means is the engine's call.
    (
        "WITH c AS (SELECT 1 AS i), c AS (SELECT * FROM c) SELECT * FROM c",
        "unverifiable",
        "'c'",
        BOTH,
    ),
    # A CTE named like a table or a system relation is refused outright, wherever it
    # stands: where the engine and the guard disagree on scope, it could read the real one.
    (
        f"WITH {TB} AS (SELECT * FROM va_pageview_event) SELECT count(*) FROM {TB}",
        "va-views-only",
        TB,
        BOTH,
    ),
    (
        'WITH "TB_SESSION_DAY" AS (SELECT 1 AS n) SELECT * FROM "TB_SESSION_DAY"',
        "va-views-only",
        SD,
        BOTH,
    ),
    (
        "SELECT (WITH pg_class AS (SELECT 1 AS n) SELECT n FROM pg_class) AS n",
        "va-views-only",
        "pg_class",
        BOTH,
    ),
    (
        "SELECT * FROM va_pageview_event WHERE EXISTS "
        "(WITH sqlite_master AS (SELECT 1 AS n) SELECT * FROM sqlite_master)",
        "va-views-only",
        "sqlite_master",
        DUCKDB,
    ),
    (
        "SELECT * FROM va_pageview_event AS v, LATERAL (WITH duckdb_settings AS "
        "(SELECT 1 AS n) SELECT * FROM duckdb_settings) AS s",
        "va-views-only",
        "duckdb_settings",
        DUCKDB,
    ),
    (
        "WITH a AS (WITH pragma_database_list AS (SELECT 1 AS n) "
        "SELECT * FROM pragma_database_list) SELECT * FROM a",
        "va-views-only",
        "pragma_database_list",
        DUCKDB,
    ),
    # Qualifiers
    ("SELECT * FROM other_db.main.va_pageview_event", "va-views-only", "other_db", DUCKDB),
    ("SELECT * FROM analytics.va_pageview_event", "va-views-only", "analytics", BOTH),
    ("SELECT * FROM main.va_pageview_event", "va-views-only", "main", POSTGRES),
    # System catalogs
    ("SELECT * FROM pg_catalog.pg_shadow", "system-catalog", "pg_shadow", BOTH),
    ("SELECT * FROM pg_class", "system-catalog", "pg_class", BOTH),
    ("SELECT name, setting FROM pg_settings", "system-catalog", "pg_settings", POSTGRES),
    ("SELECT * FROM information_schema.tables", "system-catalog", "information_schema", BOTH),
    ("SELECT * FROM sqlite_master", "system-catalog", "sqlite_master", DUCKDB),
    ("SELECT * FROM duckdb_tables", "system-catalog", "duckdb_tables", DUCKDB),
    ("SELECT * FROM temp.main.va_pageview_event", "system-catalog", "temp", DUCKDB),
    # DuckDB files and functions
    ("SELECT * FROM read_csv('/etc/passwd')", "forbidden-function", "read_csv", BOTH),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "forbidden-function", "read_csv_auto", DUCKDB),
    ("SELECT * FROM READ_CSV('/etc/passwd')", "forbidden-function", "read_csv", DUCKDB),
    ("SELECT * FROM \"read_csv\"('/etc/passwd')", "forbidden-function", "read_csv", DUCKDB),
    (
        "SELECT * FROM read_parquet('s3://b/x.parquet')",
        "forbidden-function",
        "read_parquet",
        DUCKDB,
    ),
    ("SELECT * FROM read_json('/tmp/x.json')", "forbidden-function", "read_json", DUCKDB),
    ("SELECT * FROM read_text('/etc/passwd')", "forbidden-function", "read_text", DUCKDB),
    ("SELECT * FROM read_blob('/etc/passwd')", "forbidden-function", "read_blob", DUCKDB),
    ("SELECT * FROM glob('*')", "forbidden-function", "glob", DUCKDB),
    ("SELECT * FROM '/etc/passwd'", "forbidden-function", "/etc/passwd", DUCKDB),
    ("SELECT * FROM 'data.csv'", "forbidden-function", "data.csv", DUCKDB),
    ("SELECT * FROM 'va_pageview_event'", "forbidden-function", "va_pageview_event", DUCKDB),
    (
        "SELECT * FROM va_pageview_event AS v JOIN read_csv('/etc/passwd') AS p ON true",
        "forbidden-function",
        "read_csv",
        DUCKDB,
    ),
    ("SELECT getenv('HOME')", "forbidden-function", "getenv", DUCKDB),
    ("SELECT * FROM duckdb_settings()", "forbidden-function", "duckdb_settings", DUCKDB),
    ("SELECT * FROM duckdb_tables()", "forbidden-function", "duckdb_tables", DUCKDB),
    (f"SELECT * FROM query('SELECT * FROM {TB}')", "forbidden-function", "query", DUCKDB),
    ("SELECT * FROM dbgen(sf = 1)", "forbidden-function", "dbgen", DUCKDB),
    # Only generate_series, range and unnest may stand in FROM.
    ("SELECT * FROM json_each('{}')", "forbidden-function", "json_each", POSTGRES),
    # PostgreSQL files, network, settings and server
    ("SELECT pg_read_file('/etc/passwd')", "forbidden-function", "pg_read_file", POSTGRES),
    (
        "SELECT pg_catalog.pg_read_file('/etc/passwd')",
        "forbidden-function",
        "pg_read_file",
        POSTGRES,
    ),
    ("SELECT * FROM pg_ls_dir('.')", "forbidden-function", "pg_ls_dir", POSTGRES),
    ("SELECT lo_import('/etc/passwd')", "forbidden-function", "lo_import", POSTGRES),
    (
        "SELECT * FROM dblink('host=evil.example', 'SELECT 1') AS t(a int)",
        "forbidden-function",
        "dblink",
        POSTGRES,
    ),
    ("SELECT pg_sleep(10)", "forbidden-function", "pg_sleep", POSTGRES),
    (
        "SELECT page_url FROM va_pageview_event WHERE pg_sleep(5) IS NOT NULL",
        "forbidden-function",
        "pg_sleep",
        POSTGRES,
    ),
    (
        "SELECT set_config('search_path', 'pg_catalog', false)",
        "forbidden-function",
        "set_config",
        POSTGRES,
    ),
    (
        "SELECT current_setting('data_directory')",
        "forbidden-function",
        "current_setting",
        BOTH,
    ),
    ("SELECT nextval('tb_pageview_event_id_seq')", "forbidden-function", "nextval", BOTH),
    (
        f"SELECT query_to_xml('SELECT * FROM {TB}', true, false, '')",
        "forbidden-function",
        "query_to_xml",
        POSTGRES,
    ),
    # PostgreSQL reads t.f as f(t) for a function taking a whole row.
    (
        "SELECT t.pg_column_size FROM va_pageview_event AS t",
        "forbidden-function",
        "pg_column_size",
        POSTGRES,
    ),
    # Nested block comments close where PostgreSQL closes them.
    (
        "SELECT 1 /* a /* nested */ comment */, pg_read_file('/etc/passwd')",
        "forbidden-function",
        "pg_read_file",
        POSTGRES,
    ),
    # '$' inside a name does not open a dollar-quoted string.
    (
        "SELECT 1 AS x$y$, pg_sleep(1), 2 AS z$y$",
        "forbidden-function",
        "pg_sleep",
        BOTH,
    ),
    # In an E'' string a backslash escapes the quote, so the call is outside it.
    ("SELECT E'\\'', getenv('HOME') --'", "forbidden-function", "getenv", DUCKDB),
    # PostgreSQL decodes this name to pg_read_file; sqlglot does not.
    ("SELECT U&\"\\0070g_read_file\"('/etc/passwd')", "unverifiable", "U&", POSTGRES),
    # sqlglot reads every Unicode space as a space; DuckDB and PostgreSQL read these
    # as part of the name before them (found by the guard fuzzer).
    ("SELECT count(*) FROM va_pageview_hourly\u2028", "unverifiable", "U+2028", BOTH),
    ("SELECT\u00a0* FROM va_pageview_event", "unverifiable", "U+00A0", BOTH),
    ("SELECT * FROM\x1cva_pageview_event", "unverifiable", "U+001C", BOTH),
    ("SELECT * FROM va_pageview_event\x0bWHERE true", "unverifiable", "line 1, column 32", BOTH),
    ("SELECT 1 -- a\u2028b\nFROM va_pageview_event", "unverifiable", "U+2028", BOTH),
]


def _params(rows: list[tuple]) -> list:
    params = []
    for sql, *expected, dialects in rows:
        for dialect in dialects:
            label = " ".join(sql.split())[:60] or "<blank>"
            params.append(pytest.param(dialect, sql, *expected, id=f"{dialect}: {label}"))
    return params


def _refusal(sql: str, dialect: str) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as info:
        check_query(sql, dialect, KNOWN_VIEWS)
    return info.value


def test_public_names() -> None:
    assert guard.__all__ == ["TABLE_FUNCTIONS", "check_query", "is_forbidden_function"]


@pytest.mark.parametrize(("dialect", "sql"), _params(ALLOWED))
def test_allowed(dialect: str, sql: str) -> None:
    assert check_query(sql, dialect, KNOWN_VIEWS) is None


@pytest.mark.parametrize(("dialect", "sql", "rule", "offender"), _params(REFUSED))
def test_refused_with_rule(dialect: str, sql: str, rule: str, offender: str) -> None:
    assert _refusal(sql, dialect).rule == rule


@pytest.mark.parametrize(("dialect", "sql", "rule", "offender"), _params(REFUSED))
def test_refusal_names_rule_and_offender(dialect: str, sql: str, rule: str, offender: str) -> None:
    error = _refusal(sql, dialect)
    assert f"[{rule}]" in str(error)
    assert offender.lower() in error.detail.lower()


UNKNOWN_VIEWS = [
    ("SELECT * FROM va_nope", BOTH),
    ("SELECT * FROM va_pageview_event JOIN va_nope ON true", BOTH),
    ("WITH x AS (SELECT * FROM va_nope) SELECT * FROM x", BOTH),
    ("SELECT * FROM main.va_nope", DUCKDB),
    ("SELECT * FROM public.va_nope", POSTGRES),
]


@pytest.mark.parametrize(("dialect", "sql"), _params(UNKNOWN_VIEWS))
def test_unknown_view_is_not_found(dialect: str, sql: str) -> None:
    with pytest.raises(NotFound) as info:
        check_query(sql, dialect, KNOWN_VIEWS)
    assert info.value.kind == "view"
    assert info.value.name == "va_nope"
    assert info.value.available == sorted(KNOWN_VIEWS)
    assert "va_nope" in str(info.value)
    assert all(view in str(info.value) for view in KNOWN_VIEWS)


def test_quoted_name_keeps_its_case_in_postgresql() -> None:
    with pytest.raises(NotFound) as info:
        check_query('SELECT * FROM "VA_pageview_event"', "postgresql", KNOWN_VIEWS)
    assert info.value.name == "VA_pageview_event"


def test_refusal_lists_the_known_views() -> None:
    error = _refusal(f"SELECT * FROM {TB}", "duckdb")
    assert error.detail == (
        f"table '{TB}' is not a va_ view; queries may read only: "
        "va_pageview_aggregate, va_pageview_event, va_pageview_hourly"
    )


@pytest.mark.parametrize(
    ("call", "typed"),
    [("read_csv('/etc/passwd')", exp.ReadCSV), ("read_parquet('x.parquet')", exp.ReadParquet)],
)
@pytest.mark.parametrize("dialect", BOTH)
def test_typed_file_readers_are_refused(dialect: str, call: str, typed: type) -> None:
    # sqlglot parses these two into typed classes, not exp.Anonymous; pin that, so the
    # test keeps meaning what it says if sqlglot changes.
    read = "postgres" if dialect == "postgresql" else dialect
    assert sqlglot.parse_one(f"SELECT * FROM {call}", read=read).find(typed) is not None
    for sql in (f"SELECT * FROM {call}", f"SELECT {call}"):
        assert _refusal(sql, dialect).rule == "forbidden-function"


FORBIDDEN_CALLS = [
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "parquet_metadata",
    "parquet_schema", "read_json", "read_json_auto", "read_ndjson", "read_ndjson_objects",
    "read_text", "read_blob", "sniff_csv", "iceberg_scan", "delta_scan", "sqlite_scan",
    "sqlite_attach", "postgres_scan", "postgres_query", "mysql_query", "query", "query_table",
    "getenv", "current_setting", "set_config", "pg_read_file", "pg_read_binary_file",
    "pg_ls_dir", "pg_stat_file", "pg_sleep", "pg_sleep_for", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
    "pg_advisory_lock", "lo_import", "lo_export", "lo_unlink", "dblink", "dblink_exec",
    "nextval", "setval", "txid_current", "duckdb_settings", "pragma_version", "checkpoint",
    "http_get", "http_post", "load_extension", "query_to_xml", "table_to_xml", "ts_stat",
]  # fmt: skip


@pytest.mark.parametrize("name", FORBIDDEN_CALLS)
@pytest.mark.parametrize("dialect", BOTH)
def test_forbidden_functions_anywhere(dialect: str, name: str) -> None:
    for sql in (
        f"SELECT {name}('x')",
        f"SELECT * FROM {name}('x')",
        f"SELECT * FROM va_pageview_event WHERE {name.upper()}('x') IS NULL",
        f"SELECT \"{name}\"('x') FROM va_pageview_event",
    ):
        error = _refusal(sql, dialect)
        assert (error.rule, name in error.detail) == ("forbidden-function", True), sql


def test_glob_is_refused() -> None:
    # DuckDB's glob() lists files. sqlglot's postgres dialect reads glob() as the
    # GLOB operator and cannot parse one argument, which is refused as syntax.
    assert _refusal("SELECT * FROM glob('/etc/*')", "duckdb").rule == "forbidden-function"
    assert _refusal("SELECT glob('/etc/*')", "postgresql").rule == "syntax"


def test_scope_analysis_failure_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(expression: exp.Expression) -> list:
        raise RuntimeError("no scopes today")

    monkeypatch.setattr(guard, "traverse_scope", broken)
    error = _refusal("SELECT * FROM va_pageview_event", "duckdb")
    assert (error.rule, "no scopes today" in error.detail) == ("unverifiable", True)


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="sqlite"):
        check_query("SELECT 1", "sqlite", KNOWN_VIEWS)


# PostgreSQL reads `(x).f` and `x.f` as the call f(x) when f takes one argument, so a
# forbidden function can be reached with no '(' after its name. Every shape of value
# a field can be selected from: literal, cast, subquery, function result, row
# constructor, parameter, column and whole row; and every clause it can sit in.
FIELD_SELECTIONS = [
    "SELECT ('/etc/passwd'::text).{f} AS f",
    "SELECT (CAST('/etc' AS text)).{f}",
    "SELECT ((SELECT 'x')).{f}",
    "SELECT (lower('x')).{f}",
    "SELECT (ROW('x')).{f}",
    "SELECT (('x')).{f}",
    "SELECT ('x')  .  {f}",
    "SELECT ('x').\"{f}\"",
    "SELECT ('/etc'::text).{f}[1]",
    "SELECT (1::bigint).{f}",
    "SELECT ($1).{f}",
    "SELECT (e.page_url).{f} FROM va_pageview_event AS e",
    "SELECT (e).{f} FROM va_pageview_event AS e",
    "SELECT e.page_url.{f} FROM va_pageview_event AS e",
    "SELECT e.{f}.x FROM va_pageview_event AS e",
    "SELECT public.va_pageview_event.page_url.{f} FROM public.va_pageview_event",
    "SELECT * FROM va_pageview_event WHERE ('x'::text).{f} IS NOT NULL",
    "SELECT page_url FROM va_pageview_event ORDER BY (page_url).{f}",
    "WITH c AS (SELECT ('x'::text).{f} AS v) SELECT v FROM c",
    "SELECT count(*) FROM va_pageview_event GROUP BY page_url HAVING max((page_url).{f}) > ''",
]

# What the issue reached that way, and the families it belongs to: files, settings,
# SQL run from text, locks (advisory ones included), large objects, the network.
FIELD_SELECTED_FUNCTIONS = [
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "current_setting",
    "set_config", "ts_stat", "query_to_xml", "lo_from_bytea", "lo_export", "lo_import",
    "lo_get", "lowrite", "loread", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_try_advisory_lock", "pg_advisory_lock_shared", "dblink", "txid_current", "nextval",
]  # fmt: skip


@pytest.mark.parametrize("name", FIELD_SELECTED_FUNCTIONS)
@pytest.mark.parametrize("shape", FIELD_SELECTIONS)
def test_functional_notation_is_refused_in_postgresql(shape: str, name: str) -> None:
    sql = shape.format(f=name)
    error = _refusal(sql, "postgresql")
    assert error.rule in ("forbidden-function", "unverifiable"), (sql, error)
    assert name in error.detail, (sql, error.detail)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT (ROW(1, 2)).f1",
        "SELECT ((SELECT e FROM va_pageview_event AS e LIMIT 1)).page_url",
        "SELECT (e).page_url FROM va_pageview_event AS e",
        "SELECT (va_pageview_event.*).page_url FROM va_pageview_event",
        "SELECT ('x'::text).my_own_function",
        "SELECT (array['a'])[1].x",
    ],
)
def test_field_selection_on_an_expression_is_unverifiable_in_postgresql(sql: str) -> None:
    # Whether `.name` is a field or a call depends on the value's type and on which
    # one-argument functions exist, which the guard cannot know: refuse them all.
    error = _refusal(sql, "postgresql")
    assert error.rule == "unverifiable", (sql, error)
    assert "field" in error.detail


def test_qualified_columns_stay_allowed_in_postgresql() -> None:
    for sql in (
        "SELECT e.page_url FROM va_pageview_event AS e",
        "SELECT va_pageview_event.page_url FROM va_pageview_event",
        "SELECT public.va_pageview_event.page_url FROM public.va_pageview_event",
    ):
        check_query(sql, "postgresql", KNOWN_VIEWS)


# Functions that take locks, write large objects or change settings: refused as a
# family (by prefix), whether or not they are listed one by one.
LOCK_WRITE_SETTING_CALLS = [
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
    "pg_advisory_unlock", "pg_advisory_unlock_all", "lo_from_bytea", "lo_create", "lo_creat",
    "lo_put", "lo_open", "lo_truncate", "lowrite", "loread", "lo_unlink", "set_config",
    "current_setting", "pg_reload_conf", "pg_logical_emit_message", "bt_index_check",
]  # fmt: skip


@pytest.mark.parametrize("name", LOCK_WRITE_SETTING_CALLS)
@pytest.mark.parametrize("dialect", BOTH)
def test_lock_large_object_and_setting_functions_are_refused(dialect: str, name: str) -> None:
    for sql in (f"SELECT {name}(1)", f"SELECT * FROM va_pageview_event WHERE {name}(1) > 0"):
        error = _refusal(sql, dialect)
        assert (error.rule, name in error.detail) == ("forbidden-function", True), sql


# A query cut short names the SQL clause or operator left incomplete, never the
# parser's own classes ("Required keyword: 'this' missing for <class ...Where>").
INCOMPLETE = [
    ("SELECT * FROM va_pageview_event WHERE", "WHERE"),
    ("SELECT 1 FROM va_pageview_event WHERE ORDER BY 1", "WHERE"),
    ("SELECT * FROM va_pageview_event HAVING", "HAVING"),
    ("SELECT * FROM va_pageview_event ORDER BY", "ORDER BY"),
    ("SELECT * FROM va_pageview_event LIMIT", "LIMIT"),
    ("SELECT * FROM va_pageview_event WHERE view_count BETWEEN 1", "BETWEEN"),
    ("SELECT * FROM va_pageview_event WHERE view_count = ", "operator"),
    ("SELECT 1 + FROM va_pageview_event", "operator"),
    ("SELECT * FROM va_pageview_event WHERE NOT", "NOT"),
    ("WITH a AS () SELECT 1", "WITH"),
]
# Cut at every token, these cover the parser's "missing" errors broadly.
_WHOLE = [
    "WITH d AS (SELECT day, SUM(view_count) AS n FROM va_pageview_aggregate WHERE day >= "
    "DATE '2024-01-01' AND NOT view_count BETWEEN 1 AND 9 GROUP BY day HAVING SUM(view_count)"
    " > 1) SELECT day, n * 2 + 1 FROM d ORDER BY n DESC LIMIT 5 OFFSET 1",
    "SELECT CAST(view_count AS BIGINT) - 1 FROM va_pageview_aggregate AS a JOIN"
    " va_pageview_aggregate AS b ON a.day = b.day"
    " WHERE a.view_count IN (1, 2) OR b.view_count < -3",
]


@pytest.mark.parametrize(("sql", "named"), INCOMPLETE)
@pytest.mark.parametrize("dialect", BOTH)
def test_incomplete_query_names_the_clause_in_sql_terms(dialect: str, sql: str, named: str) -> None:
    error = _refusal(sql, dialect)
    assert error.rule == "syntax"
    assert named in error.detail, error.detail
    assert "<class" not in error.detail and "sqlglot" not in error.detail, error.detail


@pytest.mark.parametrize("dialect", BOTH)
def test_no_truncated_query_leaks_parser_internals(dialect: str) -> None:
    for whole in _WHOLE:
        words = whole.split(" ")
        for cut in range(1, len(words)):
            sql = " ".join(words[:cut])
            try:
                check_query(sql, dialect, KNOWN_VIEWS)
            except (InvalidQuery, NotFound) as error:
                text = str(error)
                assert "<class" not in text and "sqlglot" not in text and "Required" not in text, (
                    sql,
                    text,
                )
