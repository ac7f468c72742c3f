"""A live top-N: the first N rows of a view by one column, kept exact by reading it again.

Which row enters when a member's value falls, or a member leaves, depends on
rows the subscriber was never sent; the server does not keep the whole view's
order. So the subscriber keeps its current top-N (N <= request.MAX_TOP) and,
for each update it takes, asks one cheap question on Arrow: could this change
the top-N? Yes when a row of the update is a member, or matches and ranks at
or above the current last member (or there are fewer than N). Then it reads
the top-N again with the snapshot's SQL (ORDER BY ... LIMIT N) and sends the
difference: changed or entering rows as upserts, leaving rows as removes. The
read happens on the subscriber's own thread, never the hub's, at most once per
update it takes (and once per `min_interval_ms` when set). An update that
cannot change the top-N costs no query.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from flightdeck.views import Store

from .key_join import join_on_keys
from .request import LIVE, Subscription

__all__ = ["TopN"]


class TopN:
    def __init__(self, subscription: Subscription) -> None:
        assert subscription.top is not None
        self._subscription = subscription
        self._top = subscription.top
        self._keys = list(subscription.keys)
        self._rows: pa.Table | None = None  # the current top-N, in rank order

    def read(self, store: Store) -> pa.Table:
        """The top-N as the store has it now (also what is held from now on)."""
        with store.read(self._subscription.snapshot_sql()) as reader:
            self._rows = reader.read_all()  # N rows at most: bounded by MAX_TOP
        return self._rows

    def may_change(self, update: pa.Table) -> bool:
        """Could `update` (marked rows of the view) change the top-N?"""
        rows = self._rows
        if join_on_keys(update, rows.select(self._keys), self._keys, "left semi").num_rows:
            return True  # a member changed, left the filter or was deleted
        live = update.column(LIVE)
        last = rows.column(self._top.order_by)[rows.num_rows - 1] if rows.num_rows else None
        if rows.num_rows < self._top.limit or not last.is_valid:
            return bool(pc.any(live).as_py())  # room left, or the last ranks below everything
        ranks = pc.greater_equal if self._top.desc else pc.less_equal
        entering = pc.and_kleene(live, ranks(update.column(self._top.order_by), last))
        return bool(pc.any(pc.fill_null(entering, False)).as_py())

    def refresh(self, store: Store) -> pa.Table:
        """Read the top-N again; the difference as marked rows (LIVE false: left it)."""
        before = self._rows
        after = self.read(store)
        left = join_on_keys(before, after.select(self._keys), self._keys, "left anti")
        held = before.select([*self._keys, "version"]).rename_columns([*self._keys, "held_version"])
        joined = join_on_keys(after, held, self._keys, "left outer")
        new = pc.or_kleene(
            pc.is_null(joined.column("held_version")),
            pc.not_equal(joined.column("version"), joined.column("held_version")),
        )
        changed = joined.filter(pc.fill_null(new, True)).select(after.column_names)
        return pa.concat_tables(
            [
                changed.append_column(LIVE, pa.array([True] * changed.num_rows, pa.bool_())),
                left.select(after.column_names).append_column(
                    LIVE, pa.array([False] * left.num_rows, pa.bool_())
                ),
            ]
        )
