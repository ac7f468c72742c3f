"""Bound parameters cast to the declared types: what converts, what keeps its digits,
what is refused. Pure Arrow: no store."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from flightdeck.views import InvalidQuery
from flightdeck.views.parameter_cast import cast_parameters

UTC_MS = pa.timestamp("ms", tz="UTC")


def _cast(value, sent: pa.DataType | None, declared: pa.DataType) -> pa.Array:
    batch = pa.record_batch([pa.array([value], sent)], names=["p"])
    return cast_parameters(batch, pa.schema([("$1", declared)])).column(0)


@pytest.mark.parametrize(
    ("value", "sent", "declared", "expected"),
    [
        ("2024-01-15", None, pa.date32(), dt.date(2024, 1, 15)),
        ("2024-01-15T10:00:00+02:00", None, UTC_MS, dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC)),
        ("2024-01-15 10:00", None, UTC_MS, dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC)),
        (dt.datetime(2024, 1, 15, 10), None, UTC_MS, dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC)),
        (7, pa.int64(), pa.int32(), 7),
        ("7", None, pa.int64(), 7),
        (None, pa.null(), pa.date32(), None),
    ],
)
def test_values_that_convert_are_cast(value, sent, declared, expected):
    cast = _cast(value, sent, declared)
    assert cast[0].as_py() == expected
    assert cast.type == declared or pa.types.is_timestamp(declared)


def test_a_finer_timestamp_keeps_its_digits_though_milliseconds_are_declared():
    at = dt.datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=dt.UTC)
    cast = _cast(at, pa.timestamp("us", tz="UTC"), UTC_MS)
    assert cast.type == pa.timestamp("us", tz="UTC") and cast[0].as_py() == at


@pytest.mark.parametrize(
    ("value", "declared"),
    [(5, pa.string()), (5, pa.null()), ("anything", pa.null())],
)
def test_values_for_text_or_the_wildcard_go_as_sent(value, declared):
    sent = pa.array([value])
    assert _cast(value, None, declared).equals(sent)


@pytest.mark.parametrize(
    ("value", "sent", "declared", "words"),
    [
        (20240115, pa.int64(), pa.date32(), r"is int64 20240115.*date32"),
        (1705312800, pa.int64(), UTC_MS, r"is int64 .*timestamp\[ms, tz=UTC\]"),
        ("soon", None, UTC_MS, r"is string 'soon'.*timestamp\[ms, tz=UTC\]"),
        (2.5, pa.float64(), pa.int64(), r"is double 2\.5.*int64"),
    ],
)
def test_values_that_do_not_convert_are_refused_naming_parameter_and_type(
    value, sent, declared, words
):
    with pytest.raises(InvalidQuery, match=r"\[parameter-type\]: parameter \$1 \('p'\) " + words):
        _cast(value, sent, declared)
