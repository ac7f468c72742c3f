"""Who may use the embedded nats-server: two logins generated once, kept under the data folder.

- `flightdeck`: the server's own processes; every right.
- `writer`: producers of events. It may publish to `events.>` (not to the
  dead-letter subjects `events.dead.>`, which only the worker writes) and
  receive the acknowledgements JetStream sends to its `_INBOX.>`; nothing else:
  no update log, no JetStream API (it cannot purge or delete a stream).

flightdeck's own connection takes its replies on a private inbox prefix, so a
writer subscribed to `_INBOX.>` sees nothing of flightdeck's traffic.

The passwords live only in `credentials.json` beside the JetStream store,
written with mode 0600; a file that group or others may read is refused, as
is the generated nats-server configuration that repeats them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from flightdeck.base_error import FlightdeckError

__all__ = [
    "CREDENTIALS_FILE",
    "INTERNAL_INBOX",
    "ROLES",
    "NatsAuth",
    "NatsAuthError",
    "NatsLogin",
    "write_private",
]

CREDENTIALS_FILE = "credentials.json"
ROLES = ("writer", "flightdeck")
# Replies to flightdeck's own requests (JetStream API, pull fetches, the hub's
# consumer) arrive here, out of reach of writers, who may read `_INBOX.>`.
INTERNAL_INBOX = "_FLIGHTDECK_INBOX"
_WRITER_PUBLISH = ["events.>"]
_WRITER_DENIED = ["events.dead.>"]
_WRITER_REPLIES = ["_INBOX.>"]


class NatsAuthError(FlightdeckError):
    """The embedded NATS's credentials file is unusable: unsafe mode or unreadable."""


@dataclass(frozen=True)
class NatsLogin:
    user: str
    password: str


@dataclass(frozen=True)
class NatsAuth:
    internal: NatsLogin
    writer: NatsLogin

    @classmethod
    def ensure(cls, nats_dir: Path) -> NatsAuth:
        """The logins kept in `nats_dir`, generated on first use."""
        found = cls.read(nats_dir)
        if found is not None:
            return found
        generated = cls(
            internal=NatsLogin("flightdeck", secrets.token_urlsafe(32)),
            writer=NatsLogin("writer", secrets.token_urlsafe(32)),
        )
        path = Path(nats_dir) / CREDENTIALS_FILE
        with contextlib.suppress(FileExistsError):  # another process was first: use its file
            write_private(path, generated._to_json(), exclusive=True)
        return cls.read(nats_dir) or generated

    @classmethod
    def read(cls, nats_dir: Path) -> NatsAuth | None:
        """The logins kept in `nats_dir`; None when none were generated there yet."""
        path = Path(nats_dir) / CREDENTIALS_FILE
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            return None
        if mode & 0o077:
            raise NatsAuthError(
                f"{path} has mode {mode:04o}: group or others can read the NATS passwords "
                f"in it; run `chmod 600 {path}`"
            )
        try:
            data = json.loads(path.read_text())
            return cls(NatsLogin(**data["flightdeck"]), NatsLogin(**data["writer"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NatsAuthError(
                f"{path} is not a flightdeck NATS credentials file ({exc})"
            ) from None

    def login(self, role: str) -> NatsLogin:
        """ "writer" or "flightdeck" (its own, every right)."""
        if role not in ROLES:
            raise ValueError(f"NATS role must be one of {', '.join(ROLES)}, not {role!r}")
        return self.writer if role == "writer" else self.internal

    def server_config(self) -> str:
        """nats-server configuration: these two users, nobody anonymous."""
        writer_permissions = {
            "publish": {"allow": _WRITER_PUBLISH, "deny": _WRITER_DENIED},
            "subscribe": {"allow": _WRITER_REPLIES},
        }
        users = [
            {"user": self.internal.user, "password": self.internal.password},
            {
                "user": self.writer.user,
                "password": self.writer.password,
                "permissions": writer_permissions,
            },
        ]
        # nats-server reads JSON-style values in its configuration format.
        return "authorization {\n  users = " + json.dumps(users, indent=2) + "\n}\n"

    def _to_json(self) -> str:
        return json.dumps(
            {
                "flightdeck": {"user": self.internal.user, "password": self.internal.password},
                "writer": {"user": self.writer.user, "password": self.writer.password},
            },
            indent=2,
        )


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to `path` readable by its owner only, never visible half-written;
    `exclusive`: FileExistsError if `path` exists (first writer wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
