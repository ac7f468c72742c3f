"""Rollups declared in TOML files: what a file may say, and its errors in the user's words.

One file per rollup (docs/rollups.md has the format). Built-ins ship in
`views/rollups/`; users add theirs in a folder (`--rollups-dir`). A file is
read once at start and turned into a `Rollup`: its view `va_<name>`, the state
table `tb_rollup_<name>` it is kept in, its time grain, dimensions and
measures. Anything the format does not know is refused naming the file and
the key, so a typo cannot silently drop a measure.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flightdeck.base_error import FlightdeckError

__all__ = [
    "BUILTIN_DIR",
    "DERIVED",
    "GRAINS",
    "SESSION_DIMENSIONS",
    "Dimension",
    "Measure",
    "Rollup",
    "RollupError",
    "load_rollups",
    "parse_rollup",
    "stored_rollup",
]

BUILTIN_DIR = Path(__file__).parent / "rollups"
GRAINS = {"hour": "hour", "day": "date", "week": "week", "month": "month"}  # grain -> column
CORE = ("event_type", "session_id", "user_id", "page_url", "referrer", "user_agent")
# Computed once at ingest from page_url, referrer and user_agent (docs/metrics.md).
DERIVED = ("path", "host", "referrer_host", "browser", "os", "device")
# A visit's, not an event's: from its first event in the bucket (its last, for
# exit_page), so that the pages after the landing one count for where it came from.
SESSION_DIMENSIONS = ("entry_page", "exit_page", "source", "medium", "campaign")
# Measures over the bucket's sessions (a visit: a session's events in the bucket).
SESSION_MEASURES = ("bounce_rate", "avg_visit_duration", "views_per_visit", "time_on_page")
PLAIN_MEASURES = ("events", "views", "visits", "visitors", *SESSION_MEASURES)
ACTIVE_USERS = ("dau", "wau", "mau")
PROPERTY_MEASURES = ("sum", "avg", "min", "max", "p50", "p95", "p99")
RECOUNTED = ("min", "max", "p50", "p95", "p99")  # not sums: recounted from raw events

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_TYPE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PROPERTY = re.compile(r"^properties\.([A-Za-z_][A-Za-z0-9_]{0,63})$")
_CALL = re.compile(r"^([a-z0-9]+)\(\s*properties\.([A-Za-z_][A-Za-z0-9_]{0,63})\s*\)$")
_AS = re.compile(r"^(.*?)\s+as\s+([a-z][a-z0-9_]{0,49})$", re.IGNORECASE)
_KEYS = {"name", "description", "events", "grain", "dimensions", "measures"}
_RESERVED = {"version", "computed_at", *GRAINS.values()}


class RollupError(FlightdeckError, ValueError):
    """A rollup file that cannot be used, naming the file, the key and what was wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"rollup {source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@dataclass(frozen=True)
class Dimension:
    column: str  # the view's column
    kind: str  # "core" | "property" | "derived" | "session"
    field: str  # the core/derived column, the property key, or entry_page/exit_page


@dataclass(frozen=True)
class Measure:
    column: str
    kind: str  # one of PLAIN_MEASURES, ACTIVE_USERS or PROPERTY_MEASURES
    key: str | None = None  # the property a PROPERTY_MEASURES kind reads


@dataclass(frozen=True)
class Rollup:
    name: str
    events: tuple[str, ...] | None  # event types it reads; None: every type
    grain: str
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    source: str  # the file it came from, for errors
    description: str = ""
    text: str = ""  # the declaration as written: what the store records it by

    @property
    def view(self) -> str:
        return f"va_{self.name}"

    @property
    def table(self) -> str:
        return f"tb_rollup_{self.name}"

    @property
    def bucket(self) -> str:
        """The view's time column: hour, date, week or month."""
        return GRAINS[self.grain]

    @property
    def key(self) -> tuple[str, ...]:
        """The columns that identify a row (the live path's key)."""
        return (self.bucket, *(d.column for d in self.dimensions))

    @property
    def per_session(self) -> bool:
        """Whether a new event can change rows of its session's other events."""
        return any(m.kind in SESSION_MEASURES for m in self.measures) or any(
            d.kind == "session" for d in self.dimensions
        )

    def reads(self, event_type: str) -> bool:
        """Whether events of `event_type` count in this rollup."""
        return self.events is None or event_type in self.events

    @property
    def active_users(self) -> bool:
        return any(m.kind in ACTIVE_USERS for m in self.measures)


@functools.lru_cache(maxsize=256)
def stored_rollup(name: str, spec: str) -> Rollup:
    """A declaration as the store recorded it (`tb_rollup`): parsed once per text, since
    every commit and every published version reads the store's list."""
    return parse_rollup(spec, f"tb_rollup:{name}")


def load_rollups(folders: Iterable[Path]) -> list[Rollup]:
    """Every `*.toml` of `folders`, in order; a name declared twice is refused."""
    rollups: dict[str, Rollup] = {}
    for folder in folders:
        if not folder.is_dir():
            raise RollupError(str(folder), "folder", "not a folder")
        for path in sorted(folder.glob("*.toml")):
            rollup = parse_rollup(path.read_text(encoding="utf-8"), str(path))
            if rollup.name in rollups:
                first = rollups[rollup.name].source
                raise RollupError(str(path), "name", f"{rollup.name!r} is declared by {first} too")
            rollups[rollup.name] = rollup
    return list(rollups.values())


def parse_rollup(text: str, source: str) -> Rollup:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RollupError(source, "toml", str(exc)) from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise RollupError(source, unknown[0], f"unknown key; the keys are {sorted(_KEYS)}")
    name = _name(raw, source)
    grain = raw.get("grain", "day")
    if grain not in GRAINS:
        raise RollupError(source, "grain", f"{grain!r} is not one of {list(GRAINS)}")
    rollup = Rollup(
        name=name,
        events=_events(raw.get("events"), source),
        grain=grain,
        dimensions=tuple(_dimension(d, source) for d in _strings(raw, "dimensions", source)),
        measures=tuple(_measure(m, source) for m in _strings(raw, "measures", source)),
        source=source,
        description=str(raw.get("description", "")),
        text=text,
    )
    _check_whole(rollup)
    return rollup


def _name(raw: dict, source: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RollupError(
            source, "name", f"{name!r}: lowercase letters, digits and _, starting with a letter"
        )
    return name


def _strings(raw: dict, key: str, source: str) -> list[str]:
    values = raw.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RollupError(source, key, "must be a list of strings")
    return values


def _events(value: object, source: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RollupError(source, "events", "must be a non-empty list of event types")
    for event_type in value:
        if not _TYPE.match(event_type):
            raise RollupError(source, "events", f"{event_type!r} is not an event type name")
    return tuple(sorted(set(value)))


def _split_as(text: str) -> tuple[str, str | None]:
    match = _AS.match(text.strip())
    return (match.group(1).strip(), match.group(2)) if match else (text.strip(), None)


def _dimension(text: str, source: str) -> Dimension:
    field, alias = _split_as(text)
    prop = _PROPERTY.match(field)
    if prop:
        return Dimension(alias or prop.group(1), "property", prop.group(1))
    for kind, names in (("core", CORE), ("derived", DERIVED), ("session", SESSION_DIMENSIONS)):
        if field in names:
            return Dimension(alias or field, kind, field)
    known = [*CORE, *DERIVED, *SESSION_DIMENSIONS, "properties.KEY"]
    raise RollupError(source, "dimensions", f"{field!r} is not a dimension; use one of {known}")


def _measure(text: str, source: str) -> Measure:
    field, alias = _split_as(text)
    if field in PLAIN_MEASURES or field in ACTIVE_USERS:
        return Measure(alias or field, field)
    call = _CALL.match(field)
    if call and call.group(1) in PROPERTY_MEASURES:
        kind, key = call.groups()
        return Measure(alias or f"{kind}_{key}".lower(), kind, key)
    known = [*PLAIN_MEASURES, *ACTIVE_USERS, *(f"{k}(properties.KEY)" for k in PROPERTY_MEASURES)]
    raise RollupError(source, "measures", f"{field!r} is not a measure; use one of {known}")


def _check_whole(rollup: Rollup) -> None:
    source = rollup.source
    if not rollup.measures:
        raise RollupError(source, "measures", "a rollup needs at least one measure")
    columns = [*rollup.key, *(m.column for m in rollup.measures)]
    for column in columns:
        if not _KEY.match(column) or column != column.lower():
            raise RollupError(source, "columns", f"{column!r} is not a usable column name")
    clash = [c for c in columns if columns.count(c) > 1 or c in _RESERVED - {rollup.bucket}]
    if clash or rollup.bucket in columns[1:]:
        raise RollupError(source, "columns", f"column {(clash or [rollup.bucket])[0]!r} twice")
    if rollup.active_users:
        if rollup.grain != "day" or rollup.dimensions:
            raise RollupError(source, "measures", "dau, wau and mau need grain day, no dimensions")
        if any(m.kind not in ACTIVE_USERS for m in rollup.measures):
            raise RollupError(source, "measures", "dau, wau and mau go in a rollup of their own")
    recounted = [m for m in rollup.measures if m.kind in RECOUNTED]
    if recounted and any(d.kind == "session" for d in rollup.dimensions):
        raise RollupError(
            source, "measures", f"{recounted[0].column} cannot go with a visit's dimensions"
        )
    if rollup.active_users and rollup.events is not None:
        raise RollupError(source, "events", "dau, wau and mau count users of every event type")
    views_only = {"views", "time_on_page", "views_per_visit"} & {m.kind for m in rollup.measures}
    if views_only and rollup.events != ("pageview",):
        raise RollupError(
            source, "measures", f'{sorted(views_only)[0]} needs events = ["pageview"]'
        )
