"""The transport ceiling: the same rows, already in memory, served by a bare pyarrow.flight server.

Run as `python -m benchmarks.memory_server TABLE.arrow [--batch-rows N]`; it logs
`memory-flight port=N` on stderr once it serves. Any ticket returns the whole table.
"""

from __future__ import annotations

import argparse
import sys

import pyarrow as pa
import pyarrow.flight as flight

__all__ = ["MemoryServer"]


class MemoryServer(flight.FlightServerBase):
    def __init__(self, table: pa.Table, batch_rows: int) -> None:
        super().__init__("grpc://127.0.0.1:0")
        # Batches cut once, up front: serving is then only serialisation and the wire.
        self._batches = table.combine_chunks().to_batches(max_chunksize=batch_rows)
        self._schema = table.schema

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(b"table", [])
        return flight.FlightInfo(self._schema, descriptor, [endpoint], -1, -1)

    def do_get(self, context, ticket):
        reader = pa.RecordBatchReader.from_batches(self._schema, self._batches)
        return flight.RecordBatchStream(reader)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arrow_file")
    parser.add_argument("--batch-rows", type=int, default=65_536)
    args = parser.parse_args()
    # Read into allocated memory (not a map): "in memory" means resident before the clock.
    with pa.OSFile(args.arrow_file) as source:
        table = pa.ipc.open_file(source).read_all()
    server = MemoryServer(table, args.batch_rows)
    print(f"memory-flight port={server.port}", file=sys.stderr, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
