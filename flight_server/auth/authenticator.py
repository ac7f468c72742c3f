"""Checking credentials: bearer tokens, basic auth, and the session tokens basic auth earns.

Flight SQL's JDBC and ODBC drivers (and ADBC with a username) send a Handshake
with `authorization: Basic …` and expect `authorization: Bearer …` back, which
they send on every later call. That session token is signed with the auth
file's key and names the user, role and expiry, so any server sharing the file
accepts it, and it is refused as soon as the user is removed from the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.flight as flight

from .file import ROLES, AuthFile, check_password, load_auth_file, token_hash

__all__ = ["ANONYMOUS", "Authenticator", "Identity"]

_SESSION_PREFIX = "fds_"


@dataclass(frozen=True)
class Identity:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


# Without an auth file there are no users; the server is then loopback-only.
ANONYMOUS = Identity("anonymous", "admin")


class Authenticator:
    """Verifies an `authorization` header against the auth file (re-read when it changes)."""

    def __init__(self, path: Path, session_hours: float = 12.0) -> None:
        self._path = path
        self._session_s = session_hours * 3600
        self._lock = threading.Lock()
        self._file: AuthFile = load_auth_file(path)  # a missing file fails at start, clearly
        self._stamp = path.stat().st_mtime

    def authenticate(self, authorization: str | None) -> tuple[Identity, str | None]:
        """The caller's identity, and a session token to send back after basic auth."""
        if not authorization:
            raise flight.FlightUnauthenticatedError(
                "authentication required: send `authorization: Bearer <token>`, or basic "
                "auth (user and password) on the Flight handshake"
            )
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self._bearer(credentials.strip()), None
        if scheme.lower() == "basic":
            identity = self._basic(credentials.strip())
            return identity, self._issue(identity)
        raise flight.FlightUnauthenticatedError(
            f"unsupported authorization scheme {scheme!r}: use Bearer or Basic"
        )

    def _current(self) -> AuthFile:
        # Re-read when the file changes, so `flightdeck auth add-token` needs no restart.
        try:
            stamp = self._path.stat().st_mtime
        except OSError:
            return self._file  # moved or mid-replace: keep what we had
        with self._lock:
            if stamp != self._stamp:
                self._file = load_auth_file(self._path)
                self._stamp = stamp
            return self._file

    def _bearer(self, token: str) -> Identity:
        auth = self._current()
        if token.startswith(_SESSION_PREFIX):
            return self._session(token, auth)
        entry = auth.tokens.get(token_hash(token))
        if entry is None:
            raise flight.FlightUnauthenticatedError("unknown or revoked bearer token")
        return Identity(entry["name"], entry["role"])

    def _basic(self, credentials: str) -> Identity:
        try:
            padded = credentials + "=" * (-len(credentials) % 4)  # drivers differ on padding
            user, _, password = base64.b64decode(padded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise flight.FlightUnauthenticatedError("malformed basic credentials") from None
        entry = self._current().users.get(user)
        if entry is None or not check_password(password, entry["password"]):
            raise flight.FlightUnauthenticatedError("wrong user name or password")
        return Identity(user, entry["role"])

    def _issue(self, identity: Identity) -> str:
        claims = {"n": identity.name, "r": identity.role, "e": int(time.time() + self._session_s)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{_SESSION_PREFIX}{body}.{_b64(self._sign(body, self._current()))}"

    def _session(self, token: str, auth: AuthFile) -> Identity:
        body, _, signature = token.removeprefix(_SESSION_PREFIX).partition(".")
        if not hmac.compare_digest(_b64(self._sign(body, auth)), signature):
            raise flight.FlightUnauthenticatedError("invalid session token")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if claims["e"] < time.time():
            raise flight.FlightUnauthenticatedError("session expired: authenticate again")
        user = auth.users.get(claims["n"])
        if user is None:
            raise flight.FlightUnauthenticatedError(f"user {claims['n']!r} no longer exists")
        return Identity(claims["n"], user["role"])

    @staticmethod
    def _sign(body: str, auth: AuthFile) -> bytes:
        return hmac.new(auth.signing_key, body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
