"""Publishing the card log's head (row id + hash) retained, so it is kept outside the terminal.

A small thread, like the health publisher: it publishes the head soon after each (re)connect, after
the log moved (any event on the terminal's bus, and any commit of this process that appended log
rows: `Database.log_watchers`), and at least every `[terminal] anchor_every_minutes`. Changes are
coalesced to one message per `MIN_GAP_S`, so a 500 signals/s burst costs one anchor every few
seconds, not one per row. The same head is not sent twice in a row. A failed publish is logged and
tried again on the next wake; it never touches the scan path.

What an anchor proves is in docs/RELIABILITY.md; the upstream peer keeps them (storage/anchors.py).
"""

from __future__ import annotations

import logging
import threading

from kanban_terminal.adapters.wire import LogAnchorMessage, encode, utc_text
from kanban_terminal.services.relay import Publisher
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.anchors import head

log = logging.getLogger(__name__)

MIN_GAP_S = 5.0
"""At most one anchor per this many seconds while the log is moving: bounds the broker's and the
peer's work (the peer keeps every anchor) while the head is never more than a few seconds stale."""


class AnchorPublisher:
    """Publishes `head()` of one terminal's log over a link as a `LogAnchorMessage`."""

    def __init__(self, terminal: Terminal, link: Publisher, topic: str, *, min_gap_s: float = MIN_GAP_S):
        self.terminal = terminal
        self.link = link
        self.topic = topic
        self.interval = terminal.config.terminal.anchor_every_minutes * 60
        self.min_gap_s = min_gap_s
        self.published = 0
        self.last: tuple[int, str] | None = None
        """The head last handed to the broker (None: none yet, or a reconnect asked for it again)."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-anchor", daemon=True)
        self._unsubscribe = terminal.bus.subscribe(lambda _event: self._wake.set())
        # Every commit that appended log rows wakes it too: many write one and announce nothing on
        # the bus (a clock step, a badge log-in, a runway warning with material calls off).
        terminal.db.log_watchers.append(self._wake.set)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Publish the last head (if the link is up) and stop."""
        self._unsubscribe()
        if self._wake.set in self.terminal.db.log_watchers:
            self.terminal.db.log_watchers.remove(self._wake.set)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        try:
            self.publish_now()
        except Exception:
            log.exception("the last log anchor was not published")

    def poke(self, *, again: bool = False) -> None:
        """Publish soon; `again` even if the head has not moved (after a reconnect)."""
        if again:
            self.last = None
        self._wake.set()

    def payload(self, at_head: tuple[int, str]) -> bytes:
        cfg = self.terminal.config
        key = self.terminal.db.log_key
        row, digest = at_head
        keyed = key is not None and row > key.keyed_after_id
        return encode(
            LogAnchorMessage,
            {
                "v": 1, "site": cfg.site.id, "line": cfg.line.id, "terminal": cfg.terminal.id, "row": row,
                "hash": digest, "key": key.fingerprint if key is not None and keyed else None,
                "at": utc_text(self.terminal.clock()),
            },
        )  # fmt: skip

    def publish_now(self) -> bool:
        """Publish the current head if the link is up and it differs from the last one sent."""
        if not self.link.connected:
            return False
        with self.terminal.db.snapshot() as sql:
            current = head(sql) or (0, "0" * 64)
        if current == self.last:
            return False
        self.link.publish(self.topic, self.payload(current), qos=1, retain=True)
        self.last = current
        self.published += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_now()
            except Exception:
                log.exception("log anchor not published; trying again")
            self._stop.wait(self.min_gap_s)  # coalesce: everything within the gap is one anchor
            if not self._wake.wait(self.interval):
                self.last = None  # the interval is a promise even when nothing moved
            self._wake.clear()
