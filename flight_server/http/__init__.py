"""The HTTP face: the same queries, auth, limits and live updates as Flight, for
browsers, curl, spreadsheets and Grafana (docs/http.md). It owns no logic: every
endpoint calls the entry points the Flight server uses."""

from .app import create_app
from .face import HttpFace

__all__ = ["HttpFace", "create_app"]
