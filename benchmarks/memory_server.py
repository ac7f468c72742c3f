"""The transport ceiling: the same rows, already in memory, served by a bare pyarrow.flight server.

Run as `python -m benchmarks.memory_server TABLE.arrow`; it logs `memory-flight
port=N` on stderr once it serves. Any ticket returns the whole table, as the
file's record batches: the file is cut into messages by DoGet's rule
(benchmarks/ceiling.py), so the ceiling sends what DoGet sends.
"""

from __future__ import annotations

import argparse
import sys

import pyarrow as pa
import pyarrow.flight as flight

__all__ = ["MemoryServer"]


class MemoryServer(flight.FlightServerBase):
    def __init__(self, batches: list[pa.RecordBatch], schema: pa.Schema) -> None:
        super().__init__("grpc://127.0.0.1:0")
        # Batches as the file holds them: serving is then only serialisation and the wire.
        self._batches = batches
        self._schema = schema

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(b"table", [])
        return flight.FlightInfo(self._schema, descriptor, [endpoint], -1, -1)

    def do_get(self, context, ticket):
        reader = pa.RecordBatchReader.from_batches(self._schema, self._batches)
        return flight.RecordBatchStream(reader)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arrow_file")
    args = parser.parse_args()
    # Read into allocated memory (not a map): "in memory" means resident before the clock.
    with pa.OSFile(args.arrow_file) as source:
        file = pa.ipc.open_file(source)
        batches = [file.get_batch(i) for i in range(file.num_record_batches)]
        schema = file.schema
    server = MemoryServer(batches, schema)
    print(f"memory-flight port={server.port}", file=sys.stderr, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
