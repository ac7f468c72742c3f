"""Password hashes: scrypt, slow on purpose, and every check costs the same.

A check against a user who does not exist (or whose stored hash is unusable)
runs one scrypt of the same cost against a dummy hash, so the time of a
refusal does not tell whether the name exists.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os

__all__ = ["hash_password", "is_password_hash", "verify_password"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCHEME = "scrypt"


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    return _encode(salt, _derive(password, salt))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored` (None: no such user); always one scrypt."""
    parsed = _decode(stored) if stored is not None else None
    salt, digest = parsed if parsed is not None else _dummy()
    matches = hmac.compare_digest(_derive(password, salt), digest)
    return matches and parsed is not None


def is_password_hash(stored: object) -> bool:
    return isinstance(stored, str) and _decode(stored) is not None


def _derive(password: str, salt: bytes) -> bytes:
    # Looked up on the module at each call, so a test can count the calls.
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def _encode(salt: bytes, digest: bytes) -> str:
    return "$".join([_SCHEME, *(base64.b64encode(x).decode() for x in (salt, digest))])


def _decode(stored: str) -> tuple[bytes, bytes] | None:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != _SCHEME or not salt or not digest:
        return None
    try:
        return base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None


@functools.cache
def _dummy() -> tuple[bytes, bytes]:
    # Random bytes of a digest's length: no password derives them, and making
    # them costs no scrypt, so the first unknown name costs what later ones do.
    return os.urandom(16), os.urandom(64)
