"""Publishing the retained health message while a terminal runs (screen or `serve`).

A small thread: once a minute, and soon after each (re)connect, it reads the facts, builds the
payload with `health.build_health` and publishes it retained with QoS 1 on the terminal's health
topic, so a plant view is one subscription away. Failing to publish is logged and retried on the
next tick; it never touches the scan path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from kanban_terminal import __version__
from kanban_terminal.adapters.wire import HealthMessage, encode
from kanban_terminal.services.health import build_health, read_health_facts
from kanban_terminal.services.relay import Publisher
from kanban_terminal.services.terminal import Terminal

log = logging.getLogger(__name__)

INTERVAL_S = 60.0


class HealthPublisher:
    """Publishes `build_health` for one terminal over a link, every `interval` seconds."""

    def __init__(
        self,
        terminal: Terminal,
        link: Publisher,
        topic: str,
        *,
        link_state: Callable[[], str],
        last_error: Callable[[], str] = lambda: "",
        interval: float = INTERVAL_S,
        queue_age: Callable[[datetime], float] | None = None,
    ) -> None:
        """`queue_age`: the oldest queued request's age in elapsed seconds, given its stored raise
        (the runtime's, so health and the status bar agree); None counts it on the wall clock."""
        self.terminal = terminal
        self.link = link
        self.topic = topic
        self.link_state = link_state
        self.last_error = last_error
        self.interval = interval
        self.queue_age = queue_age
        self.started_at: datetime = terminal.clock()
        self._started_mono = terminal.monotonic()  # uptime on elapsed time: a wall step bent it
        self.published = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def poke(self) -> None:
        """Publish soon (after a reconnect, a retained message may be stale)."""
        self._wake.set()

    def payload(self) -> bytes:
        facts = read_health_facts(self.terminal, self.terminal.db.path.parent)
        error = self.last_error()
        oldest = facts.oldest_queued_at
        age = None if oldest is None or self.queue_age is None else self.queue_age(oldest)
        health = build_health(
            terminal_id=self.terminal.config.terminal.id,
            version=__version__,
            now=self.terminal.clock(),
            started_at=self.started_at,
            link_state=self.link_state(),
            queued=facts.queued,
            oldest_queued_at=facts.oldest_queued_at,
            disk_free_bytes=facts.disk_free_bytes,
            last_scan_at=facts.last_scan_at,
            last_error=error or None,
            oldest_age_s=age,
            uptime_s=self.terminal.monotonic() - self._started_mono,
        )
        return encode(HealthMessage, health)  # through the wire model (docs/schema/health.json)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.link.connected:
                    self.link.publish(self.topic, self.payload(), qos=1, retain=True)
                    self.published += 1
            except Exception:
                log.exception("health message not published; trying again in %.0f s", self.interval)
            self._wake.wait(self.interval)
            self._wake.clear()
