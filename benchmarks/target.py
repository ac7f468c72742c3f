"""One target's record in results.json: its name, value, goal and whether it was met."""

from __future__ import annotations

__all__ = ["target"]


def target(name: str, value: float | None, op: str, goal: float, **detail) -> dict:
    """`met` is None when the value was not measured: never read as met or missed."""
    if value is None:
        met = None
    else:
        met = value >= goal if op == ">=" else value <= goal if op == "<=" else value < goal
    return {"name": name, "value": value, "goal": f"{op} {goal:g}", "met": met, **detail}
