"""The session cookie: how a Flight client names its session on every call.

As Flight's session spec says, the server sets a cookie `arrow_flight_session_id`
in its response headers and clients with a cookie middleware (the JDBC driver,
arrow-go's and ADBC's with `adbc.flight.sql.rpc.with_cookie_middleware`) send it
back. pyarrow sends response headers before the handler runs, so a call without
a usable cookie is offered a fresh id up front; the session itself is only
created when SetSessionOptions first stores something under that id.
"""

from __future__ import annotations

import re
import secrets

import pyarrow.flight as flight

__all__ = ["COOKIE_NAME", "SESSION_MIDDLEWARE", "SessionCookieFactory", "session_id_of"]

COOKIE_NAME = "arrow_flight_session_id"
SESSION_MIDDLEWARE = "session"
# What we issue (32 hex digits); anything else a client sends is ignored, which also
# bounds what a client can make the server keep as a key.
_ID = re.compile(r"[0-9a-f]{32}")


class _CallSession(flight.ServerMiddleware):
    def __init__(self, session_id: str, issued: bool) -> None:
        self.session_id = session_id
        self._issued = issued

    def sending_headers(self) -> dict[str, str]:
        if not self._issued:
            return {}
        return {"set-cookie": f"{COOKIE_NAME}={self.session_id}; Path=/; HttpOnly"}


class SessionCookieFactory(flight.ServerMiddlewareFactory):
    def start_call(self, info: flight.CallInfo, headers: dict) -> _CallSession:
        sent = _cookie(headers.get("cookie") or [])
        if sent is not None:
            return _CallSession(sent, issued=False)
        return _CallSession(secrets.token_hex(16), issued=True)


def session_id_of(context: flight.ServerCallContext) -> str | None:
    middleware = context.get_middleware(SESSION_MIDDLEWARE)
    return middleware.session_id if middleware is not None else None


def _cookie(values: list) -> str | None:
    """The session id among the request's Cookie headers, if one is well formed."""
    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        for pair in text.split(";"):
            name, _, found = pair.strip().partition("=")
            if name == COOKIE_NAME and _ID.fullmatch(found):
                return found
    return None
