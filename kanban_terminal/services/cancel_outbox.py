"""The outbox of cancels: a re-route's cancels reach upstream at least once, like requests.

A cancel waits in `request_cancel` (written in the re-route's transaction, services/reroute.py) and
is published on the requests topic while the link is up, again every `republish_after` until
upstream answers a status `cancelled` for the request id (services/supplier_trouble.py). There is no
PUBACK bookkeeping: re-routes are rare (a handful a shift), and the answer, not the broker's
acknowledgement, is what ends the re-sending, exactly as for requests (a broker crash can lose an
acknowledged message, reliability finding 2). Upstream deduplicates by the request id.

The runtime runs `CancelOutbox.step` on a timer and when a loop is re-routed. It must not import
paho: it talks to a `Publisher`, and the runtime hands in the wire encoder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from kanban_terminal.services.outbox import Publisher, utc_text
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import supply_rows
from kanban_terminal.storage.supply_rows import DueCancel
from kanban_terminal.topics import LineTopics

log = logging.getLogger(__name__)

Encode = Callable[[dict[str, Any]], bytes]


class CancelOutbox:
    """Sends due cancels through a publisher; `step` is safe to call from any one thread at a time."""

    def __init__(
        self,
        terminal: Terminal,
        publisher: Publisher,
        encode: Encode,
        *,
        republish_after: timedelta = timedelta(seconds=60),
    ):
        self.terminal = terminal
        self.publisher = publisher
        self.encode = encode
        self.republish_after = republish_after
        self.topic = LineTopics(terminal.config.site.id, terminal.config.line.id).requests
        self.sent_total = 0
        self._lock = threading.Lock()

    def payload(self, cancel: DueCancel) -> dict[str, Any]:
        """The documented cancel message (docs/PROTOCOL.md, docs/schema/request_cancel.json)."""
        cfg = self.terminal.config
        message: dict[str, Any] = {
            "v": 1,
            "type": "cancel",
            "id": cancel.request_id,
            "site": cfg.site.id,
            "line": cfg.line.id,
            "terminal": cfg.terminal.id,
            "loop": cancel.loop_id,
            "card": cancel.card_id,
            "source": cancel.source,
            "reason": cancel.reason[:200],
            "cancelled_at": utc_text(cancel.cancelled_at),
            "attempt": cancel.publish_count + 1,
        }
        if cancel.replaced_by:
            message["replaced_by"] = cancel.replaced_by
        return message

    def step(self) -> int:
        """Publish every due cancel (link up only); returns how many went out."""
        if not self.publisher.connected:
            return 0
        with self._lock:
            now = self.terminal.clock()
            with self.terminal.db.snapshot() as sql:
                due = supply_rows.due_cancels(sql, now - self.republish_after)
            if not due:
                return 0
            for cancel in due:
                self.publisher.publish(self.topic, self.encode(self.payload(cancel)), 1, False)
            with self.terminal.db.unit_of_work() as uow:
                uow.supply.cancels_published([c.request_id for c in due], now)
            self.sent_total += len(due)
            log.info("%d request cancel(s) sent upstream", len(due))
            return len(due)
