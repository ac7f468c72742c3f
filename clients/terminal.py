"""How every `flightdeck` command reports a failure: one line on stderr, no traceback."""

from __future__ import annotations

import sys

__all__ = ["say_failed"]


def say_failed(exc: BaseException) -> None:
    """Print `exc` as `flightdeck: <what was wrong>` on one line.

    Some messages span lines (a backend's hint, the log a failed nats-server left):
    the first line says what failed, the last one why, so those two are kept.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[:1] + lines[1:][-1:]) or type(exc).__name__
    print(f"flightdeck: {text}", file=sys.stderr)
