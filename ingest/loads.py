"""Load ids: what lets a client that was interrupted at the last moment learn what became
of its load.

A client may name a load with an id of its own. The put's transaction records the
id with what it stored, so the answer to "was load X committed?" is in the store,
exact, and cannot disagree with the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from flightdeck.views import Store

from .errors import InvalidBatch
from .scalar import scalar
from .turns import take_turn

__all__ = ["LoadStatus", "PutControl", "check_load_id", "load_status", "record"]

_LOAD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class PutControl(Protocol):
    """What a put's caller tells the pipeline besides its batches."""

    @property
    def load_id(self) -> str | None: ...

    def check_wanted(self) -> None:
        """Raise if the put is no longer wanted (its client went or cancelled)."""


@dataclass(frozen=True)
class LoadStatus:
    load_id: str
    committed: bool
    accepted: int | None = None
    duplicates: int | None = None

    def as_dict(self) -> dict:
        if not self.committed:
            return {"load_id": self.load_id, "committed": False}
        return {
            "load_id": self.load_id,
            "committed": True,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
        }


def check_load_id(load_id: object) -> str:
    """The id itself, or InvalidBatch naming the rule (it is written into SQL as is)."""
    if isinstance(load_id, str) and _LOAD_ID.fullmatch(load_id):
        return load_id
    raise InvalidBatch(
        "load_id",
        None,
        "load-id",
        f"a load id is 1 to 64 letters, digits or '.', '_', ':', '-'; got {load_id!r}",
    )


def record(cursor, load_id: str, accepted: int, duplicates: int) -> None:
    """Note the load in the transaction that commits it; an id used before is refused."""
    load_id = check_load_id(load_id)
    if scalar(cursor, f"SELECT count(*) FROM tb_load WHERE load_id = '{load_id}'"):
        raise InvalidBatch(
            "load_id", None, "load-id-used", f"load {load_id!r} was committed before"
        )
    cursor.execute(
        "INSERT INTO tb_load (load_id, accepted, duplicates) "
        f"VALUES ('{load_id}', {int(accepted)}, {int(duplicates)})"
    )


def load_status(store: Store, load_id: str) -> LoadStatus:
    """Whether load `load_id` was committed, once no put is between its last check and
    its commit: the question waits its writer turn, so a put that a cancelled client
    started either committed before it or will see the cancellation and roll back."""
    load_id = check_load_id(load_id)
    with store.write() as conn, conn.cursor() as cursor:
        take_turn(cursor, store.backend)
        cursor.execute(f"SELECT accepted, duplicates FROM tb_load WHERE load_id = '{load_id}'")
        rows = cursor.fetchall()
        conn.rollback()
    if not rows:
        return LoadStatus(load_id, False)
    return LoadStatus(load_id, True, int(rows[0][0]), int(rows[0][1]))
