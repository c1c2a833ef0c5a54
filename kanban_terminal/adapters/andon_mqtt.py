"""Andon over MQTT, standalone: publishes line state / andon events / stack-light commands and turns
andon-button signals into `handle_andon_signal` calls.

paho-mqtt 2.x, MQTT 5, QoS 1. The line state is retained (a board that connects later sees it at
once); events and commands are never retained (a restart must not replay them). On every (re)connect
the current line state is published again, so the retained copy is never stale after an outage.

Button signals are handled on paho's network thread and acknowledged only after the callback returns,
i.e. after the transaction committed: a crash before that gets a redelivery, which the signal id
dedupes. This adapter is meant to be routed through the terminal's main MQTT link later; it keeps to
the small `AndonPublisher` port so that swap touches nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kanban_terminal.adapters.topics import LineTopics
from kanban_terminal.adapters.wire import InboundDecoder
from kanban_terminal.domain.inbound import AndonSignal, Refusal
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon_publishing import Payload, connect_publisher, publish_current
from kanban_terminal.services.andon_signals import handle_andon_signal
from kanban_terminal.services.refusals import keep_refusals
from kanban_terminal.services.terminal import Terminal

log = logging.getLogger(__name__)
QOS = 1


class AndonMqtt:
    """One MQTT client for the andon feature: an `AndonPublisher` plus the andon-button subscriber."""

    def __init__(
        self,
        terminal: Terminal,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        subscribe_buttons: bool = True,
    ) -> None:
        self.terminal = terminal
        self.topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
        self._wire = InboundDecoder(terminal.config, self.topics)
        self.host, self.port = host, port
        self.subscribe_buttons = subscribe_buttons
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{terminal.config.terminal.id}-andon",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subscribe_mid: int | None = None
        self._unsubscribe_bus: Any = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> bool:
        """Connect (paho reconnects by itself afterwards) and follow the bus; True once connected
        and, with `subscribe_buttons`, once the broker confirmed the button subscription (a signal
        published before that would not reach this terminal)."""
        self._unsubscribe_bus = connect_publisher(self.terminal, self)
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self.connected.wait(timeout)

    def stop(self) -> None:
        if self._unsubscribe_bus is not None:
            self._unsubscribe_bus()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("andon MQTT connect refused: %s", reason)
            return
        publish_current(self.terminal)
        if self.subscribe_buttons:
            _rc, self._subscribe_mid = client.subscribe(self.topics.all_device_signals, qos=QOS)
        else:
            self.connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        if mid != self._subscribe_mid:
            return
        if any(r.is_failure for r in reasons):
            log.warning("andon button subscription refused: %s", reasons)
            return
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.info("andon MQTT disconnected: %s", reason)

    # -- AndonPublisher --------------------------------------------------------------------------

    def _publish(self, topic: str, payload: Payload, *, retain: bool = False) -> None:
        data = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        info = self.client.publish(topic, data, qos=QOS, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # paho queues QoS 1 while disconnected; anything else is worth a log line.
            log.warning("andon publish on %s not queued: rc=%s", topic, info.rc)

    def publish_line_state(self, payload: Payload) -> None:
        self._publish(self.topics.line_state, payload, retain=True)

    def publish_andon_event(self, payload: Payload) -> None:
        self._publish(self.topics.andon, payload)

    def publish_stack_light(self, device: str, payload: Payload) -> None:
        self._publish(self.topics.device_command(device), payload)

    # -- andon buttons ---------------------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if b'"andon_' not in msg.payload:
            return  # not ours to judge: the bin-signal handler owns non-andon payloads
        message = self._wire.decode(msg.topic, bytes(msg.payload), self.terminal.clock())
        try:
            if isinstance(message, Refusal):
                keep_refusals(self.terminal, [message])
                return
            if not isinstance(message, AndonSignal):
                return
            outcome = handle_andon_signal(self.terminal, message)
        except Exception:
            log.exception("andon signal on %s not handled", escape_external(msg.topic, 120))
            return
        log.info("andon signal %s: %s", message.id, outcome.status)
