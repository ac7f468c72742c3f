"""The one place where flightdeck's errors become Flight errors.

pyarrow maps a handler's exception to a gRPC status by its type: ValueError
family to INVALID_ARGUMENT, KeyError to NOT_FOUND, NotImplementedError to
UNIMPLEMENTED; the Flight* classes to their own codes. Non-Python clients
(JDBC, Go ADBC) act on those codes, so they must be right.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck import error_detail
from flightdeck.base_error import FlightdeckError
from flightdeck.ingest import InvalidBatch
from flightdeck.views import BackendError, InvalidQuery, NotFound, Unsupported

from .refusals import InvalidAction, InvalidTarget

__all__ = ["flight_errors", "to_flight_error"]

log = logging.getLogger("flightdeck.server")


class _WithoutTraceback:
    """Keeps the server's Python traceback out of the message clients receive.

    pyarrow appends `Detail: Python exception: <traceback>` to the gRPC message of
    an INVALID_ARGUMENT, NOT_FOUND or UNIMPLEMENTED raised by a handler, and a
    JDBC or ADBC user would read our file paths and line numbers. It formats that
    detail with `traceback.format_exception`, and when formatting fails it names
    only the exception's class; reading `__notes__` is part of the formatting,
    so failing there (with anything but AttributeError, which means "no notes")
    leaves `Detail: Python exception: InvalidArgument`.
    """

    @property
    def __notes__(self):
        raise RuntimeError("flightdeck sends clients its message without a traceback")


class InvalidArgument(_WithoutTraceback, pa.ArrowInvalid):
    pass


class Unimplemented(_WithoutTraceback, NotImplementedError):
    pass


class NotFoundError(_WithoutTraceback, KeyError):
    # KeyError's str() quotes its argument; clients should read our words as written.
    def __str__(self) -> str:
        return str(self.args[0])


def to_flight_error(exc: FlightdeckError) -> Exception:
    """The Flight exception (and so the gRPC status) for one of our errors."""
    message = str(exc)
    if isinstance(exc, (InvalidQuery, InvalidBatch, InvalidAction, InvalidTarget)):
        return InvalidArgument(message)
    if isinstance(exc, NotFound):
        return NotFoundError(message)
    if isinstance(exc, BackendError):
        return _backend(exc)
    if isinstance(exc, Unsupported):
        return Unimplemented(message)
    return flight.FlightServerError(message)


def _backend(exc: BackendError) -> Exception:
    message = str(exc)
    if exc.kind == "invalid":
        return InvalidArgument(message)
    if exc.kind == "timeout":
        return flight.FlightTimedOutError(message)
    if exc.kind == "unavailable":
        return flight.FlightUnavailableError(message)
    return flight.FlightInternalError(message)


@contextlib.contextmanager
def flight_errors(rpc: str, context: flight.ServerCallContext) -> Iterator[None]:
    """Wrap one RPC: our errors become Flight errors, what they name travels beside
    the sentence as structured detail; anything else is logged and internal."""
    try:
        yield
    except FlightdeckError as exc:
        log.info("rpc=%s refused error=%r", rpc, str(exc))
        detail = exc.error_detail
        if detail:
            context.add_trailer(error_detail.TRAILER, error_detail.encode(detail))
        raise to_flight_error(exc) from None
    except (flight.FlightError, pa.ArrowException):
        raise
    except Exception as exc:
        log.exception("rpc=%s failed", rpc)
        raise flight.FlightInternalError(f"{rpc} failed: {type(exc).__name__}: {exc}") from None
