"""Admin actions: the `reaggregate` and `retention` commands, run inside a serving process.

On the embedded DuckDB file these are the only way to run them without
stopping `serve`, since one process owns the file.
"""

from __future__ import annotations

import datetime as dt
import json

from flightdeck.ingest import reaggregate, retention
from flightdeck.views import Store

from .refusals import InvalidAction
from .settings import Settings

__all__ = ["ADMIN_ACTIONS", "AdminResult", "run_admin_action"]

ADMIN_ACTIONS = {
    "reaggregate": 'Recompute aggregates from raw events: {"dates": [...]} or {"all": true}, '
    '"check": true to only report (admin)',
    "retention": "Delete raw events older than --raw-retention-days (admin)",
}


class AdminResult:
    def __init__(self, summary: dict, wrote: bool) -> None:
        self.body = json.dumps(summary).encode()
        self.wrote = wrote  # aggregates changed: live subscribers should hear of it


def run_admin_action(store: Store, settings: Settings, kind: str, body: bytes) -> AdminResult:
    request = _request(body, kind)
    if kind == "reaggregate":
        return _reaggregate(store, request)
    expired = retention.delete_expired(store, settings.raw_retention_days)
    if expired is None:
        return AdminResult({"retention": "off", "deleted": 0}, False)
    return AdminResult({"deleted": expired.deleted, "before": expired.horizon.isoformat()}, False)


def _reaggregate(store: Store, request: dict) -> AdminResult:
    if request.get("all"):
        days = None
    else:
        try:
            days = [dt.date.fromisoformat(d) for d in request["dates"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidAction(
                rule="action-body",
                detail='reaggregate takes {"dates": ["2024-01-15", ...]} or {"all": true}',
            ) from None
    check = bool(request.get("check"))
    repair = reaggregate(store, days, apply=not check)
    summary = {
        "days": [d.isoformat() for d in repair.days],
        "daily_changed": repair.daily_changed,
        "hourly_changed": repair.hourly_changed,
        "removed": repair.removed,
        "applied": repair.applied,
    }
    return AdminResult(summary, repair.applied and repair.differences > 0)


def _request(body: bytes, kind: str) -> dict:
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        raise InvalidAction(rule="action-body", detail=f"the {kind} action takes a JSON object")
    return request
