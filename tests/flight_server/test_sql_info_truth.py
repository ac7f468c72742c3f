"""SqlInfo's claims about identifiers, null ordering and timeouts hold on each backend.

Each claim is read from the `sql_info` table the server sends for CommandGetSqlInfo
(ADBC's get_info asks only for a few ids) and checked by a query through the server.
"""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as flightsql
import pytest
from flightdeck.flight_server.flight_sql import sql_info

IDENTIFIER_CASE, QUOTED_IDENTIFIER_CASE, NULL_ORDERING = 503, 505, 507
INSENSITIVE, UPPER, LOWER = 1, 2, 3
NULLS_HIGH, NULLS_AT_END = 0, 3
# NULL, 2, 3 in one column, from a function the guard lets through.
WITH_NULL = (
    "SELECT CASE WHEN g = 1 THEN NULL ELSE g END AS x FROM generate_series(1, 3) AS t(g) "
    "ORDER BY x {direction}"
)


def _claims(backend: str) -> dict[int, object]:
    table = sql_info.sql_info([], backend, "test", statement_timeout_s=30)
    return dict(zip(table["info_name"].to_pylist(), table["value"].to_pylist(), strict=True))


@pytest.fixture
def cursor(server):
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}", autocommit=True) as conn:
        with conn.cursor() as cur:
            yield cur


def _runs(cursor, sql: str) -> bool:
    try:
        cursor.execute(sql)
        cursor.fetchall()
        return True
    except flightsql.Error:
        return False


def test_unquoted_identifiers_are_case_insensitive_as_claimed(cursor, backend):
    assert _claims(backend)[IDENTIFIER_CASE] in (INSENSITIVE, LOWER)
    assert _runs(cursor, "SELECT PAGE_URL FROM VA_PAGEVIEW_EVENT")
    assert _runs(cursor, "SELECT Page_Url FROM Va_Pageview_Event")


def test_quoted_identifiers_case_as_claimed(cursor, backend):
    insensitive = _claims(backend)[QUOTED_IDENTIFIER_CASE] == INSENSITIVE
    assert _runs(cursor, 'SELECT "page_url" FROM "va_pageview_event"')
    assert _runs(cursor, 'SELECT "PAGE_URL" FROM va_pageview_event') == insensitive


def test_nulls_sort_as_claimed(cursor, backend):
    cursor.execute(WITH_NULL.format(direction="ASC"))
    ascending = [row[0] for row in cursor.fetchall()]
    cursor.execute(WITH_NULL.format(direction="DESC"))
    descending = [row[0] for row in cursor.fetchall()]
    claim = _claims(backend)[NULL_ORDERING]
    if claim == NULLS_HIGH:  # NULL is the largest value: last going up, first going down
        assert (ascending, descending) == ([2, 3, None], [None, 3, 2])
    else:
        assert claim == NULLS_AT_END
        assert (ascending, descending) == ([2, 3, None], [3, 2, None])
