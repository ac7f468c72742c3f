"""Signatures on live updates, so that only flightdeck's own publisher feeds live subscribers.

Whoever may publish to `analytics.aggregate.updated` (anyone, on an external
NATS without authentication) could otherwise send rows that every live
subscriber shows as fact. The outbox publisher signs each update with
HMAC-SHA256 over its subject, the headers that say what it is, and its
payload; the hub drops whatever does not verify.

The key lives in the store (`tb_live_signing_key`, made by a migration, filled
on first use with 32 random bytes), so every `serve` and `ingest` process on
one store signs and verifies with the same key and no setting to share; only
the writing role reads it, never a query (tb_ tables are not served).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from flightdeck.views import Store

__all__ = ["KIND_HEADER", "SIGNATURE_HEADER", "SIGNED_HEADERS", "sign", "signing_key", "verify"]

SIGNATURE_HEADER = "Flightdeck-Signature"
# What an update is: which view's rows, which version, which part. (Nats-Msg-Id
# is JetStream's dedupe key, not read by the hub: left out.)
SIGNED_HEADERS = ("Content-Type", "Flightdeck-View", "Flightdeck-Version", "Flightdeck-Part")
# Signed only when present (a `remove` message): updates signed before it existed still verify,
# and stripping it from a remove changes what was signed.
KIND_HEADER = "Flightdeck-Kind"
_SCHEME = "v1="  # room for another algorithm or key without ambiguity
_KEY_TABLE = "tb_live_signing_key"


def sign(key: bytes, subject: str, headers: Mapping[str, str], payload: bytes) -> str:
    """The value of the signature header for this message."""
    return _SCHEME + hmac.new(key, _signed_bytes(subject, headers, payload), "sha256").hexdigest()


def verify(key: bytes, subject: str, headers: Mapping[str, str] | None, payload: bytes) -> bool:
    """True only when the message carries a signature made with `key` over exactly this."""
    given = (headers or {}).get(SIGNATURE_HEADER, "")
    expected = sign(key, subject, headers or {}, payload)
    return hmac.compare_digest(given.encode(), expected.encode())


def _signed_bytes(subject: str, headers: Mapping[str, str], payload: bytes) -> bytes:
    # NATS header values cannot hold a line break, so lines cannot be shifted
    # from one field into the next; the payload goes last, after a blank line.
    lines = [subject, *(f"{name}:{headers.get(name, '')}" for name in SIGNED_HEADERS)]
    if KIND_HEADER in headers:
        lines.append(f"{KIND_HEADER}:{headers[KIND_HEADER]}")
    return "\n".join(lines).encode() + b"\n\n" + payload


def signing_key(store: Store) -> bytes:
    """The store's live-update key, made by whichever process asks first."""
    candidate = secrets.token_hex(32)
    with store.write() as conn, conn.cursor() as cursor:
        # Two processes starting at once: the second insert does nothing, both read one key.
        cursor.execute(
            f"INSERT INTO {_KEY_TABLE} (id, secret) VALUES (1, '{candidate}') "
            "ON CONFLICT (id) DO NOTHING"
        )
        cursor.execute(f"SELECT secret FROM {_KEY_TABLE} WHERE id = 1")
        (secret,) = cursor.fetchone()
        conn.commit()
    return bytes.fromhex(secret)
