"""Requests refused for their shape, before any data is read: an action's body, a put's target.

Not InvalidBatch: no batch is at fault, and the sentence must say what was refused.
"""

from __future__ import annotations

from flightdeck.base_error import FlightdeckError

__all__ = ["InvalidAction", "InvalidTarget"]


class InvalidAction(FlightdeckError):
    """An action's body that does not say what the action needs; `rule` names the rule."""

    def __init__(self, *, rule: str, detail: str) -> None:
        super().__init__(f"action refused [{rule}]: {detail}", rule=rule)
        self.detail = detail


class InvalidTarget(FlightdeckError):
    """A put (DoPut, Flight SQL bulk ingest) aimed somewhere flightdeck does not load."""

    def __init__(self, *, rule: str, detail: str) -> None:
        super().__init__(f"put refused [{rule}]: {detail}", rule=rule)
        self.detail = detail
