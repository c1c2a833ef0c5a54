"""Reading a terminal's retained card-log anchor back from the broker, for `verify-log --anchors mqtt://`.

A short-lived MQTT client (clean session, QoS 1 subscription): connect, subscribe to the terminal's
`log_anchor` topic, take the retained message the broker hands out on subscribe, disconnect. It uses
the link's settings (TLS, credentials: adapters/mqtt_session.py), so it reaches exactly the brokers
the terminal reaches. The message is validated with the wire model before it is believed.
"""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt

from kanban_terminal.adapters.mqtt_session import new_client
from kanban_terminal.adapters.wire import LogAnchorMessage, validate
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.storage.anchors import Anchor

MAX_ANCHOR_BYTES = 1024


class AnchorFetchError(Exception):
    """No usable anchor could be read from the broker; the message says why."""


def fetch_retained_anchor(settings: MqttSettings, topic: str, *, timeout: float = 10.0) -> Anchor | None:
    """The retained anchor on `topic`, or None when the broker holds none.

    Raises:
        AnchorFetchError: the broker cannot be reached in `timeout` s, or the message is not an anchor.
    """
    client = new_client(settings, f"verify-log-{uuid.uuid4().hex[:12]}", max_inflight=10, max_queued=10)
    got: list[bytes] = []
    subscribed = threading.Event()
    done = threading.Event()
    failure: list[str] = []

    def on_connect(c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            failure.append(f"broker refused the connection ({reason})")
            done.set()
            return
        c.subscribe(topic, qos=1)

    def on_subscribe(_c: object, _u: object, _mid: object, _codes: object, _p: object) -> None:
        subscribed.set()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(settings.host, settings.port, keepalive=30)
    except OSError as exc:
        raise AnchorFetchError(f"cannot reach the broker {settings.host}:{settings.port}: {exc}") from exc
    client.loop_start()
    try:
        # Retained messages are sent right after SUBACK; a short grace after it means "none kept".
        if not subscribed.wait(timeout):
            raise AnchorFetchError(
                f"no answer from the broker {settings.host}:{settings.port} in {timeout:.0f} s"
            )
        done.wait(min(timeout, 2.0))
    finally:
        client.disconnect()
        client.loop_stop()
    if failure:
        raise AnchorFetchError(failure[0])
    if not got:
        return None
    message = validate(LogAnchorMessage, got[0], MAX_ANCHOR_BYTES)
    if isinstance(message, str):
        raise AnchorFetchError(f"the retained message on {topic} is not a log anchor: {message}")
    return Anchor(message.terminal, message.row, message.hash, message.at, message.key, message.site,
                  message.line)  # fmt: skip
