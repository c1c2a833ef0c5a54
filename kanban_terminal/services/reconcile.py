"""Status reconciliation: no card stays short of its true state after an outage, takeover or loss.

A status lost on its way back (a bridge killed mid-stream, a peer taken over, a broker restarted
without persistence) used to be re-asked for only when NO status had come back: issue 16 measured
45 of ~900 cards left at accepted/picked for good. Now, for every open request whose last status is
older than `mqtt.reconcile_after_s`, the terminal publishes an idempotent status query; the peer that
owns the request answers with its current stage through its store-and-forward outbox, and the answer
is applied like any other (older or repeated stages are ignored by `apply_upstream_status`).

A request is asked about again only after another `reconcile_after_s`, so a request that is simply
waiting at a slow supermarket costs one small message per bound. Requests upstream never heard of
are the relay's job (it re-publishes them after `republish_after_s`), not this one's.

It must not publish or import paho: `ask` (adapters/status_query.py) sends the query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.reconcile_reads import stale_open_requests

log = logging.getLogger(__name__)

BATCH = 100
"""Request ids per query (the wire's `MAX_QUERY_IDS`)."""


class Reconciler:
    """One step per period: find stale open requests, ask upstream about them in batches."""

    def __init__(
        self,
        terminal: Terminal,
        ask: Callable[[list[str]], object],
        *,
        after: timedelta,
        connected: Callable[[], bool] = lambda: True,
        timer: Callable[[], float] = time.monotonic,
    ):
        """Args:
        terminal: whose outbox is read.
        ask: sends one status query for up to `BATCH` request ids.
        after: a request whose last status is older than this is asked about, and then not again
            until this much later.
        connected: False skips the step (a query to a broker we cannot reach helps nobody).
        timer: monotonic clock of the "asked last" bookkeeping.
        """
        self.terminal = terminal
        self.ask = ask
        self.after = after
        self.connected = connected
        self.timer = timer
        self._asked: dict[str, float] = {}
        self.queries = 0
        self.asked = 0

    @property
    def period_s(self) -> float:
        """How often the runtime calls `step`: a quarter of the bound, at least 0.5 s, at most 30 s."""
        return max(0.5, min(30.0, self.after.total_seconds() / 4))

    def step(self) -> int:
        """Ask about every stale open request not asked about within `after`. Returns how many."""
        if not self.connected():
            return 0
        stale_before = self.terminal.clock() - self.after
        with self.terminal.db.snapshot() as sql:
            stale = stale_open_requests(sql, stale_before)
        now = self.timer()
        again_after = self.after.total_seconds()
        stale_set = set(stale)
        self._asked = {rid: at for rid, at in self._asked.items() if rid in stale_set}
        due = [rid for rid in stale if now - self._asked.get(rid, -again_after) >= again_after]
        for start in range(0, len(due), BATCH):
            batch = due[start : start + BATCH]
            self.ask(batch)
            self.queries += 1
            for rid in batch:
                self._asked[rid] = now
        if due:
            log.info("asked upstream for the status of %d open request(s)", len(due))
        self.asked += len(due)
        return len(due)
