"""Where an event says its visit came from: `source`, `medium`, `campaign`.

Each describes the event alone; the rollups take a visit's from its first event
(docs/rollups.md, "Visits"). The rules are docs/metrics.md's ("Derived dimensions").
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["UTM", "attribute", "utm_from_properties"]

UTM = ("utm_source", "utm_medium", "utm_campaign")
_NULL = pa.scalar(None, pa.string())


def utm_from_properties(properties: pa.Array) -> dict[str, pa.Array]:
    """Each UTM key's top-level text value in the properties JSON (null when absent,
    empty or not text). Only rows that mention `utm_` are parsed, once per distinct
    value: campaign-tagged views are few, and their JSON was checked at ingest."""
    mentions = pc.fill_null(pc.match_substring(properties, "utm_"), False)
    if not pc.any(mentions).as_py():
        return {name: pa.nulls(len(properties), pa.string()) for name in UTM}
    tagged = pc.if_else(mentions, properties, _NULL)
    encoded = pc.dictionary_encode(tagged)
    parsed = [_utm_values(text) for text in encoded.dictionary.to_pylist()]
    return {
        name: pa.array([p[i] for p in parsed], pa.string()).take(encoded.indices)
        for i, name in enumerate(UTM)
    }


def _utm_values(text: str) -> tuple[str | None, ...]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # what only json.loads reads (huge numbers): no UTM
        return (None,) * len(UTM)
    if not isinstance(value, dict):
        return (None,) * len(UTM)
    return tuple(_text(value.get(name)) for name in UTM)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def attribute(
    utm: dict[str, pa.Array], referrer_host: pa.Array, page_host: pa.Array
) -> dict[str, pa.Array]:
    """`source`, `medium` and `campaign` of each event, from its UTM values, its
    referrer's host (`www.` stripped) and its page's host."""
    site = pc.replace_substring_regex(page_host, r"^www\.", "")
    internal = pc.fill_null(pc.equal(referrer_host, site), False)
    external = pc.and_(pc.is_valid(referrer_host), pc.invert(internal))
    tagged = pc.is_valid(utm["utm_source"])
    by_referrer = pc.if_else(external, referrer_host, pc.if_else(internal, _NULL, "direct"))
    by_kind = pc.if_else(external, "referral", pc.if_else(internal, _NULL, "none"))
    return {
        "source": pc.if_else(tagged, utm["utm_source"], by_referrer),
        "medium": pc.coalesce(utm["utm_medium"], pc.if_else(tagged, _NULL, by_kind)),
        "campaign": utm["utm_campaign"],
    }
