"""Union-typed parameter columns bind as their members' values (or are refused)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from flightdeck.views import InvalidQuery
from flightdeck.views.parameters import without_unions

WHEN = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)


def _children() -> list[pa.Array]:
    return [
        pa.array([7, 8], pa.int64()),
        pa.array(["/a", "/b"]),
        pa.array([WHEN, None], pa.timestamp("us", "UTC")),
    ]


def test_dense_union_becomes_its_member():
    column = pa.UnionArray.from_dense(
        pa.array([1, 1], pa.int8()), pa.array([1, 0], pa.int32()), _children()
    )
    batch = without_unions(pa.RecordBatch.from_arrays([column], names=["p"]))
    assert batch.schema.field("p").type == pa.string()
    assert batch.column(0).to_pylist() == ["/b", "/a"]


def test_sparse_union_with_type_codes_keeps_type_and_nulls():
    column = pa.UnionArray.from_sparse(
        pa.array([5, 5], pa.int8()), _children(), type_codes=[3, 4, 5]
    )
    batch = without_unions(pa.RecordBatch.from_arrays([column], names=["when"]))
    assert batch.schema.field("when").type == pa.timestamp("us", "UTC")
    assert batch.column(0).to_pylist() == [WHEN, None]


def test_plain_columns_pass_unchanged():
    batch = pa.RecordBatch.from_pydict({"p": ["/a"]})
    assert without_unions(batch) is batch
    assert without_unions(None) is None


def test_rows_of_different_members_are_refused_naming_the_parameter():
    mixed = pa.UnionArray.from_dense(
        pa.array([0, 1], pa.int8()), pa.array([0, 0], pa.int32()), _children()
    )
    plain = pa.array(["x", "y"])
    batch = pa.RecordBatch.from_arrays([plain, mixed], names=["a", "b"])
    with pytest.raises(InvalidQuery, match=r"parameter \$2 \('b'\).*int64, string") as refused:
        without_unions(batch)
    assert refused.value.rule == "parameter-type"
