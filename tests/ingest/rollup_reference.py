"""An independent reading of docs/rollups.md: every rollup recomputed in pandas
from the raw events the store holds, to compare with its `va_` view.

It shares no code with the engine (ingest/rollups.py) beyond the declaration.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from flightdeck.views.rollup_spec import Rollup

_DERIVED_SQL = "path, host, referrer_host, source, medium, campaign, browser, os, device"
_EVENT_COLUMNS = {
    "other types": (
        "SELECT event_id, event_type, session_id, user_id, recorded_at, page_url, referrer, "
        f"user_agent, duration_s, CAST(properties AS TEXT) AS properties, {_DERIVED_SQL} "
        "FROM tb_event"
    ),
    "pageview": (
        "SELECT event_id, 'pageview' AS event_type, session_id, user_id, recorded_at, "
        "page_url, referrer, user_agent, duration_s, CAST(properties AS TEXT) AS properties, "
        "path, host, referrer_host, source, medium, campaign, browser, os, device "
        "FROM tb_pageview_event"
    ),
}
DERIVED = ("path", "host", "referrer_host", "browser", "os", "device", "source", "medium",
           "campaign")  # fmt: skip


def raw_events(store) -> pd.DataFrame:
    frames = []
    with store.write() as conn, conn.cursor() as cursor:
        for sql in _EVENT_COLUMNS.values():
            cursor.execute(sql)
            frames.append(cursor.fetch_arrow_table().to_pandas())
        conn.rollback()
    events = pd.concat(frames, ignore_index=True)
    events["recorded_at"] = pd.to_datetime(events["recorded_at"], utc=True)
    return events


def expected(rollup: Rollup, events: pd.DataFrame) -> list[dict]:
    """The view's rows, as docs/rollups.md defines them (without version/computed_at)."""
    if rollup.events is not None:
        events = events[events["event_type"].isin(rollup.events)]
    if rollup.active_users:
        return _active_users(rollup, events)
    rows = []
    events = events.assign(bucket=events["recorded_at"].map(lambda t: _bucket(rollup.grain, t)))
    events = events.sort_values(["recorded_at", "event_id"], kind="stable")
    visits = {key: _visit(v) for key, v in events.groupby(["session_id", "bucket"], sort=False)}
    keyed: dict[tuple, list[tuple[dict, dict]]] = {}
    for event in events.to_dict("records"):
        visit = visits[(event["session_id"], event["bucket"])]
        key = (event["bucket"], *(_dimension(d, event, visit) for d in rollup.dimensions))
        keyed.setdefault(key, []).append((event, visit))
    for key, members in keyed.items():
        row = {rollup.bucket: key[0]}
        row.update({d.column: v for d, v in zip(rollup.dimensions, key[1:], strict=True)})
        row.update({m.column: _measure(m, members) for m in rollup.measures})
        rows.append(row)
    return rows


def _bucket(grain: str, at: pd.Timestamp):
    at = at.tz_convert("UTC")
    if grain == "hour":
        return at.floor("h").to_pydatetime()
    day = at.date()
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _visit(events: pd.DataFrame) -> dict:
    views = events[events["event_type"] == "pageview"]
    users = events["user_id"].dropna()
    first = events.iloc[0]
    gaps = {}
    times = list(views["recorded_at"])
    for i, event in enumerate(views.to_dict("records")):
        if event["duration_s"] is not None and not math.isnan(event["duration_s"]):
            gaps[event["event_id"]] = round(event["duration_s"] * 1_000_000)
        elif i + 1 < len(times):
            gaps[event["event_id"]] = round((times[i + 1] - times[i]).total_seconds() * 1e6)
    return {
        "session_id": first["session_id"],
        "views": len(views),
        "span_us": round(
            (events["recorded_at"].max() - events["recorded_at"].min()).total_seconds() * 1_000_000
        ),
        "user": users.min() if len(users) else None,
        "entry_page": _none(views.iloc[0]["path"]) if len(views) else None,
        "exit_page": _none(views.iloc[-1]["path"]) if len(views) else None,
        "source": _none(first["source"]),
        "medium": _none(first["medium"]),
        "campaign": _none(first["campaign"]),
        "gaps": gaps,
    }


def _none(value):
    """pandas reads a null text as None or NaN: None either way."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _dimension(dimension, event: dict, visit: dict):
    if dimension.kind == "session":
        return visit[dimension.field]
    if dimension.kind == "property":
        value = _properties(event).get(dimension.field)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)
    return _none(event[dimension.field])


def _properties(event: dict) -> dict:
    text = event["properties"]
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _measure(measure, members: list[tuple[dict, dict]]):
    visits = {v["session_id"]: v for _, v in members}
    kind = measure.kind
    if kind in ("events", "views"):
        return sum(1 for e, _ in members if kind == "events" or e["event_type"] == "pageview")
    if kind == "visits":
        return len(visits)
    if kind == "visitors":
        return len({v["user"] if v["user"] is not None else ("anon", s) for s, v in visits.items()})
    if kind == "bounce_rate":
        bounced = sum(1 for v in visits.values() if v["views"] == 1)
        return _round2(Decimal(100 * bounced) / Decimal(len(visits)))
    if kind == "avg_visit_duration":
        return sum(v["span_us"] for v in visits.values()) / 1e6 / len(visits)
    if kind == "views_per_visit":
        views = sum(1 for e, _ in members if e["event_type"] == "pageview")
        return _round2(Decimal(views) / Decimal(len(visits)))
    if kind == "time_on_page":
        gaps = [v["gaps"][e["event_id"]] for e, v in members if e["event_id"] in v["gaps"]]
        return sum(gaps) / 1e6 / len(gaps) if gaps else None
    numbers = [
        float(x)
        for e, _ in members
        if isinstance(x := _properties(e).get(measure.key or ""), int | float)
        and not isinstance(x, bool)
    ]
    if not numbers:
        return None
    if kind == "sum":
        return sum(numbers)
    if kind == "avg":
        return sum(numbers) / len(numbers)
    if kind in ("min", "max"):
        return min(numbers) if kind == "min" else max(numbers)
    return float(pd.Series(numbers).quantile({"p50": 0.5, "p95": 0.95, "p99": 0.99}[kind]))


def _round2(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _active_users(rollup: Rollup, events: pd.DataFrame) -> list[dict]:
    with_user = events.dropna(subset=["user_id"])
    by_day: dict[dt.date, set] = {}
    for event in with_user.to_dict("records"):
        by_day.setdefault(event["recorded_at"].tz_convert("UTC").date(), set()).add(
            event["user_id"]
        )
    rows = []
    for day in by_day:
        window = {
            n: set().union(*(by_day.get(day - dt.timedelta(days=k), set()) for k in range(n)))
            for n in (1, 7, 30)
        }
        counts = {"dau": len(window[1]), "wau": len(window[7]), "mau": len(window[30])}
        rows.append({"date": day, **{m.column: counts[m.kind] for m in rollup.measures}})
    return rows
