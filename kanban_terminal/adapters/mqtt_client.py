"""The one MQTT link (paho-mqtt 2.x) of the terminal, the upstream peer and the firmware bridge.

Each of them used to set MQTT 5, sessions, TCP_NODELAY and callbacks its own way; now all three run
this class with one settings model (kanban_terminal.mqtt_settings), set up in mqtt_session.py.
What paho does not do on its own, and this class adds (../shared/reference/reliability.md 2.3):

* Every callback wrapped: an exception in a callback kills paho's network thread while
  `is_connected()` keeps saying True (reliability finding 5). A watchdog notices a dead loop thread
  and a link that went silent (half-open), restarts or drops it, and says so in the link state.
* Retained availability with a last will, a per-connection session id and a heartbeat, so a stale
  retained "online" left behind by a broker crash can be recognised by its age (finding 7). The
  owner may shape the message (`availability_message`); the link sends it at the right moments.
* Why the last connection attempt failed, in words that tell TLS mistakes apart (`last_error`).
* Public hooks (`on_message`, `on_published`, `on_connected`, or `set_handlers`), called on paho's
  thread: they must only hand work over, except `on_drained` (after a pass of paho's loop with
  nothing left `unread`), where the owner may apply what it was handed (mqtt_wakeups.py says why).

It is not a queue: paho keeps its session in memory only. Durable state lives in SQLite (the
terminal's outbox, the bridge's outbox); their owners hand paho at most a small window of it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from kanban_terminal.adapters.mqtt_acks import AckGate
from kanban_terminal.adapters.mqtt_callbacks import PahoCallbacks
from kanban_terminal.adapters.mqtt_inline_writes import writes_after
from kanban_terminal.adapters.mqtt_session import (
    availability_payload,
    connect_options,
    describe_connect_error,
    new_client,
    set_will,
)
from kanban_terminal.adapters.mqtt_wakeups import after_each_pass, unread, watch_wait
from kanban_terminal.adapters.takeover import SessionWitness
from kanban_terminal.adapters.wire import utc_text as utc_text  # the wire's; demo and peer import it here
from kanban_terminal.domain.text import escape_external
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.mqtt_settings import parse_mqtt_url as parse_mqtt_url  # for `--mqtt` callers

log = logging.getLogger(__name__)

MqttMessage = mqtt.MQTTMessage
MessageHandler = Callable[[str, bytes, int, int, int], None]
"""handler(topic, payload, mid, qos, generation): on paho's thread; must only hand it over, then
`ack(mid, qos, generation)` once it is safe (committed). Without a handler every message is acked."""
PublishedHandler = Callable[[int, bool, str], None]
"""handler(mid, ok, reason): a QoS 1 publish was answered by the broker."""
ConnectedHandler = Callable[[bool], None]
"""handler(session_present): the broker accepted a connection; subscriptions are on their way."""


@dataclass(frozen=True)
class LinkState:
    """What the status bar shows about the broker link."""

    state: str  # connected, reconnecting or offline
    since: datetime
    detail: str = ""


class MqttLink(PahoCallbacks):
    """One paho client, started in the background, that keeps reconnecting until stopped (what paho
    calls back on its thread: adapters/mqtt_callbacks.py)."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        subscriptions: list[tuple[str, int]] = (),  # type: ignore[assignment]
        on_message: MessageHandler | None = None,
        on_published: PublishedHandler | None = None,
        on_connected: ConnectedHandler | None = None,
        availability_topic: str | None = None,
        availability_message: Callable[[str], bytes] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_inflight: int = 20,
        receive_maximum: int | None = None,
        max_queued: int = 0,
    ):
        """Args:
        settings: broker, TLS, credentials, session, keepalive, back-off, heartbeat interval.
        client_id: the MQTT client id (one per terminal, peer or bridge).
        subscriptions: (topic filter, QoS), subscribed again on every connect.
        on_message, on_published, on_connected: hooks, see `set_handlers`.
        availability_topic: where the retained availability and the last will go; None for none.
        availability_message: state ("online" or "offline") -> retained payload; default the
            terminal's (docs/PROTOCOL.md).
        clock: wall clock for the link state and availability times.
        max_inflight: QoS 1 publishes paho has on the wire at once.
        receive_maximum: inbound QoS 1 messages the broker may have unacknowledged with us (MQTT 5).
        max_queued: publishes paho keeps in memory while they wait; 0 for no limit.
        """
        self.settings = settings
        self.client_id = client_id
        # Our own availability too (QoS 0, before "online" goes out): another instance's shows there.
        self.subscriptions = list(subscriptions) + ([(availability_topic, 0)] if availability_topic else [])
        self._on_message = on_message
        self._on_published = on_published
        self._on_connected = on_connected
        self.availability_topic = availability_topic
        self._availability_message = availability_message or self._terminal_availability
        self.receive_maximum = receive_maximum
        self.clock = clock
        self.session_id = uuid.uuid4().hex[:12]
        """New for every process start: tells a consumer which availability belongs to which run."""
        self.witness = SessionWitness(client_id, self.session_id)  # names a takeover's other instance
        self._state = LinkState("offline", clock(), "not started")
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._session_up = False
        """True from a CONNACK to the next disconnect: tells a lost link from a refused attempt."""
        self.callback_errors = 0
        self.publish_refused = 0
        """Publishes paho would not queue (its queue was full); logged as they happen."""
        self.last_error = ""
        """Why the last connection attempt failed; "" once connected."""
        self.last_packet = time.monotonic()
        self.last_answer_at: float | None = None
        """Monotonic time of the broker's newest PUBACK, of any publish."""
        self.answered_before_loss: float | None = None
        """`last_answer_at` when the link was last lost: a broker that crashed lost at most what it
        acknowledged shortly before this (between its periodic saves), however long it stayed down."""
        self.acks = AckGate()  # counts connections; a mid is acked only on its own (mqtt_acks.py)
        client = new_client(settings, client_id, max_inflight=max_inflight, max_queued=max_queued)
        self.client = client
        client.on_connect = self._wrap(self._handle_connect)
        client.on_disconnect = self._wrap(self._handle_disconnect)
        client.on_message = self._wrap(self._handle_message)
        client.on_publish = self._wrap(self._handle_publish)
        client.on_socket_open = self._wrap(self._handle_socket_open)
        client.on_connect_fail = self._wrap(self._handle_connect_fail)
        client.on_subscribe = self._wrap(self._handle_subscribe)
        self._pending_subscriptions: dict[int, str] = {}
        self._connect_error = "broker unreachable"
        # paho's on_connect_fail carries no exception, so an untrusted CA, a wrong host name and an
        # expired certificate all looked alike; keep why the last attempt failed (issue 7, S1).
        paho_reconnect = client.reconnect

        def reconnect() -> Any:
            self.acks.connecting()  # before paho empties its queue: no old PUBACK after it
            try:
                return paho_reconnect()
            except OSError as exc:
                self._connect_error = describe_connect_error(exc)
                raise

        client.reconnect = reconnect  # type: ignore[method-assign]
        if availability_topic:
            set_will(client, settings, availability_topic, self._availability_message("offline"))

    # -- public -----------------------------------------------------------------------------------

    def set_handlers(
        self,
        *,
        on_message: MessageHandler | None = None,
        on_published: PublishedHandler | None = None,
        on_connected: ConnectedHandler | None = None,
        on_drained: Callable[[], None] | None = None,
    ) -> None:
        """Set the hooks whose owner exists only after the link (the relay takes the link first).

        Only the hooks given are replaced (`on_drained` is added, once). Call before `start()`: the
        hooks run on paho's thread.
        """
        if on_drained is not None:  # what it queues goes out in the same pass (mqtt_inline_writes)
            after_each_pass(self.client, self._wrap(writes_after(self.client, on_drained)))
        if on_message is not None:
            self._on_message = on_message
        if on_published is not None:
            self._on_published = on_published
        if on_connected is not None:
            self._on_connected = on_connected

    def start(self) -> None:
        """Connect in the background; reconnects by itself until `stop()`."""
        self._set_state("reconnecting", "connecting")
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            self.settings.keepalive_s,
            **connect_options(self.settings, self.receive_maximum),
        )
        self.client.loop_start()
        self._watchdog = threading.Thread(target=self._watch, name=f"mqtt-watchdog-{self.client_id}")
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop(self) -> None:
        """Say offline (retained), disconnect cleanly and stop the network thread."""
        self._stopping.set()
        try:
            if self.availability_topic and self.connected:
                info = self.client.publish(
                    self.availability_topic, self._availability_message("offline"), qos=1, retain=True
                )
                info.wait_for_publish(timeout=2)
        except (RuntimeError, ValueError, OSError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._watchdog:
            self._watchdog.join(timeout=5)
        self._set_state("offline", "stopped")

    def unread(self) -> bool:
        """More bytes wait in the socket: paho's next pass reads them (on its thread)."""
        return unread(self.client)

    @property
    def subscribed(self) -> bool:
        """Connected and every subscription of this connection answered by the broker."""
        return self.connected and not self._pending_subscriptions

    @property
    def connected(self) -> bool:
        return self._state.state == "connected"

    def state(self) -> LinkState:
        with self._state_lock:
            return self._state

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Hand one message to paho; returns its mid (the broker's answer arrives in on_published).

        While the link is down a QoS 1 message waits in paho and goes out after the reconnect; only
        a full queue (`max_queued`) refuses it, which is counted and logged.
        """
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.publish_refused += 1
            log.warning(
                "publish to %s refused by paho: %s", escape_external(topic), mqtt.error_string(info.rc)
            )
        return info.mid

    def ack(self, mid: int, qos: int, generation: int | None = None) -> None:
        """Acknowledge an inbound message after its commit; not if it came on an earlier
        connection (the broker redelivers it, the dedupe key absorbs that; mqtt_acks.py)."""
        self.acks.ack(self.client, mid, qos, generation)

    @property
    def generation(self) -> int:  # connections the broker accepted
        return self.acks.generation

    # -- state and watchdog ------------------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        with self._state_lock:
            if state != self._state.state or detail != self._state.detail:
                since = self._state.since if state == self._state.state else self.clock()
                self._state = LinkState(state, since, detail)
                if state != "connected" or detail:
                    log.info("MQTT link %s: %s", state, escape_external(detail, 120))

    def _terminal_availability(self, state: str) -> bytes:
        at, beat = self.clock(), self.settings.heartbeat_s
        return availability_payload(state, self.client_id, self.session_id, at, beat)

    def _watch(self) -> None:
        """Is paho's thread alive, is the link silent, is a heartbeat due? (woken when one may be)"""
        beat_s = self.settings.heartbeat_s
        next_beat = time.monotonic() + beat_s
        silent_limit = 2 * self.settings.keepalive_s + 1
        while not watch_wait(self.client, self._stopping, next_beat, silent_limit, self.last_packet,
                             connected=self.connected, most_s=beat_s):  # fmt: skip
            try:
                thread = getattr(self.client, "_thread", None)
                if (thread is None or not thread.is_alive()) and not self._stopping.is_set():
                    self._set_state("offline", "network thread died; restarting it")
                    self.client._thread = None
                    self.client.loop_start()
                    continue
                if not self.connected:
                    continue
                now = time.monotonic()
                if now - float(getattr(self.client, "_last_bytes_received", self.last_packet)) > silent_limit:
                    # Half-open: nothing heard for 2 x keepalive. paho would notice at 1.5 x keepalive
                    # only if its thread is healthy; drop the socket so it reconnects either way.
                    self._set_state("offline", "link silent (half-open?)")
                    sock = self.client.socket()
                    if isinstance(sock, socket.socket):
                        sock.shutdown(socket.SHUT_RDWR)
                    continue
                if self.availability_topic and now >= next_beat:
                    next_beat = now + beat_s
                    beat = self._availability_message("online")
                    self.client.publish(self.availability_topic, beat, qos=1, retain=True)
            except Exception:
                log.exception("MQTT watchdog check failed")
