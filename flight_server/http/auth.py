"""Who is asking: the `Authorization` header checked by the Flight server's own Authenticator.

`Bearer <token>` as on Flight; `Basic <user:pass>` is accepted and earns a
session token, sent back as `Authorization: Bearer …` in the response headers
(what Flight's handshake answers), so a client logs in once and sends that.
"""

from __future__ import annotations

from starlette.requests import Request

from ..auth import Authenticator, Identity
from ..auth.authenticator import ANONYMOUS

__all__ = ["Caller", "caller"]


class Caller:
    def __init__(self, identity: Identity, issued: str | None) -> None:
        self.identity = identity
        self.issued = issued  # the session token basic auth earned, if it did

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issued}"} if self.issued else {}


def caller(authenticator: Authenticator | None, request: Request) -> Caller:
    """The caller (raises Flight's Unauthenticated/Unavailable errors as Flight does);
    without an auth file every caller is anonymous, as on Flight."""
    if authenticator is None:
        return Caller(ANONYMOUS, None)
    identity, issued = authenticator.authenticate(request.headers.get("authorization"))
    return Caller(identity, issued)
