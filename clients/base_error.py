"""The base of every error the server's layers raise (views, ingest, auth, the Flight server).

It lives here, beside the package's root, so that each layer may import it
without importing another layer: ingest and auth must not depend on storage.
The client's own errors are in `errors.py`; this one never reaches a user's
Python except as a message and its `detail`.
"""

from __future__ import annotations

from .error_detail import ErrorDetail

__all__ = ["FlightdeckError"]


class FlightdeckError(Exception):
    """Something the caller should be told about: `message` in plain words, and
    what it names (rule, column, row, view) as fields, sent as structured detail."""

    def __init__(
        self,
        message: str,
        *,
        rule: str | None = None,
        column: str | None = None,
        row: int | None = None,
        view: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.column = column
        self.row = row
        self.view = view

    def __str__(self) -> str:
        return self.message

    @property
    def error_detail(self) -> ErrorDetail:
        """What the error names, as the client receives it beside the sentence."""
        return ErrorDetail(rule=self.rule, column=self.column, row=self.row, view=self.view)
