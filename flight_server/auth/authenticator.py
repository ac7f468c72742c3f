"""Checking credentials: bearer tokens, basic auth, and the session tokens basic auth earns.

Flight SQL's JDBC and ODBC drivers (and ADBC with a username) send a Handshake
with `authorization: Basic …` and expect `authorization: Bearer …` back, which
they send on every later call. That session token is signed with the auth
file's key and bound to the user's credential as it stood (sessions.py), so
any server sharing the file accepts it until the user's password or role
changes or the user is removed.

With single sign-on (oidc.py) a bearer token that is a JWT is checked against
the identity provider instead; the auth file, if there is one, still serves
its own users and tokens beside it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.flight as flight

from .file import ROLES, AuthFile, AuthFileError, load_auth_file, token_hash
from .oidc import OidcOptions, OidcRefused, OidcUnavailable, OidcVerifier, looks_like_jwt
from .passwords import verify_password
from .sessions import SESSION_PREFIX, SessionRefused, check_session, issue_session
from .throttle import LoginsBusy, LoginThrottle, TooManyFailures

__all__ = ["ANONYMOUS", "Authenticator", "Identity"]

log = logging.getLogger("flightdeck.auth")


@dataclass(frozen=True)
class Identity:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


# Without an auth file there are no users; the server is then loopback-only.
ANONYMOUS = Identity("anonymous", "admin")


class Authenticator:
    """Verifies an `authorization` header against the auth file (re-read when it changes)
    and, with `oidc`, an identity provider's tokens."""

    def __init__(
        self,
        path: Path | None,
        session_hours: float = 12.0,
        throttle: LoginThrottle | None = None,
        oidc: OidcOptions | None = None,
    ) -> None:
        self._path = path
        self._session_s = session_hours * 3600
        self._throttle = throttle or LoginThrottle()
        self._lock = threading.Lock()
        self._oidc = OidcVerifier(oidc) if oidc else None
        # A missing, malformed or too open file fails here, at start, in one line.
        self._file: AuthFile | None = load_auth_file(path) if path else None
        self._stamp = _stamp(path) if path else None

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
            return self._basic(credentials.strip())
        raise flight.FlightUnauthenticatedError(
            f"unsupported authorization scheme {scheme!r}: use Bearer or Basic"
        )

    def _current(self) -> AuthFile:
        if self._path is None:
            raise flight.FlightUnauthenticatedError(
                "this server has no auth file: send an identity provider's token as "
                "`authorization: Bearer <jwt>`"
            )
        # Re-read when the file changes, so `flightdeck auth add-token` needs no restart.
        # A file that became unusable fails closed (a removed user must not live on
        # through the last good copy); the reason, with the path, goes to the log only.
        try:
            stamp = _stamp(self._path)
        except OSError:
            stamp = None  # moved or mid-replace: keep what we had
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._file = load_auth_file(self._path)
                except AuthFileError as exc:
                    log.error("auth file unusable, refusing every call until fixed: %s", exc)
                    self._file = None
            if self._file is None:
                raise flight.FlightUnavailableError(
                    "authentication unavailable: the server's auth file is unusable; "
                    "its operator must fix it (the server log says why)"
                )
            return self._file

    def _bearer(self, token: str) -> Identity:
        if self._oidc is not None and looks_like_jwt(token):
            return self._single_sign_on(token)
        auth = self._current()
        if token.startswith(SESSION_PREFIX):
            try:
                name, entry = check_session(auth, token, time.time())
            except SessionRefused as refused:
                raise flight.FlightUnauthenticatedError(str(refused)) from None
            return Identity(name, entry["role"])
        entry = auth.tokens.get(token_hash(token))
        if entry is None:
            raise flight.FlightUnauthenticatedError("unknown or revoked bearer token")
        return Identity(entry["name"], entry["role"])

    def _single_sign_on(self, token: str) -> Identity:
        assert self._oidc is not None
        try:
            subject, role = self._oidc.verify(token)
        except OidcRefused as refused:
            raise flight.FlightUnauthenticatedError(str(refused)) from None
        except OidcUnavailable as down:
            raise flight.FlightUnavailableError(f"single sign-on unavailable: {down}") from None
        return Identity(subject, role)

    def _basic(self, credentials: str) -> tuple[Identity, str]:
        try:
            padded = credentials + "=" * (-len(credentials) % 4)  # drivers differ on padding
            user, _, password = base64.b64decode(padded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise flight.FlightUnauthenticatedError("malformed basic credentials") from None
        auth = self._current()
        entry = auth.users.get(user)
        stored = entry["password"] if entry is not None else None
        try:
            # One scrypt whether or not the user exists (verify_password), throttled.
            valid = self._throttle.verify(user, lambda: verify_password(password, stored))
        except TooManyFailures as refused:
            raise flight.FlightUnauthenticatedError(str(refused)) from None
        except LoginsBusy as busy:
            raise flight.FlightUnavailableError(str(busy)) from None
        if not valid or entry is None:
            raise flight.FlightUnauthenticatedError("wrong user name or password")
        session = issue_session(auth, user, entry, time.time() + self._session_s)
        return Identity(user, entry["role"]), session


def _stamp(path: Path) -> tuple[int, int, int, int]:
    """What changes when the file is rewritten, replaced or chmod-ed."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
