"""The auth file: users (hashed passwords) and bearer tokens (hashed), with their roles.

A TOML file so operators can read and version it; secrets are never stored,
only their hashes: scrypt for passwords (slow on purpose: they may be weak),
SHA-256 for tokens (256 random bits each, so a fast hash is enough). The file
also holds the key that signs session tokens, so every server given the same
file accepts the tokens any of them issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
from flightdeck.views import FlightdeckError

__all__ = [
    "ROLES",
    "AuthFile",
    "AuthFileError",
    "add_token",
    "add_user",
    "load_auth_file",
    "remove",
]

ROLES = ("reader", "writer", "admin")  # each includes what the one before may do
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN_PREFIX = "fdt_"


class AuthFileError(FlightdeckError):
    """The auth file is missing, unreadable or holds something it should not."""


@dataclass(frozen=True)
class AuthFile:
    signing_key: bytes
    users: dict[str, dict] = field(default_factory=dict)  # name -> {role, password}
    tokens: dict[str, dict] = field(default_factory=dict)  # sha256 hex -> {name, role}


def load_auth_file(path: Path) -> AuthFile:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AuthFileError(
            f"auth file {path} does not exist; create it with "
            f"`flightdeck auth add-user NAME --role admin --password-stdin --auth-file {path}`"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AuthFileError(f"cannot read auth file {path}: {exc}") from None
    users = data.get("users", {})
    tokens = {t["sha256"]: {"name": t["name"], "role": t["role"]} for t in data.get("tokens", [])}
    for name, entry in [*users.items(), *((t["name"], t) for t in tokens.values())]:
        if entry.get("role") not in ROLES:
            raise AuthFileError(f"{path}: {name!r} has role {entry.get('role')!r}; use {ROLES}")
    return AuthFile(base64.b64decode(data["signing_key"]), users, tokens)


def add_user(path: Path, name: str, role: str, password: str) -> None:
    """Add or replace user `name`; their password is stored as a scrypt hash."""
    if not password:
        raise AuthFileError("the password is empty")
    data = _read_or_new(path)
    data.setdefault("users", {})[name] = {"role": _role(role), "password": hash_password(password)}
    _write(path, data)


def add_token(path: Path, name: str, role: str) -> str:
    """A new bearer token for `name`: returned once, stored only as its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    data = _read_or_new(path)
    data.setdefault("tokens", []).append(
        {"name": name, "role": _role(role), "sha256": token_hash(token)}
    )
    _write(path, data)
    return token


def remove(path: Path, name: str) -> int:
    """Remove user `name` and every token issued to that name; how many entries went."""
    data = _read_or_new(path)
    before = len(data.get("users", {})) + len(data.get("tokens", []))
    data.get("users", {}).pop(name, None)
    data["tokens"] = [t for t in data.get("tokens", []) if t["name"] != name]
    _write(path, data)
    return before - len(data.get("users", {})) - len(data["tokens"])


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + "$".join(base64.b64encode(x).decode() for x in (salt, digest))


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(role: str) -> str:
    if role not in ROLES:
        raise AuthFileError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def _read_or_new(path: Path) -> dict:
    if path.exists():
        return tomllib.loads(path.read_text())
    return {"signing_key": base64.b64encode(secrets.token_bytes(32)).decode()}


def _write(path: Path, data: dict) -> None:
    # Written whole to a private temporary file, then renamed: a reader never
    # sees half a file, and the secrets' hashes are not world-readable.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        tomli_w.dump(data, out)
    os.replace(tmp, path)
