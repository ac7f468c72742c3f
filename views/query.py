"""Turn what a client asked for (a view name or SQL text) into a checked query.

Every query is checked here, each time it is resolved *and* each time it is
run: a ticket comes back from the client, so it is never trusted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from . import catalog, guard
from .errors import NotFound
from .store import Store

__all__ = ["Query", "for_sql", "for_view", "run", "schema"]


@dataclass(frozen=True)
class Query:
    sql: str
    view: str | None = None  # set when the client named a whole view

    @classmethod
    def whole(cls, view: str) -> Query:
        """All of `view` (not yet checked to exist: `run` checks again)."""
        return cls(f'SELECT * FROM "{view}"', view=view)


def for_view(store: Store, name: str) -> Query:
    """The whole of view `name`; NotFound (listing the views) when there is none."""
    names = catalog.view_names(store)
    if name not in names:
        raise NotFound("view", name, names)
    return Query.whole(name)


def for_sql(store: Store, sql: str) -> Query:
    """A client's SQL text, refused with InvalidQuery unless it only reads `va_` views."""
    guard.check_query(sql, store.backend, catalog.view_names(store))
    return Query(sql)


def schema(store: Store, query: Query) -> pa.Schema:
    return store.schema(query.sql)


@contextlib.contextmanager
def run(store: Store, query: Query) -> Iterator[pa.RecordBatchReader]:
    """Check `query` again and stream its result from the store."""
    checked = for_view(store, query.view) if query.view else for_sql(store, query.sql)
    with store.read(checked.sql) as reader:
        yield reader
