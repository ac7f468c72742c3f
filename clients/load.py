"""What `Client.load` can read, as one stream of record batches, and what a load reports.

Files are streamed (Parquet row group by row group, CSV block by block), never
read whole, so a load's memory does not grow with the file.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from .errors import LoadError

__all__ = ["LoadResult", "LoadSource", "open_source"]

LoadSource = Any  # pa.Table | pa.RecordBatch | pa.RecordBatchReader | pandas.DataFrame | path
_PARQUET = (".parquet", ".pq")
_CSV_BLOCK_BYTES = 8 << 20  # ≈ 64 k rows of events per block: the batch size Flight likes


@dataclass(frozen=True)
class LoadResult:
    """What one load did. `rows` were sent; `accepted + duplicates == rows`."""

    accepted: int
    duplicates: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Source:
    """A load's input: its schema, its batches (each at most the requested rows), its size."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    total_rows: int | None  # None: not known before reading (CSV, readers)
    name: str


def open_source(source: LoadSource, batch_rows: int = 65_536) -> Source:
    """`source` as batches of at most `batch_rows` rows; LoadError for what cannot be read."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    if isinstance(source, (str, os.PathLike)):
        return _open_file(Path(source), batch_rows)
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if _is_pandas(source):
        source = pa.Table.from_pandas(source)
    if isinstance(source, pa.Table):
        batches = source.to_batches(max_chunksize=batch_rows)
        return Source(source.schema, iter(batches), source.num_rows, "the table")
    if isinstance(source, pa.RecordBatchReader):
        return Source(source.schema, _split(source, batch_rows), None, "the record batch reader")
    if hasattr(source, "__arrow_c_stream__"):  # Polars, DuckDB relations, other Arrow producers
        reader = pa.RecordBatchReader.from_stream(source)
        name = f"the {type(source).__name__} stream"
        return Source(reader.schema, _split(reader, batch_rows), None, name)
    raise TypeError(
        "load() takes a pyarrow Table, RecordBatch or RecordBatchReader, a pandas DataFrame, "
        f"or the path of a .parquet or .csv file; not {type(source).__name__}"
    )


def _is_pandas(source: object) -> bool:
    # Only a DataFrame made by an imported pandas can be one: no need to import it here.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(source, pandas.DataFrame)


def _split(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows)


def _open_file(path: Path, batch_rows: int) -> Source:
    suffix = path.suffix.lower()
    if suffix not in (*_PARQUET, ".csv"):
        raise LoadError(
            f"cannot load {str(path)!r}: use a .parquet, .pq or .csv file", rule="source"
        )
    if not path.is_file():
        raise LoadError(f"cannot load {str(path)!r}: no such file", rule="source")
    try:
        if suffix == ".csv":
            return _open_csv(path, batch_rows)
        return _open_parquet(path, batch_rows)
    except pa.ArrowException as exc:
        raise LoadError(f"cannot read {str(path)!r}: {exc}", rule="source") from exc


def _open_parquet(path: Path, batch_rows: int) -> Source:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    batches = file.iter_batches(batch_size=batch_rows)
    return Source(file.schema_arrow, batches, file.metadata.num_rows, str(path))


def _open_csv(path: Path, batch_rows: int) -> Source:
    import pyarrow.csv as pcsv

    # Every column is read as text: a streaming reader guesses types from its first
    # block only, and a later block that disagrees (an id that turns non-numeric, an
    # optional column empty at first) would fail half-way. The server casts text the
    # same way it casts JSON events. Empty cells are nulls, not "".
    columns = _csv_header(path)
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in columns}, strings_can_be_null=True
        ),
    )
    return Source(reader.schema, _split(reader, batch_rows), None, str(path))


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return next(csv.reader(file), [])
