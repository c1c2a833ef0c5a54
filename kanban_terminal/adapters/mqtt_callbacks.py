"""paho's callbacks for the MQTT link (adapters/mqtt_client.py): each runs on paho's network thread.

Split from adapters/mqtt_client.py, whose `MqttLink` is the link's public face (settings, hooks,
start and stop, publish and ack, its state and the watchdog); this holds what paho calls: the
connect, disconnect, subscribe, message and publish callbacks, each wrapped by `_wrap` so that an
exception cannot kill paho's thread (reliability finding 5). `MqttLink` inherits it, so callers still
see one object. They only hand work over to the owner's hooks; none may block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from kanban_terminal.adapters.mqtt_acks import AckGate
from kanban_terminal.adapters.mqtt_session import CLOSED_BEFORE_ACCEPT, set_nodelay
from kanban_terminal.adapters.takeover import SessionWitness
from kanban_terminal.domain.text import escape_external
from kanban_terminal.mqtt_settings import MqttSettings

log = logging.getLogger("kanban_terminal.adapters.mqtt_client")  # the link's log, as before the split


class PahoCallbacks:
    """`MqttLink`'s callbacks for paho's thread. The state is `MqttLink`'s (set and described in its
    `__init__`); these annotations only tell the type checker what the callbacks use."""

    settings: MqttSettings
    client_id: str
    subscriptions: list[tuple[str, int]]
    availability_topic: str | None
    witness: SessionWitness
    acks: AckGate
    callback_errors: int
    last_error: str
    last_packet: float
    last_answer_at: float | None
    answered_before_loss: float | None
    _on_message: Callable[[str, bytes, int, int, int], None] | None
    _on_published: Callable[[int, bool, str], None] | None
    _on_connected: Callable[[bool], None] | None
    _availability_message: Callable[[str], bytes]
    _stopping: threading.Event
    _session_up: bool
    _pending_subscriptions: dict[int, str]
    _connect_error: str

    if TYPE_CHECKING:  # `MqttLink`'s (mqtt_client.py)

        def _set_state(self, state: str, detail: str = "") -> None: ...
        def ack(self, mid: int, qos: int, generation: int | None = None) -> None: ...
        @property
        def generation(self) -> int: ...

    # -- callbacks (paho's thread; each wrapped) ---------------------------------------------------

    def _wrap(self, fn: Callable[..., None]) -> Callable[..., None]:
        def wrapped(*args: Any) -> None:
            try:
                self.last_packet = time.monotonic()
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - nothing may escape into paho's thread
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                self.callback_errors += 1
                log.exception("MQTT callback %s failed; the link carries on", fn.__name__)

        return wrapped

    def _handle_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        set_nodelay(sock)

    def _handle_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._failed(f"broker refused the connection: {reason}")
            self._set_state("offline", f"broker refused: {reason}")
            return
        session_present = bool(getattr(flags, "session_present", False))
        self.acks.connected()
        self._session_up = True
        self.last_error = ""
        self._set_state("connected", "" if session_present else "new session")
        # Subscribe every time: a broker that lost our session (restart without persistence) must
        # not silently stop sending us signals.
        self._pending_subscriptions.clear()
        for topic, qos in self.subscriptions:
            _rc, mid = client.subscribe(topic, qos)
            if mid is not None:
                self._pending_subscriptions[mid] = topic
        if self.availability_topic:
            client.publish(self.availability_topic, self._availability_message("online"), qos=1, retain=True)
        if self._on_connected:
            self._on_connected(session_present)

    def _handle_subscribe(self, client: mqtt.Client, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        # Until the broker grants a subscription, messages on it are not kept for us: a refused
        # one (an ACL) means a whole class of signals silently never arrives, so it is a warning.
        topic = self._pending_subscriptions.pop(mid, "?")
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.warning("MQTT broker refused the subscription to %s: %s", topic, ", ".join(refused))
        else:
            log.info("MQTT link subscribed to %s", topic)

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._failed(self._connect_error)
        self._set_state("reconnecting", self._connect_error)

    def _handle_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was_up, self._session_up = self._session_up, False
        if self._stopping.is_set():
            return
        if self.last_error.startswith("broker refused"):
            # paho follows a refused CONNACK with a disconnect "Protocol error" at once; the
            # refusal ("Not authorized") is the truth and must stay on the status bar (issue 7).
            return
        if not was_up and getattr(reason, "is_failure", False):
            why = CLOSED_BEFORE_ACCEPT.format(reason=reason)
            self._failed(why)
            self._set_state("reconnecting", why)
            return
        self.answered_before_loss = self.last_answer_at
        self.witness.after_disconnect(reason, self.settings.host, self.settings.port)
        self._set_state("reconnecting", f"link lost: {reason}")

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.availability_topic and self.witness.seen(bytes(msg.payload), msg.retain):
            return  # QoS 0: nothing to acknowledge
        if self._on_message is None:
            self.ack(msg.mid, msg.qos)
            return
        self._on_message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.last_answer_at = time.monotonic()
        # MQTT 5: a PUBACK code >= 0x80 refuses (0x87 not authorized, 0x97 quota); 0x10 succeeds.
        failed = bool(getattr(reason, "is_failure", False))  # paho calls all alike; 3.1.1 has no codes
        if self._on_published is not None:
            self._on_published(mid, not failed, str(reason))

    def _failed(self, why: str) -> None:
        if why != self.last_error:  # once per distinct reason: paho retries every few seconds
            log.warning(
                "MQTT link %s to %s:%s: %s",
                self.client_id, self.settings.host, self.settings.port, escape_external(why, 200),
            )  # fmt: skip
        self.last_error = why
