"""Which row of a put the store refuses, found by bisecting the staged rows.

Values that pass every ingest rule can still be refused by the store (an
operator's unique index, PostgreSQL's index row size): a BackendError that is
the data's fault (`data_refused`). The put must then be refused as any other bad
row is, naming its row, so the client fixes it rather than retrying. The put was
streamed, so its rows are not in memory: they are in the staging table, each
with its place in the put (`flightdeck_seq`). The same write is tried on ever
shorter prefixes of them, each try undone, until the shortest refused prefix is
found: its last row is the first the store refuses (about log2(n) tries). A
prefix, not a range: a row refused only together with an earlier one (two under
one unique key) is the later one, as a real commit would have it.

Undoing a try: the staged rows are committed first (a temp table, kept by the
connection), and each try runs in a transaction of its own that is rolled back.
Not a savepoint: DuckDB has none, and PostgreSQL's ADBC driver refuses every
statement after an error, ROLLBACK TO SAVEPOINT included, until a rollback. So
`write` takes the writer's turn itself. The committed stage outlives a refused
put: it is dropped here, and whoever stages next drops any left (a lost connection).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TypeVar

from flightdeck.views import BackendError
from flightdeck.views.store import backend_errors

from .errors import InvalidBatch

__all__ = ["StoreRefusals"]

_T = TypeVar("_T")
_LONGEST_REASON = 300
# Where the store names the refused column: PostgreSQL's "Key (referrer)=(…) already
# exists" and "null value in column "x"", DuckDB's "Duplicate key "referrer: …"".
_COLUMN = (
    re.compile(r"Key \((\w+)\)="),
    re.compile(r'in column "(\w+)"'),
    re.compile(r'Duplicate key "(\w+): '),
)


class StoreRefusals:
    """Runs a put's write so that a refusal by the store names the row refused."""

    def __init__(self, conn, cursor, backend: str, stage: str) -> None:
        self._conn = conn
        self._cursor = cursor
        self._backend = backend
        self._stage = stage
        self._last: int | None = None  # the last staged row of the try under way, if any

    def run(self, write: Callable[[], _T], staged: int) -> _T:
        """`write()`'s result, uncommitted; InvalidBatch (rule `store`) naming the first
        row refused, or the store's own error, with the stage dropped.

        Call once the transaction has written nothing but the staging table."""
        with backend_errors(self._backend):
            self._conn.commit()
        try:
            return self._first_try(write, staged)
        except BaseException:
            self._drop_stage()
            raise

    def restart(self) -> None:
        """Roll the write under way back to where it had only the stage (cut as its try
        cut it), so that it can start again a different way."""
        self._undo()
        if self._last is not None:
            self._cut(self._last)

    def _first_try(self, write: Callable[[], _T], staged: int) -> _T:
        try:
            with backend_errors(self._backend):
                return write()
        except BackendError as exc:
            if not exc.data_refused:
                raise
            self._undo()
            row, error = self._first_refused(write, staged - 1, exc)
            raise _invalid(row, error) from None

    def _first_refused(self, write, last: int, error: BackendError) -> tuple[int, BackendError]:
        """Rows 0..`last` are refused with `error`; the shortest refused prefix ends where?"""
        low = 0  # every prefix shorter than `low` rows was taken
        while low < last:
            middle = (low + last) // 2
            refused = self._try(write, middle)
            if refused is None:
                low = middle + 1
            else:
                last, error = middle, refused
        return last, error

    def _try(self, write, last: int) -> BackendError | None:
        """The store's refusal of rows 0..`last` alone, None if it takes them; undone."""
        self._last = last
        try:
            with backend_errors(self._backend):
                self._cut(last)
                write()
        except BackendError as exc:
            if not exc.data_refused:
                raise
            return exc
        finally:
            self._last = None
            self._undo()
        return None

    def _cut(self, last: int) -> None:
        self._cursor.execute(f"DELETE FROM {self._stage} WHERE flightdeck_seq > {last}")

    def _drop_stage(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.rollback()
            self._cursor.execute(f"DROP TABLE IF EXISTS {self._stage}")
            self._conn.commit()

    def _undo(self) -> None:
        with backend_errors(self._backend):
            self._conn.rollback()


def _invalid(row: int, error: BackendError) -> InvalidBatch:
    column = next((m.group(1) for p in _COLUMN if (m := p.search(error.reason))), None)
    return InvalidBatch(column, row, "store", f"{error.backend} refused it: {_sentence(error)}")


def _sentence(error: BackendError) -> str:
    """The store's reason without the query PostgreSQL's driver quotes before it."""
    text = error.reason.split("ERROR:", 1)[-1]
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else error.reason
    detail = next((line for line in lines[1:] if line.startswith("DETAIL:")), None)
    if detail is not None:
        first = f"{first.rstrip('.')} ({detail.removeprefix('DETAIL:').strip().rstrip('.')})"
    if len(first) > _LONGEST_REASON:
        first = first[: _LONGEST_REASON - 1] + "…"
    return first
