"""The bridge's one MQTT client: paho-mqtt 2.x, MQTT 5, a persistent session and a last will.

Why each setting (reliability.md section 2, stack.md P6):
- MQTT 5, so a refused publish comes back as a reason code instead of a silent "success".
- clean_start=False + SessionExpiryInterval: commands sent to devices while the bridge reconnects
  wait in the broker instead of being lost.
- A retained last will on the bridge availability topic, so consumers learn of a dead bridge.
- TCP_NODELAY on the socket: paho does not set it, and Nagle + delayed ACK cost ~44 ms a message.
- Every callback catches everything: an exception escaping into paho kills its network thread
  while `is_connected()` still says True (finding 5).
- TLS through a context made by `BrokerConfig.tls_context` (TLS 1.2+, chain and host name verified);
  plain MQTT only to a broker on this machine, which the configuration enforces.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kanban_terminal.adapters.mqtt_client import describe_connect_error
from kanban_terminal.domain.text import escape_external

log = logging.getLogger(__name__)

QOS = 1
_MAX_QUEUED = 10_000  # paho holds at most this many unsent messages in memory while the broker is away


def _guarded(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def wrap(func: Callable[..., None]) -> Callable[..., None]:
        def guarded(self: MqttLink, *args: Any) -> None:
            try:
                func(self, *args)
            except Exception:
                self.counts[f"callback_error_{name}"] += 1
                log.exception("MQTT callback %s failed", name)

        return guarded

    return wrap


class MqttLink:
    """Owns the paho client; the bridge sees only `publish`, `start`, `stop` and its two callbacks."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        subscriptions: list[str],
        on_message: Callable[[str, bytes], None],
        on_connected: Callable[[], None],
        will_topic: str,
        will_payload: dict[str, object],
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 10,
        session_expiry: int = 3600,
        reconnect_max: float = 10.0,
        on_published: Callable[[int, bool], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.keepalive = host, port, keepalive
        self.counts: Counter[str] = Counter()
        self._subscriptions = subscriptions
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._on_published_cb = on_published
        self._session_expiry = session_expiry
        self.connected = False
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username:
            client.username_pw_set(username, password)
        if tls_context is not None:
            client.tls_set_context(tls_context)
        self.tls = tls_context is not None
        self.last_error = ""
        """Why the last connection attempt failed ("" once connected): paho retries silently, and an
        untrusted CA, a wrong host name or an expired certificate must be told apart in the log."""
        paho_reconnect = client.reconnect

        def reconnect() -> Any:
            try:
                return paho_reconnect()
            except OSError as exc:  # ssl.SSLError and socket errors; paho retries after we re-raise
                self._connect_failed(describe_connect_error(exc))
                raise

        client.reconnect = reconnect  # type: ignore[method-assign]
        client.will_set(will_topic, json.dumps(will_payload), qos=QOS, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, round(reconnect_max)))
        client.max_queued_messages_set(_MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        self._client = client

    def start(self) -> None:
        """Connect in the background; paho's thread retries until the broker answers."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry
        self._client.connect_async(self.host, self.port, self.keepalive, clean_start=False, properties=props)
        self._client.loop_start()

    def stop(self, last: tuple[str, dict[str, object]] | None = None) -> None:
        """Publish `last` (topic, payload; retained) if connected, then disconnect cleanly."""
        if last is not None and self.connected:
            info = self.publish(last[0], last[1], retain=True)
            if info is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(
        self, topic: str, payload: dict[str, object], *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        """Queue a QoS 1 publish; None if paho refused it (queue full), which the caller must not ACK.

        A publish while disconnected returns MQTT_ERR_NO_CONN but is still queued and sent after the
        reconnect (finding 4), so only a full queue counts as refused.
        """
        info = self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=QOS, retain=retain)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.counts["published"] += 1
            return info
        self.counts["publish_refused"] += 1
        log.warning("publish to %s refused by paho: %s", topic, mqtt.error_string(info.rc))
        return None

    def _connect_failed(self, why: str) -> None:
        self.counts["connect_failed"] += 1
        if why != self.last_error:  # once per distinct reason: paho retries every few seconds
            log.warning("cannot connect to %s:%s: %s", self.host, self.port, why)
        self.last_error = why

    @_guarded("socket_open")
    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @_guarded("connect")
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.counts["connect_refused"] += 1
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("broker refused connection: %s", reason)
            return
        self.connected = True
        self.last_error = ""
        self.counts["connects"] += 1
        log.info(
            "connected to %s:%s (%s, session present: %s)",
            self.host, self.port, "TLS" if self.tls else "plain, loopback", flags.session_present,
        )  # fmt: skip
        if self._subscriptions:
            client.subscribe([(topic, QOS) for topic in self._subscriptions])
        self._on_connected_cb()

    @_guarded("disconnect")
    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: Any, reason: Any, props: Any
    ) -> None:
        was_connected, self.connected = self.connected, False
        self.counts["disconnects"] += 1
        if reason.is_failure and not was_connected and not self.last_error.startswith("broker refused"):
            # Closed between the TCP/TLS handshake and CONNACK: what a TLS listener does with plain
            # MQTT, and (TLS 1.3) a broker that rejects or misses our client certificate.
            self._connect_failed(
                f"broker closed the connection before accepting it ({reason}): plain MQTT to a TLS "
                "port, or a client certificate the broker requires or refuses?"
            )
            return
        log.log(
            logging.WARNING if reason.is_failure else logging.INFO, "disconnected from broker: %s", reason
        )

    @_guarded("message")
    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.counts["received"] += 1
        self._on_message_cb(message.topic, bytes(message.payload))

    @_guarded("publish")
    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.counts["publish_failed"] += 1
            log.warning("broker refused publish mid=%s: %s", mid, escape_external(str(reason)))
        if self._on_published_cb is not None:
            self._on_published_cb(mid, not reason.is_failure)

    def publish_bytes(self, topic: str, payload: bytes) -> int | None:
        """Publish an already encoded event (QoS 1, not retained); its message id, or None if paho
        refused it. The answer comes to `on_published(mid, ok)`."""
        info = self._client.publish(topic, payload, qos=QOS, retain=False)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.counts["published"] += 1
            return int(info.mid)
        self.counts["publish_refused"] += 1
        return None
