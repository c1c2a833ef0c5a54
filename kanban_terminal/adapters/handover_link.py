"""Shift handovers go upstream: each `HandoverTaken` on the bus is published, QoS 1, not retained,
on `kanban/v1/{site}/{line}/handover` (`HandoverMessage`, docs/schema/handover.json).

Like the andon notices it leaves through the terminal's one MQTT link, from the process that runs
the link (the screen or `serve`); a handover taken with the CLI beside them is in the log only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kanban_terminal.adapters.wire.outbound import HandoverMessage, encode
from kanban_terminal.services.bus import Bus
from kanban_terminal.services.events import HandoverTaken
from kanban_terminal.topics import LineTopics


class _Publishes(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int: ...


def connect_handover_publisher(bus: Bus, link: _Publishes, topics: LineTopics) -> Callable[[], None]:
    """Publish every handover taken from now on; returns the unsubscribe function."""

    def on_event(event: object) -> None:
        if isinstance(event, HandoverTaken):
            link.publish(topics.handover, encode(HandoverMessage, event.payload), qos=1, retain=False)

    return bus.subscribe(on_event)
