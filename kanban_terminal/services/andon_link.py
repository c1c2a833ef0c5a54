"""Andon over the terminal's own MQTT link: the `AndonPublisher` port on the link `TerminalServices` runs.

One connection per terminal: the line state (retained), andon events and stack-light commands leave
through the same MQTT 5 session as the requests, with the same TLS, credentials and TCP_NODELAY.
The standalone adapter (adapters/andon_mqtt.py) remains for tools and tests that run andon alone.
"""

from __future__ import annotations

import json
import logging

from kanban_terminal.adapters.topics import LineTopics
from kanban_terminal.services.andon_publishing import Payload
from kanban_terminal.services.relay import Publisher

log = logging.getLogger(__name__)


class LinkAndonPublisher:
    """Publishes andon state through a connected link; paho queues while it reconnects, and the
    retained line state is sent afresh on every connect (`publish_current`)."""

    def __init__(self, link: Publisher, topics: LineTopics):
        self.link = link
        self.topics = topics

    def _send(self, topic: str, payload: Payload, *, retain: bool) -> None:
        self.link.publish(topic, json.dumps(payload, separators=(",", ":")).encode(), qos=1, retain=retain)

    def publish_line_state(self, payload: Payload) -> None:
        self._send(self.topics.line_state, payload, retain=True)

    def publish_andon_event(self, payload: Payload) -> None:
        self._send(self.topics.andon, payload, retain=False)

    def publish_stack_light(self, device: str, payload: Payload) -> None:
        self._send(self.topics.device_command(device), payload, retain=False)
