"""Where producers find the embedded nats-server: DATA_DIR/nats/url.

serve writes the address there each time it starts the embedded NATS, and the
next start asks for the same port, so a producer configured once keeps
working across restarts. The file holds no secret (the logins are in
credentials.json, mode 0600), so anyone who may read the data dir may read it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["URL_FILE", "read_url", "saved_port", "write_url"]

URL_FILE = "url"
_PORT = re.compile(r"^nats://127\.0\.0\.1:(\d+)$")


def read_url(nats_dir: Path) -> str | None:
    """The address last written in `nats_dir`; None if none was."""
    try:
        return (Path(nats_dir) / URL_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def saved_port(nats_dir: Path) -> int | None:
    """The port of the last address, if the file holds one we wrote."""
    match = _PORT.match(read_url(nats_dir) or "")
    port = int(match.group(1)) if match else 0
    return port if 0 < port < 65536 else None


def write_url(nats_dir: Path, url: str) -> None:
    """Replace the file whole, so a producer never reads half an address."""
    path = Path(nats_dir) / URL_FILE
    partial = path.with_name(f".{URL_FILE}.{os.getpid()}")
    partial.write_text(url + "\n")
    partial.chmod(0o644)
    os.replace(partial, path)
