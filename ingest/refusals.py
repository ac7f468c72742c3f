"""Which messages of a batch the store refuses, found by bisecting with dry runs.

A store error that is the data's fault (`BackendError.data_refused`: a data
exception, a constraint, a program limit such as PostgreSQL's index row size)
fails the same batch on every redelivery, so the whole batch would be stuck
behind one message. Each dry run ingests a subset and rolls back; halving finds
each refused message in about log2(n) runs. Messages are tried after those
already found good, so a message refused only together with an earlier one
(two rows under one unique key) is the later one, as a real commit would have it.
A store error that is not the data's fault ends the search: the caller retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightdeck.views import BackendError, Store

from .messages import Decoded
from .pipeline import ingest

__all__ = ["Refusal", "find_refused"]


@dataclass(frozen=True)
class Refusal:
    message: int  # as in Decoded.owners
    error: BackendError


def find_refused(store: Store, decoded: Decoded) -> list[Refusal]:
    """The messages of `decoded` the store refuses, each with the store's error for it.

    Raises the store's BackendError when it is not the data's fault (store away)."""
    messages = sorted(set(decoded.owners))
    return _search(store, decoded, [], messages)


def _search(store: Store, decoded: Decoded, good: list[int], tried: list[int]) -> list[Refusal]:
    """Refused messages among `tried`, each tried after `good` and the good ones before it."""
    error = _dry_run(store, decoded, good + tried)
    if error is None:
        return []
    if len(tried) == 1:
        return [Refusal(tried[0], error)]
    half = len(tried) // 2
    first = _search(store, decoded, good, tried[:half])
    refused = {r.message for r in first}
    good = good + [m for m in tried[:half] if m not in refused]
    return first + _search(store, decoded, good, tried[half:])


def _dry_run(store: Store, decoded: Decoded, messages: list[int]) -> BackendError | None:
    try:
        ingest(
            store,
            decoded.only(set(messages)).batches,
            dry_run=True,
            normalised=True,
            event_type=decoded.event_type,
        )
    except BackendError as exc:
        if not exc.data_refused:
            raise
        return exc
    return None
