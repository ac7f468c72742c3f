"""An OpenID Connect identity provider on loopback, for the single sign-on tests.

It publishes a discovery document and a key set, signs JWT access tokens with
keys made here, and runs the authorization code flow with PKCE as a browser
meets it: `/authorize` signs the user in at once (no login page) and sends the
browser back with a code; `/token` exchanges the code for an access token only
with the verifier whose S256 challenge came with it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "flightdeck"
DASHBOARD_CLIENT = "flightdeck-dashboard"


@dataclass
class Provider:
    """What the provider holds: signing keys, the key set it publishes, pending codes."""

    url: str = ""
    private: dict = field(default_factory=dict)  # kid -> private key
    published: list = field(default_factory=list)  # the JWKS keys
    fetches: int = 0  # requests for the key set
    codes: dict = field(default_factory=dict)  # code -> the authorization request
    token_requests: list = field(default_factory=list)  # each /token form, as sent
    refresh_tokens: set = field(default_factory=set)  # those not yet used

    def add_key(self, kid: str, key, algorithm: str) -> None:
        self.private[kid] = key
        codec = (
            jwt.algorithms.RSAAlgorithm
            if algorithm.startswith("RS")
            else jwt.algorithms.ECAlgorithm
        )
        jwk = codec.to_jwk(key.public_key(), as_dict=True)
        self.published.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})

    def token(self, kid: str = "rsa", algorithm: str = "RS256", key=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "sso-user", "exp": now + 600}
        body.update({"roles": ["reader"], **claims})
        signer = key if key is not None else self.private[kid]
        return jwt.encode(body, signer, algorithm=algorithm, headers={"kid": kid})

    def discovery(self) -> dict:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + "/jwks",
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Where the browser goes next: back to the client with a code, or an error."""
        back = query.get("redirect_uri", "")
        if query.get("client_id") != DASHBOARD_CLIENT or query.get("response_type") != "code":
            answer = {"error": "unauthorized_client"}
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            answer = {"error": "invalid_request", "error_description": "PKCE S256 required"}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = query
            answer = {"code": code}
        answer["state"] = query.get("state", "")
        return back + "?" + urllib.parse.urlencode(answer)

    def exchange(self, form: dict[str, str]) -> tuple[int, dict]:
        """The /token answer: (status, body)."""
        self.token_requests.append(form)
        if form.get("client_id") != DASHBOARD_CLIENT:
            return 400, {"error": "invalid_client"}
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant", "error_description": "refresh token"}
            self.refresh_tokens.discard(form["refresh_token"])
            return 200, self._tokens()
        asked = self.codes.pop(form.get("code", ""), None)
        if asked is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if challenge != asked["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        return 200, self._tokens()

    def _tokens(self) -> dict:
        refresh = secrets.token_urlsafe(16)
        self.refresh_tokens.add(refresh)
        return {
            "access_token": self.token(),
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": refresh,
        }


def new_provider() -> Provider:
    provider = Provider()
    provider.add_key("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    provider.add_key("ec", ec.generate_private_key(ec.SECP256R1()), "ES256")
    return provider


@contextlib.contextmanager
def serving(provider: Provider) -> Iterator[Provider]:
    """`provider` answering on a free loopback port (its `url` set) for the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif path == "/jwks":
                provider.fetches += 1
                self._json(200, {"keys": list(provider.published)})
            elif path == "/authorize":
                self.send_response(302)
                asked = dict(urllib.parse.parse_qsl(query))
                self.send_header("Location", provider.authorize(asked))
                self.end_headers()
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            if self.path != "/token":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            self._json(*provider.exchange(form))

        def _json(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            # A browser page of another origin (the dashboard) reads these answers.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
