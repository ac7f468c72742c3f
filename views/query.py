"""Turn what a client asked for (a view name or SQL text) into a checked query.

Every query is checked here, each time it is resolved *and* each time it is
run: a ticket comes back from the client, so it is never trusted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pyarrow as pa

from . import catalog, guard
from .complexity import MAX_QUERY_BYTES, check_size
from .errors import NotFound
from .interrupt import Interrupt
from .parameters import bind_style, check_bound, without_unions
from .store import Store

__all__ = ["Query", "for_sql", "for_view", "prepare", "run", "schema"]


@dataclass(frozen=True)
class Query:
    sql: str
    view: str | None = None  # set when the client named a whole view
    parameters: pa.RecordBatch | None = field(default=None, compare=False)
    parameter_count: int = 0

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


def prepare(store: Store, sql: str, *, max_bytes: int = MAX_QUERY_BYTES) -> Query:
    """A client's SQL text, checked, with its parameters still to bind.

    Refused with InvalidQuery unless it only reads `va_` views, or when longer
    than `max_bytes` (--max-query-kb). Placeholders are rewritten to the store's
    style first, so the text checked is the text run.
    """
    check_size(sql, max_bytes)  # before anything reads the text, placeholders included
    text, count = bind_style(sql, store.backend)
    guard.check_query(text, store.backend, catalog.view_names(store), max_bytes=max_bytes)
    return Query(text, parameter_count=count)


def for_sql(
    store: Store,
    sql: str,
    parameters: pa.RecordBatch | None = None,
    *,
    max_bytes: int = MAX_QUERY_BYTES,
) -> Query:
    """A client's SQL text, checked, with exactly the parameters it takes."""
    query = prepare(store, sql, max_bytes=max_bytes)
    parameters = without_unions(parameters)
    check_bound(parameters, query.parameter_count)
    return replace(query, parameters=parameters)


def schema(store: Store, query: Query) -> pa.Schema:
    return store.schema(query.sql, query.parameters, replica=True)


@contextlib.contextmanager
def run(
    store: Store,
    query: Query,
    *,
    max_bytes: int = MAX_QUERY_BYTES,
    interrupt: Interrupt | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Check `query` again and stream its result from the store; `interrupt`
    stops it in the store from another thread."""
    if query.view:
        checked = for_view(store, query.view)
    else:
        checked = for_sql(store, query.sql, query.parameters, max_bytes=max_bytes)
    # A client's query may read a replica: it sees a commit once the replica has it.
    with store.read(checked.sql, checked.parameters, interrupt=interrupt, replica=True) as reader:
        yield reader
