"""flightdeck: exact, live page-view analytics over Arrow Flight.

`import flightdeck` is the way in for users: `flightdeck.connect(uri)` gives a
Client that queries, loads and follows the server's views; `flightdeck.LiveTable`
keeps a view's rows live in a pyarrow Table. The server lives in
`flightdeck.flight_server`, storage and views in `flightdeck.views`, the write
path in `flightdeck.ingest`.
"""

from . import aio
from .client import Client, LiveMessage, LiveSubscription, ViewInfo, connect
from .errors import (
    Error,
    LoadError,
    LoadInterrupted,
    NotFoundError,
    QueryError,
    ServerError,
    ServerUnavailable,
    TimedOut,
    Unauthorized,
)
from .live_rows import Change
from .live_table import LiveTable
from .load import LoadResult
from .tracker import Tracker, TrackFailure, TrackStats

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Client",
    "Error",
    "LiveMessage",
    "LiveSubscription",
    "LiveTable",
    "LoadError",
    "LoadInterrupted",
    "LoadResult",
    "NotFoundError",
    "QueryError",
    "ServerError",
    "ServerUnavailable",
    "TimedOut",
    "TrackFailure",
    "TrackStats",
    "Tracker",
    "Unauthorized",
    "ViewInfo",
    "__version__",
    "aio",
    "connect",
]
