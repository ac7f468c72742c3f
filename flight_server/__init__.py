"""The Arrow Flight server: RPC surface, descriptors, streaming and the error boundary."""

from .server import FlightdeckServer
from .settings import Settings, build_settings

__all__ = ["FlightdeckServer", "Settings", "build_settings"]
