"""Dimensions derived once at ingest from each event's page_url, referrer,
user_agent and properties, and stored beside it (migration 017).

`derive` is pure and column-wise: each distinct URL, referrer and user agent is
worked on once, then spread back over the rows with a `take`. The definitions
are docs/metrics.md's, "Derived dimensions".
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..events import EVENT_SCHEMA
from . import sources, url
from .agents import DEVICES, describe_agents
from .url import KEPT_QUERY_PARAMS

__all__ = [
    "DERIVED_SCHEMA",
    "DEVICES",
    "KEPT_QUERY_PARAMS",
    "STORED_SCHEMA",
    "derive",
    "with_derived",
]

DERIVED_SCHEMA = pa.schema(
    [
        (name, pa.string())
        for name in (
            "path",
            "host",
            "referrer_host",
            "source",
            "medium",
            "campaign",
            "browser",
            "os",
            "device",
        )
    ]
)

# What tb_pageview_event is sent: the event, then what is derived from it.
STORED_SCHEMA = pa.schema(list(EVENT_SCHEMA) + list(DERIVED_SCHEMA))


def derive(
    events: pa.RecordBatch, keep_query: tuple[str, ...] = KEPT_QUERY_PARAMS
) -> pa.RecordBatch:
    """The derived columns (DERIVED_SCHEMA) of `events`, a batch with at least
    page_url, referrer, user_agent and properties as text."""
    page = _distinct(events.column("page_url"))
    parts = url.split(page.dictionary)
    page_host = url.host(parts.field("authority"))
    utm_query = {name: url.query_param(parts.field("query"), name) for name in sources.UTM}
    referrer = _distinct(events.column("referrer"))
    ref_parts = url.split(referrer.dictionary)
    referrer_host = url.host(ref_parts.field("authority"), strip_www=True)
    utm_properties = sources.utm_from_properties(events.column("properties"))
    utm = {
        name: pc.coalesce(utm_query[name].take(page.indices), utm_properties[name])
        for name in sources.UTM
    }
    rows = {
        "path": url.path(parts, keep_query).take(page.indices),
        "host": page_host.take(page.indices),
        "referrer_host": referrer_host.take(referrer.indices),
    }
    rows |= sources.attribute(utm, rows["referrer_host"], rows["host"])
    rows["browser"], rows["os"], rows["device"] = describe_agents(events.column("user_agent"))
    return pa.RecordBatch.from_arrays([rows[f.name] for f in DERIVED_SCHEMA], schema=DERIVED_SCHEMA)


def with_derived(events: pa.RecordBatch) -> pa.RecordBatch:
    """`events` with the derived columns appended."""
    derived = derive(events)
    arrays = events.columns + derived.columns
    schema = pa.schema(list(events.schema) + list(DERIVED_SCHEMA))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _distinct(column: pa.Array) -> pa.DictionaryArray:
    """Each row's index into the column's distinct values (null a value of its own)."""
    return pc.dictionary_encode(column, null_encoding="encode")
