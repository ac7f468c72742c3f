"""The Flight middleware that authenticates every call, and the role check handlers use.

Authentication happens here, for every RPC alike. Authorisation happens in the
handlers, because what a call needs can depend on its descriptor: binding
parameters to a prepared query is a read, a bulk ingest is a write.
"""

from __future__ import annotations

import pyarrow.flight as flight

from .authenticator import ANONYMOUS, Authenticator, Identity

__all__ = [
    "AUTH_MIDDLEWARE",
    "AuthMiddlewareFactory",
    "HandshakeAuthHandler",
    "check_role",
    "identity_of",
    "require",
]

AUTH_MIDDLEWARE = "auth"


class _CallAuth(flight.ServerMiddleware):
    def __init__(self, identity: Identity, issued: str | None) -> None:
        self.identity = identity
        self._issued = issued

    def sending_headers(self) -> dict[str, str]:
        # After basic auth, the session token drivers will send back as a bearer token.
        return {"authorization": f"Bearer {self._issued}"} if self._issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, authenticator: Authenticator | None) -> None:
        """None: no auth configured, every caller is ANONYMOUS (an admin)."""
        self._authenticator = authenticator

    def start_call(self, info: flight.CallInfo, headers: dict) -> _CallAuth:
        if self._authenticator is None:
            return _CallAuth(ANONYMOUS, None)
        values = headers.get("authorization") or []
        value = values[0] if values else None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        identity, issued = self._authenticator.authenticate(value)
        return _CallAuth(identity, issued)


def identity_of(context: flight.ServerCallContext) -> Identity:
    middleware = context.get_middleware(AUTH_MIDDLEWARE)
    return middleware.identity if middleware is not None else ANONYMOUS


def require(context: flight.ServerCallContext, role: str, what: str) -> Identity:
    """The caller's identity if it has `role` (or more); else PERMISSION_DENIED saying why."""
    return check_role(identity_of(context), role, what)


def check_role(identity: Identity, role: str, what: str) -> Identity:
    """`identity` if it has `role` (or more); else PERMISSION_DENIED saying why."""
    if not identity.may(role):
        raise flight.FlightUnauthorizedError(
            f"{what} needs the {role} role; {identity.name!r} has {identity.role}"
        )
    return identity


class HandshakeAuthHandler(flight.ServerAuthHandler):
    """Lets the Flight Handshake RPC through: the middleware already checked its headers.

    Without an auth handler pyarrow answers every Handshake UNIMPLEMENTED, and
    the JDBC/ODBC drivers and ADBC log in with basic auth on a Handshake. Each
    call is authenticated by the middleware, so the handshake token is unused.
    """

    def authenticate(self, outgoing: flight.ServerAuthSender, incoming) -> None:
        outgoing.write(b"")

    def is_valid(self, token: bytes) -> str:
        return ""
