"""Benchmarks: flightdeck's columnar throughput side by side with what users pick instead.

`python -m benchmarks [--quick] [--out DIR]` starts its own PostgreSQL, nats-server
and flightdeck servers on loopback, runs every comparison with the contenders
interleaved (A B A B …), and writes results.json, results.md and PNG plots.
Each figure that matters is a ratio of interleaved runs, so that it holds on a
noisy shared machine. See benchmarks/RESULTS.md for the latest full run.
"""

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from .run import main as run_main

    return run_main(argv)
