"""Values every client can read back: the bounds ingest holds each event to (issue 14).

A value the store takes can still poison its readers: a year past 9999 crashed
`flightdeck query` (Python's datetime ends there) and pandas; NUL in text is
refused by PostgreSQL mid-commit (and the NATS batch holding it was redelivered
forever), while DuckDB stores it; invalid UTF-8 fails both stores and every
client; text past PostgreSQL's index row limit fails only there. Everything here
is column-wise Arrow compute; only the error path looks at one value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidBatch

__all__ = ["EARLIEST", "END", "TEXT_LIMITS", "check_values", "time_range"]

# recorded_at: EARLIEST <= t < END. Page views start with the web, after 1970 (and
# times before the epoch are negative numbers some clients refuse); pandas'
# datetime64[ns] (and Go's UnixNano, and Polars' ns) ends on 2262-04-11, so the
# range stops at the year before, leaving room for hour, day and month buckets.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2262, 1, 1, tzinfo=dt.UTC)

# Bytes of UTF-8. Keys are indexed: PostgreSQL refuses an index row over 2,704
# bytes, and the event_id built from an event's content holds its page_url,
# session_id and user_id (2,048 + 256 + 256 and some digits stay under it).
TEXT_LIMITS: Mapping[str, int] = {
    "event_id": 256,
    "session_id": 256,
    "user_id": 256,
    "page_url": 2048,
    "referrer": 2048,
    "user_agent": 1024,
    "properties": 65_536,
}
# A JSON escape of NUL: PostgreSQL's jsonb refuses it, and with it any query
# that reads `properties` as JSON. Preceded by an even number of backslashes,
# so an escaped backslash followed by "u0000" is plain text.
_ESCAPED_NUL = r"(^|[^\\])(\\\\)*\\u0000"
_TARGET = pa.timestamp("us", "UTC")


def time_range() -> str:
    return f"{_iso(EARLIEST)} <= recorded_at < {_iso(END)}"


def check_values(columns: Mapping[str, pa.Array], sent_times: pa.Array, first_row: int) -> None:
    """InvalidBatch at the first value outside its bounds.

    `columns` are in EVENT_SCHEMA's types (event_id only as the sender gave it);
    `sent_times` is recorded_at as sent, to show the value in the sender's form.
    """
    _check_times(columns["recorded_at"], sent_times, first_row)
    _check_duration(columns["duration_s"], first_row)
    for name, limit in TEXT_LIMITS.items():
        if name in columns:
            _check_text(columns[name], name, limit, first_row)


def _check_times(times: pa.Array, sent: pa.Array, first_row: int) -> None:
    early = pc.less(times, pa.scalar(EARLIEST, _TARGET))
    row = _first(pc.or_(early, pc.greater_equal(times, pa.scalar(END, _TARGET))))
    if row is not None:
        raise InvalidBatch(
            "recorded_at",
            first_row + row,
            "timestamp",
            f"{_shown(sent, times, row)} is outside the accepted range {time_range()}",
        )


def _shown(sent: pa.Array, times: pa.Array, row: int) -> str:
    if (
        pa.types.is_string(sent.type)
        or pa.types.is_large_string(sent.type)
        or (pa.types.is_string_view(sent.type))
    ):
        return repr(sent[row].as_py())
    try:
        return times[row].as_py().isoformat()
    except (OverflowError, ValueError):  # past Python's datetime: the reason we refuse it
        micros = times.cast(pa.int64())[row].as_py()
        return f"{micros:,} microseconds from 1970-01-01T00:00:00Z"


def _check_duration(durations: pa.Array, first_row: int) -> None:
    row = _first(pc.invert(pc.is_finite(durations)))
    if row is not None:
        raise InvalidBatch(
            "duration_s", first_row + row, "finite", f"{durations[row].as_py()} is not a number"
        )
    row = _first(pc.less(durations, 0.0))  # -0.0 is not less than zero: it is zero
    if row is not None:
        raise InvalidBatch(
            "duration_s",
            first_row + row,
            "non-negative",
            f"{durations[row].as_py()}: a time on the page cannot be negative",
        )


def _check_text(values: pa.Array, name: str, limit: int, first_row: int) -> None:
    try:
        # Arrow does not check the UTF-8 of arrays it receives over IPC.
        values.validate(full=True)
    except pa.ArrowInvalid:
        row = _first_invalid_utf8(values)
        raise InvalidBatch(name, _at(first_row, row), "text", "not valid UTF-8") from None
    row = _first(pc.match_substring(values, "\x00"))
    if row is None and name == "properties":
        row = _first(pc.match_substring_regex(values, _ESCAPED_NUL))
    if row is not None:
        raise InvalidBatch(
            name,
            first_row + row,
            "text",
            f"holds NUL (U+0000), which PostgreSQL cannot store and many clients read as "
            f"the end of the text: {values[row].as_py()[:60]!r}",
        )
    sizes = pc.binary_length(values)
    row = _first(pc.greater(sizes, limit))
    if row is not None:
        raise InvalidBatch(
            name,
            first_row + row,
            "length",
            f"{sizes[row].as_py():,} bytes of UTF-8; {name} takes at most {limit:,} bytes",
        )


def _first_invalid_utf8(values: pa.Array) -> int | None:
    """Error path only."""
    for i in range(len(values)):
        try:
            values.slice(i, 1).validate(full=True)
        except pa.ArrowInvalid:
            return i
    return None


def _first(hit: pa.Array) -> int | None:
    found = pc.indices_nonzero(pc.fill_null(hit, False))
    return found[0].as_py() if len(found) else None


def _at(first_row: int, row: int | None) -> int | None:
    return None if row is None else first_row + row


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
