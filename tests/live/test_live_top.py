"""A live top-N stays equal to a fresh `ORDER BY … LIMIT` query while rows enter and
leave it (both backends)."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest
from flightdeck import Client
from flightdeck.flight_server.live.request import parse_subscription
from flightdeck.views import InvalidQuery
from flightdeck.views.live_views import LIVE_KEYS

from tests.flight_server.test_live import _leave, _put, _subscribe
from tests.live.mirror import Mirror

# Random puts on a live server: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

DAILY = "va_pageview_aggregate"
KEYS = ("page_url", "date")
COLUMNS = ["page_url", "date", "view_count"]


def _top(location: str, limit: int, where: str = "") -> list[tuple]:
    sql = (
        f"SELECT page_url, date, view_count FROM {DAILY} {where} "
        f"ORDER BY view_count DESC NULLS LAST, page_url, date LIMIT {limit}"
    )
    with Client(location) as client:
        table = client.query(sql)
    return sorted(tuple(r[c] for c in COLUMNS) for r in table.to_pylist())


@pytest.mark.parametrize("where", [None, {"page_url": {"!=": "/p0"}}])
def test_a_live_top_n_equals_a_fresh_query_after_random_puts(live, location, where):
    rng = random.Random(4)
    pages = [f"/p{i}" for i in range(8)]
    _put(live, pages, session="seed")
    request = {"subscribe": DAILY, "top": {"order_by": "view_count", "desc": True, "limit": 3}}
    if where:
        request["where"] = where
    writer, reader = _subscribe(live, **request, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    sql_where = "WHERE page_url <> '/p0'" if where else ""
    assert mirror.table(COLUMNS) == _top(location, 3, sql_where)
    for i in range(10):
        # Skewed towards a few pages at a time: leaders change, rows enter and leave.
        hot = rng.sample(pages, 2)
        _put(live, [rng.choice(hot) for _ in range(rng.randint(1, 5))], session=f"r{i}-")
        expected = _top(location, 3, sql_where)
        mirror.read(reader, lambda m, e=expected: m.table(COLUMNS) == e)
        assert len(mirror.rows) == 3
    assert mirror.kinds.get("remove"), "no row ever left the top-N: the test proves little"
    _leave(writer, reader)


@pytest.mark.parametrize(
    ("top", "words"),
    [
        ({"order_by": "nope"}, "nope"),
        ({"order_by": "view_count", "limit": 0}, "limit"),
        ({"order_by": "view_count", "limit": 100_000}, "limit"),
        ({"order_by": "view_count", "desc": "yes"}, "desc"),
        ({"by": "view_count"}, "order_by"),
    ],
)
def test_a_bad_top_is_refused_with_the_rule(top, words):
    schema = pa.schema(
        [
            ("page_url", pa.string()),
            ("date", pa.date32()),
            ("view_count", pa.int64()),
            ("version", pa.int64()),
        ]
    )
    request = json.dumps({"subscribe": DAILY, "top": top}).encode()
    with pytest.raises(InvalidQuery) as refused:
        parse_subscription(request, {DAILY: schema}, LIVE_KEYS)
    assert words in str(refused.value)
