"""What can be queried: the `va_` views that exist in the store, with their schemas.

The catalog is read from the store itself, not from files, so a view appears
as soon as it exists, however it was created.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import NotFound
from .store import Store

__all__ = ["ViewInfo", "describe", "view_names"]


@dataclass(frozen=True)
class ViewInfo:
    name: str
    schema: pa.Schema


def view_names(store: Store) -> list[str]:
    """Names of every `va_` view, sorted."""
    sql = (
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{store.schema_name}' AND table_type = 'VIEW' "
        "AND substr(table_name, 1, 3) = 'va_' ORDER BY table_name"
    )
    with store.read_internal(sql) as reader:
        return reader.read_all().column(0).to_pylist()


def describe(store: Store, name: str | None = None) -> list[ViewInfo]:
    """Schemas of every view, or of the one named (NotFound lists the valid names)."""
    names = view_names(store)
    if name is not None:
        if name not in names:
            raise NotFound("view", name, names)
        names = [name]
    return [ViewInfo(n, store.schema(f'SELECT * FROM "{n}"')) for n in names]
