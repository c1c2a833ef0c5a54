"""The terminal's one MQTT connection (paho-mqtt 2.x), made to tell the truth about itself.

What paho does not do on its own, and this module adds (../shared/reference/reliability.md 2.3):

* MQTT 5 with `clean_start=False` and an explicit Session Expiry Interval: paho's defaults contradict
  each other (#877) and mosquitto does not persist a session created with clean_start=True (stack P4).
* `TCP_NODELAY` on every socket: without it Nagle plus delayed ACKs add ~40 ms per hop (stack P6, 9).
* Every callback wrapped: an exception in a callback kills paho's network thread while
  `is_connected()` keeps saying True (reliability finding 5). A watchdog notices a dead loop thread
  and a link that went silent (half-open), restarts or drops it, and says so in the link state.
* Manual acknowledgement of inbound QoS 1 (`manual_ack=True`): the caller acks after its commit.
* Retained availability with a last will, a per-connection session id and a heartbeat, so a stale
  retained "online" left behind by a broker crash can be recognised by its age (finding 7).
* The same link over MQTT 3.1.1 for amqtt, the demo's pure-Python fallback broker.

It is not a queue: paho keeps its session in memory only. Durable state lives in SQLite; the relay
hands paho at most a small window of it.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from kanban_terminal.adapters.wire import AvailabilityMessage
from kanban_terminal.config import PLAIN_MQTT_RULE, MqttConfigError, MqttSettings, is_loopback_host
from kanban_terminal.domain.text import escape_external

log = logging.getLogger(__name__)

MqttMessage = mqtt.MQTTMessage
MessageHandler = Callable[[str, bytes, int, int, int], None]
"""handler(topic, payload, mid, qos, generation): on paho's thread; must only hand it over."""
PublishedHandler = Callable[[int, bool, str], None]
"""handler(mid, ok, reason): a QoS 1 publish was answered by the broker."""


def parse_mqtt_url(url: str, base: MqttSettings | None = None) -> MqttSettings:
    """Turn `mqtt://host:1883` or `mqtts://user@host:8883` into settings (for `--mqtt`).

    Settings not in the URL (CA file, keepalive, ...) come from `base`. A password in the URL is
    refused: it would end up in shell history and process lists; use KANBAN_MQTT_PASSWORD.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # "Invalid IPv6 URL" for an unclosed [
        raise MqttConfigError(f"cannot read broker URL {url!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttConfigError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise MqttConfigError(f"broker URL has no host: {url!r}")
    if parts.password is not None:
        raise MqttConfigError("do not put the password in the URL; set KANBAN_MQTT_PASSWORD instead")
    if parts.path not in ("", "/") or parts.query:
        raise MqttConfigError(f"broker URL must be scheme://[user@]host[:port], got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise MqttConfigError(f"bad port in broker URL {url!r}") from None
    tls = parts.scheme == "mqtts"
    if not tls and not is_loopback_host(parts.hostname):
        # Caught here, not only by MqttSettings, so the message speaks of the URL the person typed.
        host = escape_external(parts.hostname, 80)
        host = f"[{host}]" if ":" in host else host
        raise MqttConfigError(
            f"plain mqtt:// to {host} refused: {PLAIN_MQTT_RULE}; use mqtts://{host}:8883 (TLS)"
        )
    values: dict[str, Any] = (base.model_dump() if base else {}) | {
        "host": parts.hostname,
        "port": (8883 if tls else 1883) if port is None else port,
        "tls": tls,
    }
    if parts.username:
        values["username"] = unquote(parts.username)
    try:
        return MqttSettings.model_validate(values)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MqttConfigError(f"broker URL {url!r} cannot be used: {reasons}") from None


def read_password(settings: MqttSettings, env: Mapping[str, str] | None = None) -> str | None:
    """The broker password from the environment or a secrets file (refused if others can read it)."""
    source: Mapping[str, str] = os.environ if env is None else env
    if settings.password_env and source.get(settings.password_env):
        return source[settings.password_env]
    if settings.password_file:
        path = Path(settings.password_file)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MqttConfigError(f"{path} is readable by others: chmod 600 it")
        return path.read_text(encoding="utf-8").strip()
    return None


def describe_connect_error(exc: OSError) -> str:
    """Why a connection attempt failed, in words that tell the usual TLS mistakes apart."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: broker certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "broker unreachable (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"broker unreachable (cannot resolve host: {exc.strerror})"
    return f"broker unreachable ({escape_external(exc.strerror or type(exc).__name__, 60)})"


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LinkState:
    """What the status bar shows about the broker link."""

    state: str
    """connected, reconnecting or offline."""
    since: datetime
    detail: str = ""


class MqttLink:
    """One paho client, started in the background, that keeps reconnecting until stopped."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        subscriptions: list[tuple[str, int]] = (),  # type: ignore[assignment]
        on_message: MessageHandler | None = None,
        on_published: PublishedHandler | None = None,
        on_connected: Callable[[bool], None] | None = None,
        availability_topic: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_inflight: int = 20,
        receive_maximum: int | None = None,
    ):
        self.settings = settings
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_published = on_published
        self._on_connected = on_connected
        self.availability_topic = availability_topic
        self.receive_maximum = receive_maximum
        self.clock = clock
        self.v5 = settings.protocol == "5"
        self.session_id = uuid.uuid4().hex[:12]
        """New for every process start: tells a consumer which availability belongs to which run."""
        self._state = LinkState("offline", clock(), "not started")
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.callback_errors = 0
        self.last_packet = time.monotonic()
        self.last_answer_at: float | None = None
        """Monotonic time of the broker's newest PUBACK, of any publish."""
        self.answered_before_loss: float | None = None
        """`last_answer_at` when the link was last lost: a broker that crashed lost at most what it
        acknowledged shortly before this (between its periodic saves), however long it stayed down."""
        self.generation = 0
        """Counts connections: an inbound mid is only acknowledged on the connection it came in on,
        because after a reconnect without a session the broker may reuse it for another message."""
        if self.v5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        self.client = client
        client.max_inflight_messages_set(max_inflight)
        # paho's memory queue is not our queue: the relay never gives it more than the window.
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, settings.reconnect_max_s)
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
            try:
                return paho_reconnect()
            except OSError as exc:
                self._connect_error = describe_connect_error(exc)
                raise

        client.reconnect = reconnect  # type: ignore[method-assign]
        if settings.username:
            client.username_pw_set(settings.username, read_password(settings))
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if settings.cert_file:
                context.load_cert_chain(settings.cert_file, settings.key_file)
            client.tls_set_context(context)
        if availability_topic:
            will_props = None
            if self.v5:
                will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
                will_props.WillDelayInterval = 0
            client.will_set(
                availability_topic, self._availability("offline"), qos=1, retain=True, properties=will_props
            )

    # -- public -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; reconnects by itself until `stop()`."""
        props = None
        kwargs: dict[str, Any] = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.session_expiry_s
            if self.receive_maximum:
                # MQTT 5 flow control: the broker keeps at most this many unacknowledged QoS 1
                # messages in flight to us and holds the rest. paho's default (65,535) let mosquitto
                # push a whole 20,000-signal burst into our memory (serve peak RSS 216 MB).
                props.ReceiveMaximum = self.receive_maximum
            kwargs = {"clean_start": False, "properties": props}
        self._set_state("reconnecting", "connecting")
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s, **kwargs)
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
                    self.availability_topic, self._availability("offline"), qos=1, retain=True
                )
                info.wait_for_publish(timeout=2)
        except (RuntimeError, ValueError, OSError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._watchdog:
            self._watchdog.join(timeout=5)
        self._set_state("offline", "stopped")

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
        """Hand one message to paho; returns its mid (the broker's answer arrives in on_published)."""
        return self.client.publish(topic, payload, qos=qos, retain=retain).mid

    def ack(self, mid: int, qos: int, generation: int | None = None) -> None:
        """Acknowledge an inbound message to the broker: call only after it is committed.

        A message from an earlier connection is not acknowledged: the broker redelivers it (the
        dedupe key absorbs that), whereas its mid may now belong to a message not yet committed.
        """
        if qos > 0 and (generation is None or generation == self.generation):
            self.client.ack(mid, qos)

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
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _handle_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._set_state("offline", f"broker refused: {reason}")
            return
        session_present = bool(getattr(flags, "session_present", False))
        self.generation += 1
        self._set_state("connected", "" if session_present else "new session")
        # Subscribe every time: a broker that lost our session (restart without persistence) must
        # not silently stop sending us signals.
        self._pending_subscriptions.clear()
        for topic, qos in self.subscriptions:
            _rc, mid = client.subscribe(topic, qos)
            if mid is not None:
                self._pending_subscriptions[mid] = topic
        if self.availability_topic:
            client.publish(self.availability_topic, self._availability("online"), qos=1, retain=True)
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
        self._set_state("reconnecting", self._connect_error)

    def _handle_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._stopping.is_set():
            return
        with self._state_lock:
            refused = self._state.detail.startswith("broker refused")
        if refused:
            # paho follows a refused CONNACK with a disconnect "Protocol error" at once; the
            # refusal ("Not authorized") is the truth and must stay on the status bar (issue 7).
            return
        self.answered_before_loss = self.last_answer_at
        self._set_state("reconnecting", f"link lost: {reason}")

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message is None:
            self.ack(msg.mid, msg.qos)
            return
        self._on_message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.last_answer_at = time.monotonic()
        if self._on_published is None:
            return
        # MQTT 5: a PUBACK >= 0x80 is a refusal (0x87 not authorized, 0x97 quota) although paho
        # calls this the same way. 0x10 "no matching subscribers" is a success. 3.1.1 has no codes.
        failed = bool(getattr(reason, "is_failure", False))
        self._on_published(mid, not failed, str(reason))

    # -- state and watchdog ------------------------------------------------------------------------

    def _set_state(self, state: str, detail: str = "") -> None:
        with self._state_lock:
            if state != self._state.state or detail != self._state.detail:
                since = self._state.since if state == self._state.state else self.clock()
                self._state = LinkState(state, since, detail)
                if state != "connected" or detail:
                    log.info("MQTT link %s: %s", state, escape_external(detail, 120))

    def _availability(self, state: str) -> bytes:
        return AvailabilityMessage.model_validate(
            {
                "v": 1,
                "state": state,
                "terminal": self.client_id,
                "session": self.session_id,
                "at": utc_text(self.clock()),
                "heartbeat_s": self.settings.heartbeat_s,
            }
        ).model_dump_json().encode()

    def _watch(self) -> None:
        """Every second: is paho's thread alive, is the link silent, is a heartbeat due?"""
        next_beat = time.monotonic() + self.settings.heartbeat_s
        silent_limit = 2 * self.settings.keepalive_s + 1
        while not self._stopping.wait(1.0):
            try:
                thread = getattr(self.client, "_thread", None)
                if thread is not None and not thread.is_alive() and not self._stopping.is_set():
                    self._set_state("offline", "network thread died; restarting it")
                    self.client._thread = None
                    self.client.loop_start()
                    continue
                if not self.connected:
                    continue
                now = time.monotonic()
                # paho stamps every byte it reads (PINGRESP included) with time.monotonic().
                last_in = float(getattr(self.client, "_last_bytes_received", self.last_packet))
                if now - last_in > silent_limit:
                    # Half-open: nothing heard for 2 x keepalive. paho would notice at 1.5 x keepalive
                    # only if its thread is healthy; drop the socket so it reconnects either way.
                    self._set_state("offline", "link silent (half-open?)")
                    sock = self.client.socket()
                    if isinstance(sock, socket.socket):
                        sock.shutdown(socket.SHUT_RDWR)
                    continue
                if self.availability_topic and now >= next_beat:
                    next_beat = now + self.settings.heartbeat_s
                    beat = self._availability("online")
                    self.client.publish(self.availability_topic, beat, qos=1, retain=True)
            except Exception:
                log.exception("MQTT watchdog check failed")
