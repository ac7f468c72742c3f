"""`browser`, `os` and `device` from a user agent, parsed by ua-parser (uap-core's
rules, with its Rust matcher from `ua-parser[regex]`: ~40 µs a user agent).

Parsing is per distinct user agent, and remembered across puts: a site's traffic
comes from a few hundred agents, so a put of 100 k rows parses a handful.
"""

from __future__ import annotations

import functools
import re

import pyarrow as pa
import pyarrow.compute as pc
import ua_parser

__all__ = ["DEVICES", "describe", "describe_agents"]

DEVICES = ("desktop", "mobile", "tablet", "bot", "unknown")
# Clients uap-core names as browsers but that no person drives.
_BOT = re.compile(r"bot\b|crawl|spider|slurp|curl/|wget/|python-|headless|http-client", re.I)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook", re.I)
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS"}
_CACHED_AGENTS = 8192  # bounded: the distinct agents of any realistic site, many times


def describe_agents(user_agents: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """`browser`, `os` and `device` of each user agent, parsing each distinct one once."""
    encoded = pc.dictionary_encode(user_agents, null_encoding="encode")
    found = [describe(agent) for agent in encoded.dictionary.to_pylist()]
    return tuple(
        pa.array([f[i] for f in found], pa.string()).take(encoded.indices) for i in range(3)
    )


@functools.lru_cache(maxsize=_CACHED_AGENTS)
def describe(user_agent: str | None) -> tuple[str | None, str | None, str]:
    """(browser, os, device) of one user agent; names are uap-core's families, and
    null where it knows none."""
    if user_agent is None or not user_agent.strip():
        return None, None, "unknown"
    parsed = ua_parser.parse(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else None
    os = parsed.os.family if parsed.os else None
    device = parsed.device
    if (device and device.family == "Spider") or _BOT.search(user_agent):
        return browser, os, "bot"
    brand = device.brand if device else None
    android_tablet = os == "Android" and "Mobile" not in user_agent
    if (brand or "").endswith("_Tablet") or _TABLET.search(user_agent) or android_tablet:
        return browser, os, "tablet"
    if os in _MOBILE_OS or "Mobi" in user_agent:
        return browser, os, "mobile"
    return browser, os, "desktop" if browser or os else "unknown"
