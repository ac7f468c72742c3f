"""The one place where flightdeck's and Flight's errors become HTTP answers.

The same typed refusals as Flight, as JSON: `{"error": sentence, "rule": …,
"column": …, "row": …, "view": …}` (the named fields only) with the status
a client acts on: 400 refused, 401 who are you, 403 not allowed, 404 no such
view, 503 full or not ready (retry), 504 too slow.
"""

from __future__ import annotations

import dataclasses
import logging

import pyarrow.flight as flight
from flightdeck.base_error import FlightdeckError
from flightdeck.ingest import InvalidBatch
from flightdeck.views import BackendError, InvalidQuery, NotFound, Unsupported
from starlette.responses import JSONResponse

from ..refusals import InvalidAction, InvalidTarget

__all__ = ["BEARER_CHALLENGE", "HttpError", "error_response"]

log = logging.getLogger("flightdeck.http")

BEARER_CHALLENGE = 'Bearer realm="flightdeck", Basic realm="flightdeck"'

_BACKEND_STATUS = {"invalid": 400, "timeout": 504, "unavailable": 503}


class HttpError(Exception):
    """A refusal of the HTTP layer itself (a malformed body, a wrong media type)."""

    def __init__(self, status: int, message: str, rule: str) -> None:
        super().__init__(message)
        self.status = status
        self.rule = rule


def error_response(exc: Exception, what: str) -> JSONResponse:
    """The answer for an error raised while serving `what`; unknown ones are logged."""
    if isinstance(exc, HttpError):
        return _json(exc.status, str(exc), {"rule": exc.rule})
    if isinstance(exc, FlightdeckError):
        log.info("http=%s refused error=%r", what, str(exc))
        named = _named(exc)
        return _json(_status(exc), str(exc), named)
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return _json(401, str(exc), {}, {"WWW-Authenticate": BEARER_CHALLENGE})
    if isinstance(exc, flight.FlightUnauthorizedError):
        return _json(403, str(exc), {})
    if isinstance(exc, flight.FlightUnavailableError):
        return _json(503, str(exc), {}, {"Retry-After": "1"})
    if isinstance(exc, flight.FlightTimedOutError):
        return _json(504, str(exc), {})
    log.exception("http=%s failed", what)
    return _json(500, f"{what} failed: {type(exc).__name__}: {exc}", {})


def _named(exc: FlightdeckError) -> dict:
    # The fields Flight sends in its error-detail trailer, beside the sentence.
    detail = dataclasses.asdict(exc.error_detail)
    return {key: value for key, value in detail.items() if value is not None}


def _status(exc: FlightdeckError) -> int:
    if isinstance(exc, (InvalidQuery, InvalidBatch, InvalidAction, InvalidTarget)):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Unsupported):
        return 501
    if isinstance(exc, BackendError):
        return _BACKEND_STATUS.get(exc.kind, 500)
    return 500


def _json(status: int, message: str, named: dict, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, **named}, status_code=status, headers=headers)
