"""The write path: validate, dedupe, append raw events, keep aggregates exact, publish."""

from .errors import InvalidBatch
from .events import EVENT_SCHEMA, normalise
from .pipeline import IngestResult, ingest

__all__ = ["EVENT_SCHEMA", "IngestResult", "InvalidBatch", "ingest", "normalise"]
