"""The JSON request of a live subscription (docs/live.md), built and checked client-side."""

from __future__ import annotations

from typing import Any

from .view_sql import refused
from .where import WhereError, parse_where, where_json

__all__ = ["live_request"]


def live_request(
    view: str,
    *,
    where: dict[str, Any] | None = None,
    columns: list[str] | None = None,
    changes_on: list[str] | None = None,
    snapshot: bool = True,
    cursor: int | None = None,
    messages: int = 1,
    min_interval_ms: int = 0,
    top: dict[str, Any] | None = None,
    lifetime: str | None = None,
) -> dict[str, Any]:
    """The request `Client.subscribe` sends; QueryError for a `where` the server would refuse."""
    request: dict[str, Any] = {"subscribe": view, "snapshot": snapshot, "cursor": cursor}
    if messages != 1:
        request["messages"] = messages
    if min_interval_ms:
        request["min_interval_ms"] = min_interval_ms
    if where is not None:
        try:
            request["where"] = where_json(parse_where(where))
        except WhereError as exc:
            raise refused(exc) from None
    named = (("columns", columns), ("changes_on", changes_on), ("top", top))
    for name, value in (*named, ("lifetime", lifetime)):
        if value is not None:
            request[name] = value
    return request
