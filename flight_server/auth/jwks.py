"""An identity provider's signing keys: found through its discovery document, fetched and cached.

The key set is fetched from the `jwks_uri` that the issuer's
`/.well-known/openid-configuration` names, and kept. An unknown key id
(the provider rotated its keys) fetches it again, but at most once per
`refresh_s`, so a stream of tokens with made-up key ids cannot turn the server
into a flood of requests to the provider. Every fetch has a timeout and a size
limit, and only `max_keys` keys are kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

__all__ = ["JwksUnavailable", "KeySet", "KeySetOptions"]

log = logging.getLogger("flightdeck.auth")

_MAX_DOCUMENT_BYTES = 1024 * 1024


class JwksUnavailable(Exception):
    """The provider's keys could not be fetched; the message says why, in one line."""


@dataclass(frozen=True)
class KeySetOptions:
    issuer: str
    timeout_s: float = 5.0
    refresh_s: float = 30.0  # at most one fetch per this, however many unknown key ids
    max_age_s: float = 3600.0  # keys older than this are fetched again on next use
    max_keys: int = 64


class KeySet:
    """The issuer's public keys by key id (JWK dicts), fetched on first use."""

    def __init__(self, options: KeySetOptions) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._keys: dict[str, dict] = {}
        self._fetched = float("-inf")  # when the last fetch was tried
        self._loaded = float("-inf")  # when the keys were last fetched successfully

    def key(self, kid: str) -> dict | None:
        """The JWK with id `kid`, fetching the set if it is unknown or old (rate-limited);
        None if the provider does not have it. JwksUnavailable if it cannot be asked."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._loaded > self._options.max_age_s
            if (kid not in self._keys or stale) and now - self._fetched >= self._options.refresh_s:
                self._fetched = now
                try:
                    self._keys, self._loaded = self._fetch(), now
                except JwksUnavailable:
                    if kid not in self._keys:  # a known key stays usable while it is down
                        raise
            if self._loaded == float("-inf"):
                raise JwksUnavailable(
                    "the identity provider's keys could not be fetched; try again shortly"
                )
            return self._keys.get(kid)

    def _fetch(self) -> dict[str, dict]:
        try:
            discovery = _get_json(self._discovery_url(), self._options.timeout_s)
            if discovery.get("issuer", "").rstrip("/") != self._options.issuer.rstrip("/"):
                raise JwksUnavailable("the discovery document names another issuer")
            uri = discovery.get("jwks_uri")
            if not isinstance(uri, str) or not uri.startswith(_scheme(self._options.issuer)):
                raise JwksUnavailable(
                    "the discovery document has no jwks_uri of the issuer's scheme"
                )
            found = _get_json(uri, self._options.timeout_s).get("keys")
        except JwksUnavailable as exc:
            log.error("OIDC keys of %s: %s", self._options.issuer, exc)
            raise
        if not isinstance(found, list):
            raise JwksUnavailable("the provider's key set has no keys list")
        keys = {k["kid"]: k for k in found if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        if len(keys) > self._options.max_keys:
            log.warning("OIDC key set has %d keys; keeping %d", len(keys), self._options.max_keys)
        return dict(list(keys.items())[: self._options.max_keys])

    def _discovery_url(self) -> str:
        return self._options.issuer.rstrip("/") + "/.well-known/openid-configuration"


def _scheme(url: str) -> str:
    # urllib also opens file:// and ftp://: the key set comes over the issuer's own scheme.
    return url.split("://", 1)[0] + "://"


def _get_json(url: str, timeout_s: float) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            raw = response.read(_MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise JwksUnavailable(f"cannot fetch {url}: {exc}") from None
    if len(raw) > _MAX_DOCUMENT_BYTES:
        raise JwksUnavailable(f"{url} is larger than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError:
        raise JwksUnavailable(f"{url} is not JSON") from None
    if not isinstance(document, dict):
        raise JwksUnavailable(f"{url} is not a JSON object")
    return document
