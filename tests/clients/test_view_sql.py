"""`Client.view` SQL: quoting and literals, and the refusals made before anything is sent."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from flightdeck import QueryError
from flightdeck.view_sql import select_view


def test_a_whole_view():
    assert select_view("va_pageview_aggregate") == 'SELECT * FROM "va_pageview_aggregate"'


def test_columns_where_and_limit():
    sql = select_view(
        "va_pageview_aggregate",
        where={"page_url": "/products", "date": {">=": "2024-01-01", "<": dt.date(2024, 2, 1)}},
        columns=["page_url", "view_count"],
        limit=10,
    )
    assert sql == (
        'SELECT "page_url", "view_count" FROM "va_pageview_aggregate" '
        "WHERE \"page_url\" = '/products' AND \"date\" >= '2024-01-01' "
        "AND \"date\" < '2024-02-01' LIMIT 10"
    )


@pytest.mark.parametrize(
    ("test", "sql"),
    [
        ("it's", "\"c\" = 'it''s'"),
        (3, '"c" = 3'),
        (2.5, '"c" = 2.5'),
        (decimal.Decimal("12.50"), '"c" = 12.50'),
        (True, '"c" = TRUE'),
        (None, '"c" IS NULL'),
        ({"!=": None}, '"c" IS NOT NULL'),
        ({"!=": "x"}, "\"c\" <> 'x'"),
        ({"in": ["a", "b'c"]}, "\"c\" IN ('a', 'b''c')"),
        ({"in": ["a", None]}, '("c" IN (\'a\') OR "c" IS NULL)'),
        ({"in": [None]}, '"c" IS NULL'),
        (dt.datetime(2024, 1, 15, 10), "\"c\" = '2024-01-15T10:00:00+00:00'"),  # naive is UTC
        (
            dt.datetime(2024, 1, 15, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "\"c\" = '2024-01-15T10:00:00+02:00'",
        ),
    ],
)
def test_literals(test, sql):
    assert select_view("va_x", where={"c": test}) == f'SELECT * FROM "va_x" WHERE {sql}'


def test_identifiers_are_quoted_with_quotes_doubled():
    sql = select_view('va_x"y', columns=['a"b'])
    assert sql == 'SELECT "a""b" FROM "va_x""y"'


@pytest.mark.parametrize(
    ("name", "kwargs", "rule", "words"),
    [
        ("tb_pageview_event", {}, "va-views-only", "va_ views"),
        ("pageview", {}, "va-views-only", "not a view"),
        ("va_x", {"where": {"c": {"like": "/x%"}}}, "operator", "unknown operator 'like'"),
        ("va_x", {"where": {"c": {"in": []}}}, "value", "non-empty"),
        ("va_x", {"where": {"c": {"in": "abc"}}}, "value", "a list"),
        ("va_x", {"where": {"c": {}}}, "where", "empty condition"),
        ("va_x", {"where": {"c": {">": None}}}, "value", "needs a value"),
        ("va_x", {"where": {"c": float("nan")}}, "value", "cannot be compared"),
        ("va_x", {"where": {"c": object()}}, "value", "of type object"),
        ("va_x", {"limit": -1}, "limit", "limit"),
        ("va_x", {"limit": True}, "limit", "limit"),
        ("va_x", {"columns": [""]}, "column", "non-empty string"),
    ],
)
def test_refused_before_sending(name, kwargs, rule, words):
    with pytest.raises(QueryError) as refused:
        select_view(name, **kwargs)
    assert refused.value.rule == rule and refused.value.code is None
    assert words in str(refused.value)
