"""Dates and times Python cannot hold, as ISO 8601 text, so that printing them cannot crash.

The server refuses times outside 1970..2262 now, but a store filled by an older
version may hold years like 33658: Arrow keeps them, while `to_pylist()` raises
OverflowError (Python's datetime ends in 9999), pandas' Timestamp fails to print
them, and Arrow's own formatting wraps them to a wrong year. Arrow decides per
column which values are out of reach; only those columns are formatted here,
value by value.
"""

from __future__ import annotations

from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["first_far", "readable"]

Data = TypeVar("Data", pa.RecordBatch, pa.Table)

# Python's datetime spans 0001-01-01 .. 9999-12-31, days -719,162 .. 2,932,896 from
# 1970. A day's margin each side: a zone's offset must not carry a value out.
_FIRST_DAY = -719_162 + 1
_END_DAY = 2_932_897 - 1
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400 * 10**9}


def readable(data: Data, *, arrow_text: bool = False) -> Data:
    """`data` with each date or timestamp column that holds a value Python cannot hold
    turned into ISO 8601 text (e.g. "+33658-01-01T00:00:00+00:00").

    The other values of such a column read as Python's isoformat() writes them, or,
    with `arrow_text`, as Arrow's own cast to text writes them (as its CSV writer does).
    """
    columns = list(data.columns)
    changed = False
    for i, column in enumerate(columns):
        inside = _inside(column)
        if inside is None or pc.all(inside).as_py() is not False:
            continue
        texts = pa.array(_iso_texts(column), pa.string())
        columns[i] = pc.if_else(inside, column.cast(pa.string()), texts) if arrow_text else texts
        changed = True
    if not changed:
        return data
    names = data.schema.names
    return type(data).from_arrays(columns, names=names)


def first_far(data: pa.Table) -> tuple[str, int, str] | None:
    """The first value Python cannot hold: (column, row, the value as ISO 8601 text)."""
    for name, column in zip(data.schema.names, data.columns, strict=True):
        inside = _inside(column)
        if inside is None:
            continue
        outside = pc.indices_nonzero(pc.invert(pc.fill_null(inside, True)))
        if len(outside):
            row = outside[0].as_py()
            return name, row, _iso_texts(column.slice(row, 1))[0]
    return None


def _inside(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """Per value, whether Python can hold it; None for a column that is not temporal."""
    type_ = column.type
    if pa.types.is_timestamp(type_):
        per_day = _PER_DAY[type_.unit]
    elif pa.types.is_date32(type_):
        per_day = 1
    elif pa.types.is_date64(type_):
        per_day = _PER_DAY["ms"]
    else:
        return None
    numbers = _numbers(column)
    return pc.and_(
        pc.greater_equal(numbers, _FIRST_DAY * per_day), pc.less(numbers, _END_DAY * per_day)
    )


def _numbers(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Days (date32), milliseconds (date64) or the timestamp's unit since 1970."""
    if pa.types.is_date32(column.type):
        return column.cast(pa.int32()).cast(pa.int64())
    return column.cast(pa.int64())


def _iso_texts(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    type_ = column.type
    per_day = _PER_DAY[type_.unit] if pa.types.is_timestamp(type_) else None
    if pa.types.is_date64(type_):
        per_day = _PER_DAY["ms"]
    out: list[str | None] = []
    for number in _numbers(column).to_pylist():
        if number is None:
            out.append(None)
        elif pa.types.is_date32(type_):
            out.append(_date(number))
        elif pa.types.is_date64(type_):
            out.append(_date(number // per_day))
        else:
            out.append(_timestamp(number, per_day, type_.tz is not None))
    return out


def _timestamp(number: int, per_day: int, zoned: bool) -> str:
    days, rest = divmod(number, per_day)
    per_second = per_day // 86_400
    seconds, fraction = divmod(rest, per_second)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{_date(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    if fraction:  # as isoformat(): microseconds, or all nine digits of nanoseconds
        digits = 9 if per_second > 10**6 else 6
        text += f".{fraction * 10**digits // per_second:0{digits}d}"
    return text + ("+00:00" if zoned else "")  # the server sends UTC


def _date(days: int) -> str:
    """Days from 1970-01-01 as a proleptic Gregorian date; years past 9999 signed (ISO 8601)."""
    # Howard Hinnant's days_from_civil inverse: exact for any integer.
    z = days + 719_468
    era = z // 146_097
    day_of_era = z - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    year = year_of_era + era * 400 + (month <= 2)
    shown = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return f"{shown}-{month:02d}-{day:02d}"
