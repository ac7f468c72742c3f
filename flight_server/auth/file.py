"""The auth file: users, bearer tokens and the session signing key, in one private file.

A TOML file so operators can read and version it. Passwords and tokens are
never stored, only their hashes: scrypt for passwords (slow on purpose: they
may be weak), SHA-256 for tokens (256 random bits each, so a fast hash is
enough). The session signing key is kept as is: every server given the same
file must sign and check the same session tokens. Whoever reads the file can
mint sessions, so a file that group or others may read or write is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
from flightdeck.base_error import FlightdeckError

from .passwords import hash_password, is_password_hash

__all__ = [
    "ROLES",
    "AuthFile",
    "AuthFileError",
    "add_token",
    "add_user",
    "load_auth_file",
    "remove",
    "token_hash",
]

ROLES = ("reader", "writer", "admin")  # each includes what the one before may do
TOKEN_PREFIX = "fdt_"
_MIN_KEY_BYTES = 16
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class AuthFileError(FlightdeckError):
    """The auth file is missing, unreadable, too open, or holds something it should not."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"auth file {path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class AuthFile:
    signing_key: bytes
    users: dict[str, dict] = field(default_factory=dict)  # name -> {role, password}
    tokens: dict[str, dict] = field(default_factory=dict)  # sha256 hex -> {name, role}


def load_auth_file(path: Path) -> AuthFile:
    """The file's users, tokens and key; AuthFileError says in one line what is wrong."""
    _check_private(path)
    data = _parse(path)
    return AuthFile(_signing_key(path, data), _users(path, data), _tokens(path, data))


def add_user(path: Path, name: str, role: str, password: str) -> None:
    """Add or replace user `name`; their password is stored as a scrypt hash."""
    if not password:
        raise AuthFileError(path, "the password is empty")
    data = _read_or_new(path)
    data.setdefault("users", {})[name] = {
        "role": _role(path, role),
        "password": hash_password(password),
    }
    _write(path, data)


def add_token(path: Path, name: str, role: str) -> str:
    """A new bearer token for `name`: returned once, stored only as its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    data = _read_or_new(path)
    data.setdefault("tokens", []).append(
        {"name": name, "role": _role(path, role), "sha256": token_hash(token)}
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


def read_entries(path: Path) -> dict:
    """The file's contents as stored (for `flightdeck auth list`), checked but not private."""
    data = _parse(path)
    _users(path, data)
    _tokens(path, data)
    return data


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_private(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as exc:
        raise AuthFileError(path, f"cannot read it: {exc.strerror}") from None
    if mode & 0o077:
        who = "read" if mode & 0o044 else "change"
        raise AuthFileError(
            path,
            f"mode {mode:04o} lets other users {who} it (it holds the session signing key); "
            f"run `chmod 600 {path}`",
        )


def _missing(path: Path) -> AuthFileError:
    return AuthFileError(
        path,
        "does not exist; create it with "
        f"`flightdeck auth add-user NAME --role admin --password-stdin --auth-file {path}`",
    )


def _parse(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as exc:
        raise AuthFileError(path, f"cannot read it: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuthFileError(path, f"not valid TOML: {exc}") from None


def _signing_key(path: Path, data: dict) -> bytes:
    raw = data.get("signing_key")
    if not isinstance(raw, str):
        raise AuthFileError(path, "no `signing_key` string (base64 of at least 16 random bytes)")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise AuthFileError(path, "`signing_key` is not base64") from None
    if len(key) < _MIN_KEY_BYTES:
        raise AuthFileError(path, f"`signing_key` holds {len(key)} bytes; it needs at least 16")
    return key


def _users(path: Path, data: dict) -> dict[str, dict]:
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise AuthFileError(path, "`users` is not a table of [users.NAME] entries")
    for name, entry in users.items():
        where = f"user {name!r}"
        if not isinstance(entry, dict):
            raise AuthFileError(path, f"{where} is not a table")
        _check_role(path, where, entry.get("role"))
        if not is_password_hash(entry.get("password")):
            raise AuthFileError(path, f"{where} has no scrypt `password` hash; add it again")
    return users


def _tokens(path: Path, data: dict) -> dict[str, dict]:
    tokens = data.get("tokens", [])
    if not isinstance(tokens, list):
        raise AuthFileError(path, "`tokens` is not an array of [[tokens]] entries")
    found = {}
    for number, entry in enumerate(tokens, start=1):
        where = f"token {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise AuthFileError(path, f"{where} has no `name`")
        _check_role(path, f"{where} ({entry['name']!r})", entry.get("role"))
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise AuthFileError(path, f"{where} ({entry['name']!r}) has no `sha256` hash")
        found[digest] = {"name": entry["name"], "role": entry["role"]}
    return found


def _check_role(path: Path, where: str, role: object) -> None:
    if role not in ROLES:
        raise AuthFileError(path, f"{where} has role {role!r}; use one of {', '.join(ROLES)}")


def _role(path: Path, role: str) -> str:
    _check_role(path, "the new entry", role)
    return role


def _read_or_new(path: Path) -> dict:
    if path.exists():
        data = read_entries(path)
        _signing_key(path, data)
        return data
    return {"signing_key": base64.b64encode(secrets.token_bytes(32)).decode()}


def _write(path: Path, data: dict) -> None:
    # Written whole to a fresh private temporary file beside it, then renamed
    # over it: a reader never sees half a file, and the new file is never
    # readable by others, whatever the umask or a stale temporary's mode.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            tomli_w.dump(data, out)
            out.flush()
            os.fchmod(out.fileno(), 0o600)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
