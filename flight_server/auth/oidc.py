"""Single sign-on: an identity provider's JWT access tokens, verified with PyJWT.

A token is accepted only if it is signed by one of the issuer's published
keys (jwks.py) with an asymmetric algorithm that key's type allows, names
the configured issuer and audience, has not expired, and carries a flightdeck
role in the roles claim. The algorithm is checked against the key before
anything is verified, which is what refuses `alg: none` and the HS256 trick
(an HMAC "signed" with the provider's public key). Refusals say which check
failed, never the token.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

import jwt

from .file import ROLES
from .jwks import JwksUnavailable, KeySet, KeySetOptions

__all__ = ["OidcOptions", "OidcRefused", "OidcUnavailable", "OidcVerifier", "looks_like_jwt"]

# The algorithms each JWK key type may sign with; HMAC and `none` are never accepted.
_ALGORITHMS = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}
_LEEWAY_S = 30  # clock skew allowed between the provider and this server


class OidcRefused(Exception):
    """A token that does not stand; the message says which check failed."""


class OidcUnavailable(Exception):
    """The provider's keys cannot be had just now; the message says why."""


@dataclass(frozen=True)
class OidcOptions:
    issuer: str
    audience: str
    roles_claim: str = "roles"  # a dotted path reaches a nested claim: realm_access.roles
    timeout_s: float = 5.0
    refresh_s: float = 30.0

    def __post_init__(self) -> None:
        url = urllib.parse.urlsplit(self.issuer)
        if url.scheme != "https" and not (url.scheme == "http" and _loopback(url.hostname)):
            raise ValueError(
                f"--oidc-issuer {self.issuer!r}: use https:// (plain http only on loopback)"
            )
        if not self.audience:
            raise ValueError("--oidc-issuer needs --oidc-audience (this server's client id)")


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the header a JSON object (`eyJ` is `{"`)."""
    return token.startswith("eyJ") and token.count(".") == 2


class OidcVerifier:
    def __init__(self, options: OidcOptions) -> None:
        self._options = options
        self._keys = KeySet(
            KeySetOptions(options.issuer, options.timeout_s, refresh_s=options.refresh_s)
        )

    def verify(self, token: str) -> tuple[str, str]:
        """The (subject, highest flightdeck role) of a valid token; else OidcRefused
        or OidcUnavailable."""
        key, algorithm = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._options.audience,
                issuer=self._options.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcRefused("token expired: get a new one from the identity provider") from None
        except jwt.InvalidAudienceError:
            raise OidcRefused(
                f"token is not for this server: audience is not {self._options.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise OidcRefused(f"token was not issued by {self._options.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise OidcRefused("token signature does not verify with the issuer's key") from None
        except jwt.InvalidTokenError as exc:
            raise OidcRefused(f"invalid token: {exc}") from None
        return str(claims["sub"]), self._role(claims)

    def _signing_key(self, token: str) -> tuple[object, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise OidcRefused("malformed token header") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not any(algorithm in allowed for allowed in _ALGORITHMS.values()):
            raise OidcRefused(f"token algorithm {str(algorithm)[:16]!r} is not accepted")
        if not isinstance(kid, str):
            raise OidcRefused("token header names no key id (kid)")
        try:
            jwk = self._keys.key(kid)
        except JwksUnavailable as exc:
            raise OidcUnavailable(str(exc)) from None
        if jwk is None:
            raise OidcRefused(f"unknown key id {kid[:64]!r}: not in the issuer's key set")
        fits = algorithm in _ALGORITHMS.get(jwk.get("kty"), ()) and algorithm == jwk.get(
            "alg", algorithm
        )
        if not fits:
            raise OidcRefused(f"token algorithm {algorithm} does not match key {kid[:64]!r}")
        try:
            return jwt.PyJWK(jwk, algorithm).key, algorithm
        except jwt.PyJWKError as exc:
            raise OidcRefused(f"the issuer's key {kid[:64]!r} is unusable: {exc}") from None

    def _role(self, claims: dict) -> str:
        value: object = claims
        for part in self._options.roles_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        granted = value.split() if isinstance(value, str) else value
        held = [r for r in ROLES if isinstance(granted, list) and r in granted]
        if not held:
            raise OidcRefused(
                f"token grants no flightdeck role: claim {self._options.roles_claim!r} "
                f"must hold one of {', '.join(ROLES)}"
            )
        return held[-1]  # ROLES goes from least to most


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
