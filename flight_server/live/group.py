"""Subscriptions that select the same rows share the work each update costs.

A hundred dashboards following one view with one `where` would otherwise each
filter, project and version-check every update on their own thread, under one
GIL, next to ingest. A group does it once on the hub's thread and offers every
member the same table; members differ only in what their snapshot or resume
gave them, which their own `Sent` checks on their own thread.
"""

from __future__ import annotations

import pyarrow as pa

from .pending import Pending, Sent
from .request import Subscription

__all__ = ["Group"]


class Group:
    """Members whose subscriptions have one `selection`; changed only under the hub's lock."""

    def __init__(self, subscription: Subscription) -> None:
        self.view = subscription.view
        self.selection = subscription.selection
        self._subscription = subscription
        # The newest version per key this group was offered: a row older than one already
        # offered (updates published out of order) is stale for every member alike.
        self._offered = Sent(subscription.keys, ())
        self.members: set[Pending] = set()

    def rows(self, table: pa.Table) -> pa.Table:
        """From the hub's thread: the members' rows of one update of `view`."""
        rows = self._subscription.matches(table)
        if not rows.num_rows:
            return rows
        return self._offered.fresh(rows.select(list(self._subscription.carried)))
