"""The write path: validate, dedupe, append raw events, keep aggregates exact, publish."""

from . import loads, retention
from .derived_backfill import fill_derived
from .errors import InvalidBatch, RetentionRace
from .events import EVENT_SCHEMA, normalise
from .pipeline import IngestResult, Repair, ingest, reaggregate

__all__ = [
    "EVENT_SCHEMA",
    "IngestResult",
    "InvalidBatch",
    "Repair",
    "RetentionRace",
    "fill_derived",
    "ingest",
    "loads",
    "normalise",
    "reaggregate",
    "retention",
]
