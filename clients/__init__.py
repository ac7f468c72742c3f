"""flightdeck: exact, live page-view analytics over Arrow Flight.

`import flightdeck` is the way in for users; the server lives in
`flightdeck.flight_server`, storage and views in `flightdeck.views`, the write
path in `flightdeck.ingest`.
"""

from .client import Client, LiveMessage, LiveSubscription

__version__ = "0.1.0"

__all__ = ["Client", "LiveMessage", "LiveSubscription", "__version__"]
