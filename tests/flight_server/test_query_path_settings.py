"""The query path's limits as settings: flag over environment over default."""

from __future__ import annotations

import argparse

from flightdeck.flight_server.settings import add_arguments, build_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_query_size_limit():
    assert build_settings(_parse([]), {}).max_query_bytes == 256 * 1024
    env = {"FLIGHTDECK_MAX_QUERY_KB": "64"}
    assert build_settings(_parse([]), env).max_query_kb == 64
    assert build_settings(_parse(["--max-query-kb", "8"]), env).max_query_bytes == 8 * 1024


def test_stream_idle_and_pool_timeouts():
    s = build_settings(_parse([]), {})
    assert (s.stream_idle_timeout, s.pool_timeout) == (30.0, 10.0)
    assert s.stream_idle_timeout < s.query_timeout  # an idle stream is freed before a slow query
    env = {"FLIGHTDECK_STREAM_IDLE_TIMEOUT": "12", "FLIGHTDECK_POOL_TIMEOUT": "3"}
    s = build_settings(_parse(["--pool-timeout", "0.5"]), env)
    assert (s.stream_idle_timeout, s.pool_timeout) == (12.0, 0.5)
    assert s.store_options().pool_timeout_s == 0.5
