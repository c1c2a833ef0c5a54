"""Andon over the terminal's own MQTT link: the `AndonPublisher` port on the link `TerminalServices` runs.

One connection per terminal: the line state (retained), andon events and stack-light commands leave
through the same MQTT 5 session as the requests, with the same TLS, credentials and TCP_NODELAY.
There is no other andon client: every andon notice leaves through this publisher.

Andon events have no outbox (the event itself is in the terminal's database; the notice is for
boards and other listeners). The plant's broker saves its store every second or two, so a crash can
lose a notice it already acknowledged, queued for a listener that was away. The publisher therefore
keeps the notices of the last `replay_s` and, after a reconnect, publishes again those sent in the
`replay_s` before the broker's last answer (the same rule as the firmware bridge's outbox).
Listeners drop the repeats by (`id`, `action`, `tier`) (docs/PROTOCOL.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from kanban_terminal.adapters.wire import (
    AndonEventMessage,
    BuzzerCommand,
    LightCommand,
    LineStateMessage,
    encode,
)
from kanban_terminal.adapters.wire.fields import Message
from kanban_terminal.services.andon_publishing import Payload
from kanban_terminal.services.relay import Publisher
from kanban_terminal.topics import LineTopics

log = logging.getLogger(__name__)


class _Link(Publisher, Protocol):
    @property
    def last_answer_at(self) -> float | None: ...

    @property
    def answered_before_loss(self) -> float | None: ...


class LinkAndonPublisher:
    """Publishes andon state through a connected link; paho queues while it reconnects, and the
    retained line state is sent afresh on every connect (`publish_current`)."""

    def __init__(
        self,
        link: _Link,
        topics: LineTopics,
        *,
        replay_s: float = 10.0,
        timer: Callable[[], float] = time.monotonic,
    ):
        self.link = link
        self.topics = topics
        self.replay_s = replay_s
        self._timer = timer
        self._recent: deque[tuple[float, bytes]] = deque()
        """(when published, payload) of the andon events of the last `replay_s`."""
        self._lock = threading.Lock()

    def _send(self, topic: str, model: type[Message], payload: Payload, *, retain: bool) -> bytes:
        data = encode(model, payload)  # written through the wire model: what docs/schema promises
        self.link.publish(topic, data, qos=1, retain=retain)
        return data

    def publish_line_state(self, payload: Payload) -> None:
        self._send(self.topics.line_state, LineStateMessage, payload, retain=True)

    def publish_andon_event(self, payload: Payload) -> None:
        data = self._send(self.topics.andon, AndonEventMessage, payload, retain=False)
        if self.replay_s > 0:
            now = self._timer()
            # Counted from the broker's last answer, not from now: during an outage that answer
            # stays put, and what it acknowledged just before must still be here at the reconnect.
            keep_from = (self.link.last_answer_at or now) - self.replay_s
            with self._lock:
                self._recent.append((now, data))
                while self._recent and self._recent[0][0] < keep_from:
                    self._recent.popleft()

    def publish_stack_light(self, device: str, payload: Payload) -> None:
        model = LightCommand if payload.get("type") == "light" else BuzzerCommand
        self._send(self.topics.device_command(device), model, payload, retain=False)

    def replay_after_reconnect(self) -> int:
        """Publish again the events sent in the `replay_s` before the broker's last answer before the
        link was lost; returns how many. Later ones were never acknowledged: paho sends those itself."""
        until = self.link.answered_before_loss
        if until is None or self.replay_s <= 0:
            return 0
        with self._lock:
            due = [data for at, data in self._recent if until - self.replay_s <= at <= until]
        for data in due:
            self.link.publish(self.topics.andon, data, qos=1, retain=False)
        if due:
            log.info("broker reconnected: %d andon event(s) it acknowledged lately sent again", len(due))
        return len(due)
