"""Event types: which names are types, and the properties a declared type requires.

A type name is lowercase letters, digits, dots, underscores and dashes, starting
with a letter (`user.login`, `api.request`). A file (--event-types, TOML) may
declare types and their required properties:

    [types."api.request"]
    required = {duration_ms = "float", service = "string", endpoint = "string"}

Events of a declared type are refused unless each row's `properties` holds every
required key with a value of its kind; undeclared types are accepted unless the
server is strict (--strict-event-types). `pageview` is always known.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from flightdeck.base_error import FlightdeckError

from .errors import InvalidBatch

__all__ = [
    "KINDS",
    "MAX_TYPE_LENGTH",
    "PAGEVIEW",
    "EventTypes",
    "EventTypesFileError",
    "check_type_name",
    "type_name_problem",
]

PAGEVIEW = "pageview"
MAX_TYPE_LENGTH = 64  # it is part of a NATS subject and of every content-built event_id
_NAME = re.compile(r"[a-z][a-z0-9._-]*")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What each declared kind accepts of a JSON value ("float" takes integers too: JSON
# does not tell 3 from 3.0).
KINDS = {
    "string": lambda v: isinstance(v, str),
    "float": _is_number,
    "int": _is_int,
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


class EventTypesFileError(FlightdeckError):
    """The --event-types file cannot be read as declarations."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"event types file {str(path)!r}: {detail}", rule="event-types-file")


def type_name_problem(name: str) -> str | None:
    """Why `name` is no event type name, or None if it is one."""
    if len(name) > MAX_TYPE_LENGTH:
        return f"{name[:40]!r}… is longer than {MAX_TYPE_LENGTH} characters"
    if not _NAME.fullmatch(name):
        return (
            f"{name!r} is no event type: use lowercase letters, digits, dots, underscores "
            "and dashes, starting with a letter (e.g. 'user.login')"
        )
    return None


def check_type_name(name: str) -> str:
    problem = type_name_problem(name)
    if problem is not None:
        raise InvalidBatch("event_type", None, "event-type", problem)
    return name


@dataclass(frozen=True)
class EventTypes:
    """Declared types (type -> property -> kind), and whether undeclared ones are refused."""

    declared: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    strict: bool = False

    @classmethod
    def load(cls, path: Path | None, strict: bool = False) -> EventTypes:
        if path is None:
            return cls({}, strict)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise EventTypesFileError(path, str(exc)) from None
        return cls(_declarations(path, raw), strict)

    def check_known(self, event_type: str) -> None:
        if self.strict and event_type != PAGEVIEW and event_type not in self.declared:
            raise InvalidBatch(
                "event_type",
                None,
                "undeclared-type",
                f"{event_type!r} is not declared in the event types file and the server "
                "refuses undeclared types (--strict-event-types)",
            )

    def check(self, event_type: str, properties: pa.Array, first_row: int) -> None:
        """InvalidBatch naming the property and row of the first event of a declared
        type without a required property of its kind."""
        required = self.declared.get(event_type)
        if not required:
            return
        for row, text in enumerate(properties.to_pylist()):
            values = json.loads(text) if text is not None else {}
            if not isinstance(values, dict):
                values = {}
            for key, kind in required.items():
                _check_property(values, key, kind, first_row + row)


def _check_property(values: dict, key: str, kind: str, row: int) -> None:
    if key not in values or values[key] is None:
        raise InvalidBatch(f"properties.{key}", row, "declared-type", f"required ({kind})")
    if not KINDS[kind](values[key]):
        raise InvalidBatch(
            f"properties.{key}",
            row,
            "declared-type",
            f"must be {kind}, got {type(values[key]).__name__} {str(values[key])[:40]!r}",
        )


def _declarations(path: Path, raw: dict) -> dict[str, dict[str, str]]:
    types = raw.get("types", {})
    if not isinstance(types, dict):
        raise EventTypesFileError(path, "[types] must be a table of types")
    out: dict[str, dict[str, str]] = {}
    for name, body in types.items():
        problem = type_name_problem(name)
        if problem is not None:
            raise EventTypesFileError(path, problem)
        required = body.get("required", {}) if isinstance(body, dict) else None
        if not isinstance(required, dict):
            raise EventTypesFileError(path, f"types.{name}.required must be a table")
        for key, kind in required.items():
            if kind not in KINDS:
                raise EventTypesFileError(
                    path, f"types.{name}.required.{key}: {kind!r} is not one of {sorted(KINDS)}"
                )
        out[name] = dict(required)
    return out
