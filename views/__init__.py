"""Storage, schema and read-only views: everything the query path reads through."""

from .catalog import ViewInfo, describe, view_names
from .errors import BackendError, InvalidQuery, NotFound, Unsupported
from .interrupt import Interrupt
from .store import Store, StoreOptions, open_store

__all__ = [
    "BackendError",
    "Interrupt",
    "InvalidQuery",
    "NotFound",
    "Store",
    "StoreOptions",
    "Unsupported",
    "ViewInfo",
    "describe",
    "open_store",
    "view_names",
]
