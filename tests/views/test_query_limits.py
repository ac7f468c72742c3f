"""What the guard will read at all: a bounded text size and a bounded nesting depth.

A 1 MB `IN` list took the guard ~12 s a check, and 1,000 nested parentheses
raised RecursionError (an INTERNAL error at the client). Both are now refused
with a rule of their own, before any expensive work. Pure unit tests: no database.
"""

from __future__ import annotations

import pytest
from flightdeck.views import query as queries
from flightdeck.views.complexity import MAX_NESTING, MAX_QUERY_BYTES
from flightdeck.views.errors import InvalidQuery
from flightdeck.views.guard import check_query

KNOWN = frozenset({"va_pageview_event"})
BOTH = ("duckdb", "postgresql")


def _in_list(size: int) -> str:
    head = "SELECT * FROM va_pageview_event WHERE page_url IN ("
    values = ",".join(f"'/p{i:07d}'" for i in range(size // 11 + 1))
    return (head + values)[: size - 1].rsplit(",", 1)[0] + ")"


@pytest.mark.parametrize("dialect", BOTH)
def test_text_over_the_limit_is_refused_naming_limit_and_flag(dialect):
    sql = _in_list(MAX_QUERY_BYTES + 1024)
    with pytest.raises(InvalidQuery) as err:
        check_query(sql, dialect, KNOWN)
    assert err.value.rule == "query-size"
    assert "256 KB" in err.value.detail and "--max-query-kb" in err.value.detail


@pytest.mark.parametrize("dialect", BOTH)
def test_the_size_is_checked_before_the_text_is_read(dialect):
    # An unclosed quote is a syntax error once read; over the limit it is never read.
    with pytest.raises(InvalidQuery) as err:
        check_query("SELECT '" + "x" * 5000, dialect, KNOWN, max_bytes=4096)
    assert err.value.rule == "query-size"
    assert "4 KB" in err.value.detail


@pytest.mark.parametrize("dialect", BOTH)
def test_the_limit_counts_utf8_bytes_and_text_at_the_limit_passes(dialect):
    under = "SELECT 'é' AS x"  # 16 bytes, 15 characters
    check_query(under, dialect, KNOWN, max_bytes=16)
    with pytest.raises(InvalidQuery, match="query-size"):
        check_query(under, dialect, KNOWN, max_bytes=15)


@pytest.mark.parametrize("dialect", BOTH)
def test_the_largest_allowed_in_list_is_checked(dialect):
    check_query(_in_list(MAX_QUERY_BYTES), dialect, KNOWN)


def test_prepare_checks_the_size_before_rewriting_placeholders():
    # prepare() reads the text for placeholders before the guard: it must not read it whole.
    with pytest.raises(InvalidQuery, match=r"\[query-size\]"):
        queries.prepare(_NoStore(), "SELECT ? " + " " * 5000, max_bytes=1024)


class _NoStore:
    backend = "duckdb"  # the limit must refuse before the store is ever asked

    def read(self, *args, **kwargs):
        raise AssertionError("the store was asked before the size was checked")


_DEEP = {
    "parentheses": lambda d: "SELECT " + "(" * d + "1" + ")" * d,
    "subqueries": lambda d: "SELECT " + "(SELECT " * d + "1" + ")" * d,
    "function calls": lambda d: "SELECT " + "abs(" * d + "1" + ")" * d,
    "NOT chain": lambda d: "SELECT " + "NOT " * d + "true",
    "unary minus": lambda d: "SELECT " + "- " * d + "1",
    "CASE in CASE": lambda d: "SELECT " + "CASE WHEN true THEN " * d + "1" + " END" * d,
    "IN lists in IN lists": lambda d: "SELECT 1 WHERE 1 IN (" * d + "1" + ")" * d,
}


@pytest.mark.parametrize("dialect", BOTH)
@pytest.mark.parametrize("shape", sorted(_DEEP))
@pytest.mark.parametrize("depth", [1_000, 5_000])
def test_deep_nesting_is_refused_as_too_complex(shape, depth, dialect):
    with pytest.raises(InvalidQuery) as err:
        check_query(_DEEP[shape](depth), dialect, KNOWN)
    assert err.value.rule == "too-complex", err.value
    assert "nest" in err.value.detail


@pytest.mark.parametrize("dialect", BOTH)
def test_nesting_within_the_limit_is_read(dialect):
    for shape in ("parentheses", "function calls"):
        check_query(_DEEP[shape](MAX_NESTING), dialect, KNOWN)
    check_query("SELECT " + "(SELECT " * 10 + "1" + ")" * 10, dialect, KNOWN)
