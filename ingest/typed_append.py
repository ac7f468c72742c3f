"""Append a staged put of one event type other than `pageview` to tb_event; what was
appended lands in `flightdeck_new_event` (every column of tb_event but ingested_at,
properties as JSON text; the derived dimensions come with the stage, see
pipeline._Validated), for whatever a commit folds its new events into.

New means, as for page views (append.py): the first sent of each event_id in the
put (`flightdeck_seq` is the arrival order), unless the store holds that id
already, in tb_event or as a page view. Runs in the writer's turn, so no other
append runs beside it and the probe sees everything committed; no page-view
aggregate reads these rows, so one plain statement each does; the rollups that
read the type fold them (pipeline._fold_new_events).
"""

from __future__ import annotations

from .derived import DERIVED_SCHEMA
from .event_types import check_type_name
from .events import TYPED_SCHEMA
from .scalar import scalar

__all__ = ["NEW_EVENT", "append_typed"]

NEW_EVENT = "flightdeck_new_event"
_STAGE = "flightdeck_stage"
_CORE = [name for name in TYPED_SCHEMA.names if name != "event_id"] + DERIVED_SCHEMA.names
_COLUMNS = ", ".join(["event_id", "event_type", *_CORE])
_VALUES = _COLUMNS.replace("properties", "CAST(properties AS JSON)")


def append_typed(cursor, event_type: str) -> int:
    """Append the stage's new events of `event_type`; how many, each in NEW_EVENT."""
    check_type_name(event_type)  # it is written into the SQL below
    cursor.execute(
        f"CREATE TEMP TABLE {NEW_EVENT} AS "
        f"SELECT s.event_id, '{event_type}' AS event_type, "
        + ", ".join(f"s.{c}" for c in _CORE)
        + f" FROM {_STAGE} s WHERE s.flightdeck_seq IN "
        f"(SELECT min(flightdeck_seq) FROM {_STAGE} GROUP BY event_id) "
        "AND NOT EXISTS (SELECT 1 FROM tb_event e WHERE e.event_id = s.event_id) "
        "AND NOT EXISTS (SELECT 1 FROM tb_pageview_event p WHERE p.event_id = s.event_id)"
    )
    cursor.execute(f"INSERT INTO tb_event ({_COLUMNS}) SELECT {_VALUES} FROM {NEW_EVENT}")
    return scalar(cursor, f"SELECT count(*) FROM {NEW_EVENT}")
