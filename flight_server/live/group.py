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
        # Removed keys are kept too: a row older than its removal is as stale.
        self._offered = Sent(subscription.keys, (), forget_removed=False)
        self.members: set[Pending] = set()

    def rows(self, table: pa.Table) -> pa.Table:
        """From the hub's thread: the members' rows of one update of `view`, each marked
        with whether it is in the selection (`LIVE`); a row out of it is offered only
        while it may still be held (it was not already offered as out)."""
        rows = self._subscription.marked(table)
        if not rows.num_rows:
            return rows
        return self._offered.fresh(rows, unheld_removes=True)

    def removed(self, keys: pa.Table) -> pa.Table:
        """From the hub's thread: keys (and version) of rows deleted from `view`."""
        return self._offered.fresh(self._subscription.removed(keys), unheld_removes=True)
