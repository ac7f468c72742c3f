"""Errors of the write path, in the caller's words: which column, which row, which rule."""

from __future__ import annotations

from flightdeck.base_error import FlightdeckError

__all__ = ["InvalidBatch", "RetentionRace"]


class InvalidBatch(FlightdeckError):
    """Input refused before anything was written. `row` counts from 0 across the whole put."""

    def __init__(self, column: str | None, row: int | None, rule: str, detail: str) -> None:
        self.detail = detail
        where = [f"column {column!r}"] if column else []
        where += [f"row {row}"] if row is not None else []
        prefix = f" ({', '.join(where)})" if where else ""
        super().__init__(
            f"batch refused [{rule}]{prefix}: {detail}", rule=rule, column=column, row=row
        )


class RetentionRace(InvalidBatch):
    """Retention deleted a day of this put while it was being ingested: the put is
    refused as a whole (no row is at fault). The only refusal a retry can cure: the
    NATS worker decodes the messages again and sets that day's events aside."""

    def __init__(self, *, detail: str) -> None:
        super().__init__("recorded_at", None, "retention", detail)
