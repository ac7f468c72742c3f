"""The client's own errors, and the one place where pyarrow's exceptions become them.

A Flight error reaches Python as a pyarrow exception whose type says the gRPC
status (ArrowInvalid is INVALID_ARGUMENT, ArrowKeyError is NOT_FOUND, ...) and
whose message is the server's sentence followed by pyarrow's transport notes:
`. Detail: Python exception: Traceback ...`, `. gRPC client debug context: ...`,
`. Client context: IOError: ...`. Users should read the server's sentence only.
What the sentence names (rule, column, row, view) comes as data in a trailer of
the call (see error_detail.py), which `DETAIL_TRAILERS` keeps for `converted()`.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Literal

import pyarrow as pa
import pyarrow.flight as flight

from .base_error import FlightdeckError
from .error_detail import TRAILER, ErrorDetail, decode

__all__ = [
    "DETAIL_TRAILERS",
    "Error",
    "LoadError",
    "LoadInterrupted",
    "NotFoundError",
    "QueryError",
    "ServerError",
    "ServerUnavailable",
    "TimedOut",
    "Unauthorized",
    "clean_message",
    "converted",
    "from_arrow",
]

Operation = Literal["query", "load", "other"]


class Error(FlightdeckError):
    """Base class of every flightdeck client error.

    `message` is the server's own words. Where the server named them, `rule`
    (e.g. `va-views-only`, `required-column`), `column`, `row` (counted from
    0 across a load) and `view` say what was refused; `code` is the gRPC status
    name, or None when the client refused before sending anything.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        rule: str | None = None,
        column: str | None = None,
        row: int | None = None,
        view: str | None = None,
    ) -> None:
        super().__init__(message, rule=rule, column=column, row=row, view=view)
        self.code = code


class QueryError(Error):
    """A query the server (or the client, before sending it) refused: fix the query."""


class LoadError(Error):
    """A load refused as a whole: nothing of it was committed."""


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) stopped a load; the message says what became of it.

    `committed` is False when the put was aborted (nothing of it is stored), True
    when the server had committed it already (`result` then says what it stored),
    None when the answer never came: `Client.load_status(load_id)` asks again.
    """

    def __init__(
        self,
        message: str,
        committed: bool | None,
        result: dict | None = None,
        load_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.committed = committed
        self.result = result
        self.load_id = load_id


class NotFoundError(Error):
    """A view or other named thing that does not exist; the message lists what does."""


class ServerUnavailable(Error):
    """No server answered at the location, or a service it needs (NATS) is missing."""


class TimedOut(Error):
    """The call ran past its deadline (the server's query timeout, or the client's)."""


class Unauthorized(Error):
    """Missing or wrong credentials, or a role that may not do this."""


class ServerError(Error):
    """The server failed (INTERNAL and other statuses): not the caller's mistake."""


# pyarrow's suffixes, earliest first wins. The server's sentence never contains them:
# its own details (PostgreSQL's DETAIL:, DuckDB's LINE 1:) are spelled differently.
_NOISE = re.compile(
    r"\.?\s*(?:"
    r"Detail: Python exception: .*"
    r"|Detail: [A-Z][A-Za-z]*(?=\.|$).*"
    r"|gRPC client debug context: .*"
    r"|Client context: .*"
    r")$",
    re.DOTALL,
)
_TRANSPORT_PREFIX = re.compile(r"^Flight returned [\w ]+ error, with message: ")

_CODES: list[tuple[type[BaseException], str, type[Error]]] = [
    # Flight's own classes first: FlightError subclasses ArrowException too.
    (flight.FlightUnavailableError, "UNAVAILABLE", ServerUnavailable),
    (flight.FlightTimedOutError, "DEADLINE_EXCEEDED", TimedOut),
    (flight.FlightUnauthenticatedError, "UNAUTHENTICATED", Unauthorized),
    (flight.FlightUnauthorizedError, "PERMISSION_DENIED", Unauthorized),
    (flight.FlightCancelledError, "CANCELLED", Error),
    (flight.FlightInternalError, "INTERNAL", ServerError),
    (flight.FlightServerError, "INTERNAL", ServerError),
    (pa.ArrowKeyError, "NOT_FOUND", NotFoundError),
    (pa.ArrowNotImplementedError, "UNIMPLEMENTED", ServerError),
    (pa.ArrowInvalid, "INVALID_ARGUMENT", QueryError),
]


def clean_message(text: str) -> str:
    """The server's sentence, without what pyarrow and gRPC appended or prefixed."""
    # Cut at the first marker: a backend's own message may span lines (DuckDB's caret line).
    noise = _NOISE.search(text)
    text = text[: noise.start()] if noise else text
    return _TRANSPORT_PREFIX.sub("", text.strip()).strip()


def from_arrow(
    exc: BaseException,
    during: Operation = "other",
    location: str = "",
    detail: ErrorDetail | None = None,
) -> Error:
    """The client error for a pyarrow (or Flight) exception raised by a call.

    `during` says what the call was doing, because INVALID_ARGUMENT means a bad
    query on a read and a refused batch on a load. `location` names the server in
    the message when none answered; `detail` is what the server named, sent beside
    its sentence. The caller keeps `exc` as `__cause__`.
    """
    code, kind = "UNKNOWN", ServerError
    for arrow_type, status, error_type in _CODES:
        if isinstance(exc, arrow_type):
            code, kind = status, error_type
            break
    raw = str(exc)
    message = clean_message(raw) or type(exc).__name__
    if kind is QueryError and during == "load":
        kind = LoadError
    if kind is ServerUnavailable and _TRANSPORT_PREFIX.match(raw) and location:
        message = f"cannot reach a flightdeck server at {location}: {message}"
    named = detail or ErrorDetail()
    return kind(
        message,
        code=code,
        rule=named.rule,
        column=named.column,
        row=named.row,
        view=named.view,
    )


class _DetailReader(flight.ClientMiddleware):
    def __init__(self) -> None:
        self.detail = ErrorDetail()

    def received_headers(self, headers: dict) -> None:
        # Called for the headers and again for the trailers, where the detail is.
        values = headers.get(TRAILER)
        if values:
            self.detail = decode(values[-1])


class _DetailTrailers(flight.ClientMiddlewareFactory):
    """Keeps the error detail of the call a thread made last, for `converted()`.

    A call starts on the thread that makes it, and its error surfaces there too;
    the trailers may arrive on another thread, so each call has its own reader.
    """

    def __init__(self) -> None:
        self._calls = threading.local()

    def start_call(self, info: flight.CallInfo) -> flight.ClientMiddleware:
        self._calls.last = _DetailReader()
        return self._calls.last

    def last_detail(self) -> ErrorDetail:
        last = getattr(self._calls, "last", None)
        return last.detail if last is not None else ErrorDetail()


# Every FlightClient the client opens takes it as middleware.
DETAIL_TRAILERS = _DetailTrailers()


@contextlib.contextmanager
def converted(during: Operation = "other", location: str = "") -> Iterator[None]:
    """Run a block of Flight calls; pyarrow's exceptions leave it as our own."""
    try:
        yield
    except pa.ArrowException as exc:
        raise from_arrow(exc, during, location, DETAIL_TRAILERS.last_detail()) from exc
