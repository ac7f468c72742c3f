"""The error types every layer below the Flight boundary raises.

Each error carries the user's words as fields (which view, which rule, which
column) so the boundary can build a message without parsing strings.
"""

from __future__ import annotations

from collections.abc import Iterable

from flightdeck.base_error import FlightdeckError

__all__ = ["BackendError", "InvalidQuery", "NotFound", "Unsupported"]


class InvalidQuery(FlightdeckError):
    """A query refused before it reached the store; `rule` names the rule broken."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"query refused [{rule}]: {detail}", rule=rule)
        self.detail = detail


class NotFound(FlightdeckError):
    """A named thing (a view, a command) that does not exist."""

    def __init__(self, kind: str, name: str, available: Iterable[str] = ()) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        hint = f"; available: {', '.join(self.available)}" if self.available else ""
        view = name if kind == "view" else None
        super().__init__(f"unknown {kind} {name!r}{hint}", view=view)


class BackendError(FlightdeckError):
    """The store refused or failed; `reason` is the backend's own message.

    `kind` says what the caller can do about it: "invalid" (fix the query),
    "timeout" (it ran too long), "unavailable" (retry later), "failed" (other).
    `sqlstate` is the SQL standard's code of the error (DuckDB's error type mapped
    to its class), None when unknown.
    """

    def __init__(
        self, backend: str, reason: str, kind: str = "failed", sqlstate: str | None = None
    ) -> None:
        self.backend = backend
        self.reason = reason
        self.kind = kind
        self.sqlstate = sqlstate
        super().__init__(f"{backend} error: {reason}")

    @property
    def data_refused(self) -> bool:
        """The data written is at fault, not the store: a data exception (22), an
        integrity constraint (23) or a program limit such as an index row's size (54).
        The same write fails again however often it is retried; other writes succeed."""
        return self.sqlstate is not None and self.sqlstate[:2] in _DATA_CLASSES


_DATA_CLASSES = frozenset({"22", "23", "54"})


class Unsupported(FlightdeckError):
    """A request flightdeck understands but does not serve; `what` names it.

    Flight SQL drivers fall back to another route on this (UNIMPLEMENTED), so it
    must never be confused with a failure.
    """

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        super().__init__(f"{what} is not supported by flightdeck" + (f"; {hint}" if hint else ""))
