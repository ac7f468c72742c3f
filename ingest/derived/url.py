"""The parts of a URL that derived dimensions read: host, normalised path, query.

Split with one regular expression (RFC 3986's, appendix B, with the scheme only
where `//` follows it, so that a bare path such as `/a:b` is a path) over each
distinct URL of a column: URLs repeat heavily, and Arrow's RE2 does the work.
"""

from __future__ import annotations

import urllib.parse

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["KEPT_QUERY_PARAMS", "host", "path", "query_param", "split"]

# Query parameters a `path` keeps (in the order sent), e.g. ("page", "q"). None by
# default: `/docs?ref=x` and `/docs` are one page, as Plausible counts them.
KEPT_QUERY_PARAMS: tuple[str, ...] = ()

_PARTS = (
    r"(?s)^(?:(?:[A-Za-z][A-Za-z0-9+.-]*:)?//(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?"
)


def split(urls: pa.Array) -> pa.StructArray:
    """Each URL's `authority`, `path` and `query` (null where it has none)."""
    parts = pc.extract_regex(urls, _PARTS)  # a null URL: a null struct, of empty fields
    has_authority = pc.match_substring_regex(urls, r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")
    has_query = pc.match_substring_regex(urls, r"^[^#]*\?")
    null = pa.scalar(None, pa.string())
    return pa.StructArray.from_arrays(
        [
            pc.if_else(has_authority, pc.struct_field(parts, "authority"), null),
            pc.struct_field(parts, "path"),
            pc.if_else(has_query, pc.struct_field(parts, "query"), null),
        ],
        names=["authority", "path", "query"],
    )


def host(authority: pa.Array, *, strip_www: bool = False) -> pa.Array:
    """The authority's host: lowercase, without user info, port or trailing dot; null
    when empty."""
    text = pc.replace_substring_regex(authority, r"^.*@", "")
    text = pc.replace_substring_regex(text, r":[0-9]*$", "")
    text = pc.utf8_lower(pc.replace_substring_regex(text, r"\.$", ""))
    if strip_www:
        text = pc.replace_substring_regex(text, r"^www\.", "")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def path(parts: pa.StructArray, keep: tuple[str, ...] = KEPT_QUERY_PARAMS) -> pa.Array:
    """The normalised path: case and percent-encoding as sent, a leading `/`, no
    trailing `/` (but `/` itself), and of the query only the `keep` parameters."""
    text = pc.replace_substring_regex(parts.field("path"), r"^/*", "/")
    text = pc.replace_substring_regex(text, r"(.)/+$", r"\1")
    if keep:
        kept = _kept_query(parts.field("query"), keep)
        text = pc.binary_join_element_wise(text, pc.fill_null(kept, ""), "")
    return text


def _kept_query(query: pa.Array, keep: tuple[str, ...]) -> pa.Array:
    """`?a=1&b=2` of the kept parameters in the order sent, or null when none is."""
    values = []
    for sent in query.to_pylist():  # called on distinct values only
        pairs = [p for p in (sent or "").split("&") if p.split("=", 1)[0] in keep]
        values.append("?" + "&".join(pairs) if pairs else None)
    return pa.array(values, pa.string())


def query_param(query: pa.Array, name: str) -> pa.Array:
    """The first value of parameter `name`, decoded (`%20` and `+` as spaces); null
    when absent or empty."""
    raw = pc.extract_regex(query, rf"(?:^|&){name}=(?P<v>[^&]*)").field("v")
    raw = pc.if_else(pc.equal(raw, ""), pa.scalar(None, pa.string()), raw)
    encoded = pc.match_substring_regex(raw, r"[%+]")
    if not pc.any(encoded).as_py():
        return raw
    decoded = [
        urllib.parse.unquote_plus(v) if e else v
        for v, e in zip(raw.to_pylist(), encoded.to_pylist(), strict=True)
    ]
    return pa.array(decoded, pa.string())
