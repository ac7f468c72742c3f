"""The action that says whether a named load was committed (see ingest/loads.py)."""

from __future__ import annotations

__all__ = ["LOAD_STATUS_ACTION"]

LOAD_STATUS_ACTION = (
    "load-status",
    "Whether the load named by the body (the load id a put sent as app_metadata "
    '{"load_id": ...}) was committed: JSON {"load_id", "committed", and when '
    'committed "accepted", "duplicates"}. Answers once no put is committing.',
)
