"""Declared rollups stay exact: every built-in equals a pandas recomputation from raw
events (tests/ingest/rollup_reference.py) after every put, on both backends;
backfill, a user's own rollup, a changed or removed declaration, reaggregate."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import math
import random
from pathlib import Path

import pyarrow as pa
import pytest
from flightdeck.ingest import ingest, reaggregate
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, RollupError, load_rollups, parse_rollup

from tests.ingest import rollup_reference as reference

BUILTINS = load_rollups([BUILTIN_DIR])
_START = dt.datetime(2024, 3, 1, 21, tzinfo=dt.UTC)  # puts straddle midnight


def _stream(seed: int, puts: int, per_put: int) -> list[list[dict]]:
    """Time-ordered puts whose sessions straddle puts, hours and midnight; late
    events, repeats of earlier ids, users and anonymous visits, durations, properties."""
    rng = random.Random(seed)
    sent: list[dict] = []
    out = []
    clock = _START
    for _ in range(puts):
        put = []
        for _ in range(per_put):
            clock += dt.timedelta(seconds=rng.randint(1, 240))
            at = clock - dt.timedelta(minutes=rng.choice([0, 0, 0, 0, 45, 200]))  # some late
            session = f"s{rng.randint(0, 14)}"
            event = {
                "event_id": f"e{len(sent)}",
                "session_id": session,
                "page_url": f"/p{rng.randint(0, 4)}",
                "timestamp": at.isoformat(),
                "user_id": rng.choice([None, None, f"u{int(session[1:]) % 5}", "u9"]),
                "duration_s": rng.choice([None, None, None, rng.uniform(0, 30)]),
                "properties": json.dumps(
                    {"amount": rng.choice([1, 2.5, "3", None]), "plan": rng.choice(["a", "b"])}
                ),
            }
            sent.append(event)
            put.append(event)
            if rng.random() < 0.1:  # an earlier event sent again
                put.append(dict(rng.choice(sent)))
        out.append(put)
    return out


def _put(store, rows: list[dict]) -> None:
    ingest(store, [pa.RecordBatch.from_pylist(rows)])


def _typed(seed: int, puts: int, per_put: int) -> list[list[dict]]:
    """`user.login` and `api.request` events in the same sessions and times as _stream's."""
    rng = random.Random(seed + 100)
    out = []
    clock = _START
    for p in range(puts):
        put = []
        for i in range(per_put):
            clock += dt.timedelta(seconds=rng.randint(1, 600))
            session = f"s{rng.randint(0, 14)}"
            put.append({
                "event_id": f"t{p}-{i}",
                "session_id": session,
                "timestamp": clock.isoformat(),
                "user_id": rng.choice([None, f"u{int(session[1:]) % 5}"]),
                "properties": json.dumps({
                    "service": rng.choice(["api", "auth"]),
                    "endpoint": rng.choice(["/tasks", "/login", None]),
                    "duration_ms": rng.choice([rng.uniform(1, 900), rng.randint(1, 50), "slow"]),
                }),
            })  # fmt: skip
        out.append(put)
    return out


def _put_typed(store, event_type: str, rows: list[dict]) -> None:
    ingest(store, [pa.RecordBatch.from_pylist(rows)], event_type=event_type)


def _view(store, rollup) -> list[dict]:
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {rollup.view}")
        rows = cursor.fetch_arrow_table().to_pylist()
        conn.rollback()
    return [{k: v for k, v in r.items() if k not in ("version", "computed_at")} for r in rows]


def _key(rollup, row: dict) -> str:
    return repr([str(row[c]) for c in rollup.key])


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.astimezone(dt.UTC) == b.astimezone(dt.UTC)
    return a == b


def _check(store, rollups) -> None:
    events = reference.raw_events(store)
    for rollup in rollups:
        got = {_key(rollup, r): r for r in _view(store, rollup)}
        want = {_key(rollup, r): r for r in reference.expected(rollup, events)}
        assert sorted(got) == sorted(want), rollup.view
        for key, row in want.items():
            for column, value in row.items():
                assert _same(got[key][column], value), (rollup.view, key, column,
                                                        got[key][column], value)  # fmt: skip


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_every_builtin_equals_a_recomputation_after_every_put(store, seed):
    install(store, BUILTINS)
    for put in _stream(seed, puts=4, per_put=40):
        _put(store, put)
        _check(store, BUILTINS)
    assert reaggregate(store, None, apply=False).differences == 0


@pytest.mark.slow  # a long exactness run: make test runs it
def test_typed_events_count_in_the_rollups_that_read_their_type(store):
    install(store, BUILTINS)
    pages, typed = _stream(6, puts=3, per_put=30), _typed(6, puts=3, per_put=30)
    for page_put, typed_put in zip(pages, typed, strict=True):
        _put_typed(store, "api.request", typed_put)
        _put(store, page_put)
        _put_typed(store, "user.login", [dict(e, event_id="l" + e["event_id"]) for e in typed_put])
        _check(store, BUILTINS)
    assert reaggregate(store, None, apply=False).differences == 0
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM va_api_latency_hourly WHERE p95_ms IS NOT NULL")
        assert cursor.fetchone()[0] > 0  # the percentiles saw numbers
        cursor.execute("SELECT count(DISTINCT event_type) FROM va_events_daily")
        assert cursor.fetchone()[0] == 3
        conn.rollback()


def test_a_rollup_installed_on_a_running_store_is_backfilled(store):
    puts = _stream(3, puts=3, per_put=40)
    for put in puts[:2]:
        _put(store, put)
    installed = install(store, BUILTINS)
    assert sorted(installed.backfilled) == sorted(r.name for r in BUILTINS)
    _check(store, BUILTINS)
    _put(store, puts[2])
    _check(store, BUILTINS)
    again = install(store, BUILTINS)
    assert again.backfilled == [] and sorted(again.kept) == sorted(r.name for r in BUILTINS)


_PLANS = """
name = "plans_daily"
events = ["pageview"]
grain = "{grain}"
dimensions = ["properties.plan", "entry_page as landing"]
measures = ["views", "visitors", "sum(properties.amount) as amount", "avg(properties.amount)"]
"""
_AMOUNTS = """
name = "amounts_hourly"
grain = "hour"
dimensions = ["page_url"]
measures = ["events", "min(properties.amount)", "max(properties.amount)",
            "p50(properties.amount)", "p95(properties.amount) as amount_p95"]
"""


def test_a_users_rollups_from_a_folder_are_exact_and_follow_their_files(store, tmp_path: Path):
    folder = tmp_path / "rollups"
    folder.mkdir()
    (folder / "plans.toml").write_text(_PLANS.format(grain="week"))
    (folder / "amounts.toml").write_text(_AMOUNTS)
    mine = load_rollups([folder])
    install(store, mine)
    for put in _stream(4, puts=3, per_put=40):
        _put(store, put)
        _check(store, mine)
    # A changed declaration is rebuilt; a removed one is dropped with its view.
    (folder / "plans.toml").write_text(_PLANS.format(grain="month"))
    (folder / "amounts.toml").unlink()
    changed = install(store, load_rollups([folder]))
    assert (changed.backfilled, changed.dropped) == (["plans_daily"], ["amounts_hourly"])
    _check(store, load_rollups([folder]))
    with store.write() as conn, conn.cursor() as cursor:
        gone = "('va_amounts_hourly', 'tb_rollup_amounts_hourly')"
        cursor.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_name IN {gone}")
        assert cursor.fetchone()[0] == 0
        conn.rollback()


def test_reaggregate_finds_and_repairs_a_wrong_rollup_row(store):
    install(store, BUILTINS)
    for put in _stream(5, puts=2, per_put=30):
        _put(store, put)
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("UPDATE tb_rollup_site_daily SET views = views + 1")
        cursor.execute("DELETE FROM tb_rollup_active_users")
        conn.commit()
    check = reaggregate(store, None, apply=False)
    assert check.rollup_rows > 0
    assert reaggregate(store, None).rollup_rows == check.rollup_rows
    _check(store, BUILTINS)
    assert reaggregate(store, None, apply=False).differences == 0


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('name = "x"\nmeasures = ["views"]\ngrain = "fortnight"', "grain", "fortnight"),
        ('name = "x"\nmeasures = ["viewz"]', "measures", "viewz"),
        ('name = "x"\nmeasures = ["views"]\ndimensions = ["colour"]', "dimensions", "colour"),
        ('name = "X!"\nmeasures = ["views"]', "name", "X!"),
        ('name = "x"\nmeasures = ["views"]\ncolumns = 1', "columns", "unknown key"),
        ('name = "x"\nmeasures = ["dau"]\ndimensions = ["path"]', "measures", "no dimensions"),
        ('name = "x"\nmeasures = ["p95(properties.ms)"]\ndimensions = ["entry_page"]',
         "measures", "visit"),
        ('name = "x"\nmeasures = ["time_on_page"]', "measures", "pageview"),
        ('name = "x"\nmeasures = ["views", "views"]', "columns", "twice"),
        ("name = ", "toml", ""),
    ],
)  # fmt: skip
def test_a_bad_declaration_names_its_file_and_key(text, key, words):
    with pytest.raises(RollupError) as refused:
        parse_rollup(text, "mine.toml")
    assert (refused.value.source, refused.value.key) == ("mine.toml", key)
    assert words in str(refused.value)


def test_backfill_and_reaggregate_cover_days_with_only_typed_events(store):
    # Days that hold api.request events and no page view: a rollup over them is
    # backfilled on install and checked by reaggregate like any other day.
    for put in _typed(7, puts=2, per_put=30):
        _put_typed(store, "api.request", put)
    install(store, BUILTINS)
    _check(store, BUILTINS)
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM va_api_latency_hourly")
        assert cursor.fetchone()[0] > 0
        cursor.execute("UPDATE tb_rollup_api_latency_hourly SET events = events + 1")
        conn.commit()
    assert reaggregate(store, None, apply=False).rollup_rows > 0
    reaggregate(store, None)
    _check(store, BUILTINS)


def test_views_at_one_instant_are_ordered_by_event_id_whatever_order_they_arrive_in(store):
    """A visit's entry and exit pages and its first source break ties of recorded_at by
    event_id, so a later put of an earlier-ordered event moves them exactly."""
    install(store, BUILTINS)
    at = "2024-03-01T10:00:00+00:00"
    view = {"session_id": "s1", "timestamp": at, "user_id": "u1"}
    _put(store, [{**view, "event_id": "b", "page_url": "https://x.test/two?utm_source=late"}])
    _check(store, BUILTINS)
    _put(store, [
        {**view, "event_id": "c", "page_url": "https://x.test/three"},
        {**view, "event_id": "a", "page_url": "https://x.test/one?utm_source=early"},
    ])  # fmt: skip
    _check(store, BUILTINS)
    entry = [r for r in _view(store, _builtin("entry_pages_daily")) if r["visits"]]
    assert [r["entry_page"] for r in entry] == ["/one"]
    sources = _view(store, _builtin("sources_daily"))
    assert [r["source"] for r in sources] == ["early"]


def _builtin(name: str):
    return next(r for r in BUILTINS if r.name == name)


def test_a_float_sum_kept_put_by_put_is_no_difference_to_reaggregate(store):
    """A property sum folded put by put adds in another order than a recount does
    ((0.1) + (0.2 + 0.3) is 0.6; (0.1 + 0.2) + 0.3 is 0.6000000000000001): the same
    sum, not a row for `reaggregate --check` to report or rewrite."""
    install(store, BUILTINS)
    at = _START.isoformat()

    def request(n: int, ms: float) -> dict:
        properties = {"service": "api", "endpoint": "/tasks", "duration_ms": ms}
        return {"event_id": f"f{n}", "session_id": f"f{n}", "timestamp": at,
                "properties": json.dumps(properties)}  # fmt: skip

    _put_typed(store, "api.request", [request(1, 0.1)])
    _put_typed(store, "api.request", [request(2, 0.2), request(3, 0.3)])
    _check(store, BUILTINS)
    assert reaggregate(store, None, apply=False).differences == 0


def test_puts_between_the_parts_of_a_repair_leave_every_rollup_exact(store):
    """A repair takes the writer's turn once per part (the page-view aggregates, then
    each rollup), so puts commit between its parts; every rollup stays exact."""
    install(store, BUILTINS)
    puts = _stream(11, puts=14, per_put=25)
    for put in puts[:4]:
        _put(store, put)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        putting = pool.submit(lambda: [_put(store, put) for put in puts[4:]])
        repairs = [reaggregate(store, None) for _ in range(3)]
        putting.result()
    assert all(len(repair.versions) == 1 + len(BUILTINS) for repair in repairs)
    _check(store, BUILTINS)
    assert reaggregate(store, None, apply=False).differences == 0


def test_a_repair_that_finds_nothing_wrong_changes_no_row(store):
    """Every row recounted equal is put back as it was, version included: live
    subscribers are sent nothing, and no key is noted as removed."""
    install(store, BUILTINS)
    for put in _stream(8, puts=2, per_put=30):
        _put(store, put)
    before = {r.view: _stamped(store, r) for r in BUILTINS}
    repair = reaggregate(store, None)
    assert repair.differences == 0
    assert {r.view: _stamped(store, r) for r in BUILTINS} == before
    with store.write() as conn, conn.cursor() as cursor:
        listed = ", ".join(map(str, repair.versions))
        cursor.execute(f"SELECT count(*) FROM tb_live_removal WHERE version IN ({listed})")
        assert cursor.fetchone()[0] == 0


def _stamped(store, rollup) -> list[tuple]:
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {rollup.view} ORDER BY {', '.join(rollup.key)}")
        rows = cursor.fetchall()
        conn.rollback()
    return rows


def test_a_repair_writes_what_differs_and_removes_what_no_event_supports(store):
    """A page whose raw events are gone leaves every rollup (rows, users, noted as
    removed for live subscribers); rows whose values the loss does not change keep
    their version (a time on page or a bounce of another page may change)."""
    install(store, BUILTINS)
    for put in _stream(9, puts=2, per_put=30):
        _put(store, put)
    lonely = {"session_id": "lonely", "page_url": "/lonely", "timestamp": _START.isoformat()}
    _put(store, [dict(lonely, event_id="lonely-1")])
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM tb_pageview_event WHERE page_url = '/lonely'")
        conn.commit()
    pages = {r.view: r for r in BUILTINS}["va_pages_daily"]
    before = {row[1:3]: row for row in _stamped(store, pages)}  # (host, path)
    repair = reaggregate(store, None)
    _check(store, BUILTINS)
    after = {row[1:3]: row for row in _stamped(store, pages)}
    gone = {k for k in before if k[1] == "/lonely"}
    assert gone and set(after) == set(before) - gone
    same = [k for k in after if after[k][:-2] == before[k][:-2]]  # without version, computed_at
    assert same and all(after[k] == before[k] for k in same)
    assert all(after[k][-2] in repair.versions for k in set(after) - set(same))
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tb_rollup_pages_daily_user WHERE path = '/lonely'")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM tb_live_removal "
            f"WHERE view = 'va_pages_daily' AND version IN ({', '.join(map(str, repair.versions))})"
        )
        assert cursor.fetchone()[0] == len(gone)
    assert reaggregate(store, None, apply=False).differences == 0
