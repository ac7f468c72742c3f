"""NATS subjects of events: `events.TYPE` carries events of TYPE, `events.dead.TYPE`
their dead letters (issue 19).

The worker's consumer reads all of `events.>`: JetStream filters cannot leave a
subtree out, and a list of types would miss the undeclared ones the server
accepts. So dead letters reach the worker too, and are acked unread
(`is_dead_letter`). A type named `dead` or `dead.…` therefore cannot travel
over NATS; DoPut takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from nats.aio.msg import Msg

from .event_types import PAGEVIEW, type_name_problem

__all__ = ["CONSUMED", "PAGEVIEW_SUBJECT", "ByType", "by_type", "dead_subject", "is_dead_letter"]

_PREFIX = "events."
_DEAD = "events.dead."
CONSUMED = "events.>"
PAGEVIEW_SUBJECT = _PREFIX + PAGEVIEW


def is_dead_letter(subject: str) -> bool:
    return subject.startswith(_DEAD) or subject == _DEAD[:-1]


def dead_subject(subject: str) -> str:
    """Where a message of `subject` goes when it can never be ingested: `events.dead.`
    and its type as sent, valid or not, so each type's dead letters read apart."""
    return _DEAD + (subject[len(_PREFIX) :] if subject.startswith(_PREFIX) else subject)


class ByType(NamedTuple):
    groups: dict[str, list[Msg]]  # event type -> its messages, in arrival order
    bad: list[tuple[Msg, str]]  # a subject naming no type, with the reason
    dead: list[Msg]  # dead letters: not events, passed over


def by_type(messages: Sequence[Msg]) -> ByType:
    """The fetched `messages` by event type. Page views alone (the common, fast case)
    cost one comparison per message."""
    if all(m.subject == PAGEVIEW_SUBJECT for m in messages):
        return ByType({PAGEVIEW: list(messages)} if messages else {}, [], [])
    out = ByType({}, [], [])
    problems: dict[str, str | None] = {}  # per distinct subject, judged once
    for message in messages:
        subject = message.subject
        if is_dead_letter(subject):
            out.dead.append(message)
            continue
        event_type = subject[len(_PREFIX) :]
        if subject not in problems:
            problems[subject] = type_name_problem(event_type)
        problem = problems[subject]
        if problem is not None:
            out.bad.append((message, f"[event-type] event_type: {problem} (subject {subject!r})"))
        else:
            out.groups.setdefault(event_type, []).append(message)
    return out
