"""Session tokens: what a basic-auth login earns, bound to the credential it was checked against.

A session token is `fds_<claims>.<signature>`: base64url JSON claims (user,
role, expiry, credential fingerprint) signed with HMAC-SHA256 under the auth
file's key, so every server given the same file accepts it. The fingerprint
is a keyed hash of the user's stored entry (role and salted password hash):
a password change, a role change or removing and re-adding the user changes
it, and every session issued before is refused on its next call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass

from .file import AuthFile

__all__ = ["SESSION_PREFIX", "SessionRefused", "check_session", "issue_session"]

SESSION_PREFIX = "fds_"
_AGAIN = "authenticate again"


class SessionRefused(Exception):
    """A session token that does not (or no longer) stand; the message says why, in one line."""


@dataclass(frozen=True)
class _Claims:
    name: str
    expires: float
    fingerprint: str


def issue_session(auth: AuthFile, name: str, entry: dict, expires: float) -> str:
    """A session token for user `name` as `entry` stands now, valid until `expires` (epoch s)."""
    claims = {
        "n": name,
        "r": entry["role"],
        "e": int(expires),
        "f": _fingerprint(auth.signing_key, name, entry),
    }
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{SESSION_PREFIX}{body}.{_b64(_sign(auth.signing_key, body))}"


def check_session(auth: AuthFile, token: str, now: float) -> tuple[str, dict]:
    """The user name and current entry of a session that still stands; else SessionRefused."""
    body, dot, signature = token.removeprefix(SESSION_PREFIX).partition(".")
    expected = _b64(_sign(auth.signing_key, body)).encode()
    if not dot or not hmac.compare_digest(expected, signature.encode()):
        raise SessionRefused("invalid session token")
    claims = _claims(body)
    if claims.expires < now:
        raise SessionRefused(f"session expired: {_AGAIN}")
    entry = auth.users.get(claims.name)
    if entry is None:
        raise SessionRefused(f"user {claims.name!r} no longer exists")
    current = _fingerprint(auth.signing_key, claims.name, entry)
    if not hmac.compare_digest(current.encode(), claims.fingerprint.encode()):
        raise SessionRefused(
            f"the password or role of {claims.name!r} changed after this session token "
            f"was issued: {_AGAIN}"
        )
    return claims.name, entry


def _claims(body: str) -> _Claims:
    # Signed claims of another shape come from an older or newer flightdeck
    # sharing the key: refused in one line, never a traceback.
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        name, expires, fingerprint = raw["n"], raw["e"], raw["f"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise SessionRefused(f"malformed session token: {_AGAIN}") from None
    valid = (
        isinstance(name, str)
        and isinstance(fingerprint, str)
        and isinstance(expires, int | float)
        and not isinstance(expires, bool)
        and math.isfinite(expires)
    )
    if not valid:
        raise SessionRefused(f"malformed session token: {_AGAIN}")
    return _Claims(name, expires, fingerprint)


def _fingerprint(key: bytes, name: str, entry: dict) -> str:
    stored = json.dumps([name, entry["role"], entry["password"]]).encode()
    return _b64(hmac.new(key, b"credential\0" + stored, hashlib.sha256).digest()[:16])


def _sign(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
