"""The DoAction dispatch table: each action's name, description, role and handler.

ListActions and the answer to an unknown action both read this one table, so
neither can list fewer actions than the server serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from flightdeck.views import Unsupported

__all__ = ["Action", "ActionTable"]


class Action(NamedTuple):
    name: str
    description: str
    role: str  # the least role that may call it
    run: Callable[[bytes], Iterable[bytes]]  # the body in, each Result body out


class ActionTable:
    def __init__(self, actions: Iterable[Action]) -> None:
        self._actions = {action.name: action for action in actions}

    def listing(self) -> list[tuple[str, str]]:
        """(name, description) of every action, for ListActions."""
        return [(action.name, action.description) for action in self._actions.values()]

    def get(self, name: str) -> Action:
        """The action called `name`; Unsupported naming every action if there is none."""
        try:
            return self._actions[name]
        except KeyError:
            raise Unsupported(
                f"action {name!r}", "flightdeck serves " + ", ".join(self._actions)
            ) from None
