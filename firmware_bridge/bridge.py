"""Wires serial links, framing, device state and MQTT together: the bridge process itself.

The broker link is the terminal's own `MqttLink` (kanban_terminal.adapters.mqtt_client): MQTT 5, a
persistent session, TCP_NODELAY, TLS, the retained availability with its last will and heartbeat.
Threads: one reader per serial port, paho's network thread with the link's watchdog, and a
housekeeping thread for device heartbeat timeouts, the outbox and the lamp refresh. They meet under
one lock around device state, so a frame and a port loss of the same device are never interleaved.
Nothing here decides what a signal *means*: the terminal maps bins to cards and deduplicates by
(device, boot, seq); the bridge only forwards checked frames once and reports who is online.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from firmware_bridge.config import BridgeConfig, DeviceConfig
from firmware_bridge.device import DeviceState, Lights, TokenBucket, Verdict
from firmware_bridge.framing import SEQ_MODULO, Frame, FrameDecoder, FrameError, FrameType, encode
from firmware_bridge.messages import (
    SIGNAL_TYPES,
    iso,
    parse_command,
    parse_line_state,
    signal_payload,
    utc_now,
)
from firmware_bridge.outbox import Outbox
from firmware_bridge.serial_link import SerialLink
from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.domain.text import escape_bytes, escape_external
from kanban_terminal.topics import LineTopics, bridge_availability

log = logging.getLogger(__name__)

_HOUSEKEEPING_S = 0.2
_RECONNECTED = -1  # not a paho message id: "the link reconnected", on the answers queue
_OVER_BUDGET_PAUSE_S = 0.25  # a device over its byte budget is not read for this long
_OUTBOX_WINDOW = 50  # events handed to paho at once; the rest wait on disk, not in paho's RAM
_MAX_QUEUED = 10_000  # availability messages paho keeps while the broker is away, at most


class Bridge:
    """The running bridge; `start`, `stop`, and counters for tests and the health log."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        instance: str | None = None,
    ) -> None:
        self.config = config
        self.topics = LineTopics(config.site, config.line)
        self.session = uuid.uuid4().hex
        self.host_boot = secrets.token_hex(4).upper()  # boot id of host -> device frames
        self.counts: Counter[str] = Counter()
        self._clock, self._monotonic = clock, monotonic
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._by_id = {d.id: d for d in config.devices}
        limits = config.limits
        self.devices = {
            d.id: DeviceState(d.id, limits.heartbeat_timeout_s, TokenBucket(limits.rate_per_s, limits.burst))
            for d in config.devices
        }
        self._decoders = {d.id: FrameDecoder() for d in config.devices}
        self._byte_budgets = {
            d.id: TokenBucket(limits.bytes_per_s, limits.burst_bytes) for d in config.devices
        }
        self._host_seq = dict.fromkeys(self._by_id, 0)
        self._lights: dict[str, Lights] = {}  # last lamp state sent per device, re-sent after a reconnect
        self.links = {d.id: self._make_link(d) for d in config.devices}
        self._commands = {self.topics.device_command(d.id): d.id for d in config.devices}
        self._bridge_topic = bridge_availability(config.site, config.bridge_id)
        self.mqtt = MqttLink(
            # The availability heartbeat keeps the bridge's own interval (it also paces the lamps).
            config.broker.model_copy(update={"heartbeat_s": limits.bridge_heartbeat_s}),
            # `--instance` (KANBAN_INSTANCE) keeps two bridges run from one config off each other's session.
            f"bridge-{config.site}-{config.bridge_id}" + (f"-{instance}" if instance else ""),
            subscriptions=[(topic, 1) for topic in (self.topics.line_state, *self._commands)],
            on_message=self._on_mqtt,
            on_connected=self._on_mqtt_connected,
            on_published=self._on_published,
            availability_topic=self._bridge_topic,
            availability_message=self._bridge_payload,
            clock=clock,
            max_queued=_MAX_QUEUED,
        )
        self.mqtt.witness.session_id = self.session  # the availability carries the bridge's session
        self.outbox = Outbox(Path(config.state_dir) / "outbox.db" if config.state_dir else None)
        if config.state_dir is None:
            log.warning("no state_dir configured: device events are kept in memory only")
        self._inflight: dict[int, int] = {}
        """paho message id -> outbox id of events handed to the broker and not yet answered."""
        self._out_lock = threading.Lock()
        self._answers: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()
        self._housekeeper = threading.Thread(
            target=self._housekeeping, name="bridge-housekeeping", daemon=True
        )

    def _make_link(self, device: DeviceConfig) -> SerialLink:
        return SerialLink(
            device.port,
            device.baud,
            on_data=lambda data: self._on_serial(device.id, data),
            on_state=lambda up, detail: self._on_port(device.id, up, detail),
            retry_max=self.config.limits.serial_retry_max_s,
            name=device.id,
        )

    def start(self) -> None:
        self.mqtt.start()
        for link in self.links.values():
            link.start()
        self._housekeeper.start()

    def stop(self) -> None:
        self._stop.set()
        for link in self.links.values():
            link.stop()
        self._housekeeper.join(2.0)
        self.mqtt.stop()  # says "offline" (retained) first, so no last will follows
        self.outbox.close()

    @property
    def alive(self) -> bool:
        """True while every worker thread of the bridge runs."""
        return self._housekeeper.is_alive() and all(link.alive for link in self.links.values())

    def error_counts(self) -> Counter[str]:
        """Framing errors of all devices, by class."""
        total: Counter[str] = Counter()
        for decoder in self._decoders.values():
            total.update(decoder.errors)
        return total

    # --- serial side ------------------------------------------------------------------------------

    def _on_serial(self, device_id: str, data: bytes) -> None:
        decoder = self._decoders[device_id]
        allowed = self._byte_budgets[device_id].take_up_to(len(data), self._monotonic())
        if allowed < len(data):
            # Over its byte budget: dropped unread, before any decoding, so a device spewing noise
            # costs the others next to nothing (S8). Counted and logged like the frame limit.
            state = self.devices[device_id]
            state.counts["bytes_dropped"] += len(data) - allowed
            self.counts["bytes_dropped"] += len(data) - allowed
            data = data[:allowed]
            decoder.discard()
            if state.counts["byte_limited"] % 1000 == 0:
                log.warning("%s: over %g bytes/s, input dropped", device_id, self.config.limits.bytes_per_s)
            state.counts["byte_limited"] += 1
            # And this device's reader (its own thread) rests: reading and discarding at full speed
            # would still take CPU from the others; unread, the flood backs up in the port's buffer.
            self._stop.wait(_OVER_BUDGET_PAUSE_S)
        # Decoded outside the lock: each device has its own reader thread and its own decoder, and
        # a noisy device's garbage must not hold up the frames of the others.
        items = decoder.feed(data) if data else []
        if not items:
            return
        with self._lock:
            for item in items:
                if isinstance(item, FrameError):
                    self._log_frame_error(device_id, item)
                else:
                    self._on_frame(device_id, item)

    def _log_frame_error(self, device_id: str, error: FrameError) -> None:
        # Throttled: a device spitting garbage must not fill the disk with log lines.
        n = self._decoders[device_id].errors[error.kind.value]
        if n <= 10 or n % 1000 == 0:
            log.warning(
                "%s: %s frame #%d: %s %s", device_id, error.kind, n, error.detail, escape_bytes(error.raw)
            )

    def _on_frame(self, device_id: str, frame: Frame) -> None:
        state = self.devices[device_id]
        verdict = state.judge(frame, self._monotonic())
        if verdict is Verdict.DUPLICATE and frame.type in SIGNAL_TYPES:
            self._send(device_id, FrameType.ACK, str(frame.seq))  # our ACK was lost; the device retries
        if verdict is not Verdict.ACCEPT:
            self.counts[verdict.value] += 1
            if state.counts[verdict.value] <= 10:
                log.warning("%s: %s frame %s,%s dropped", device_id, verdict, frame.boot, frame.seq)
            return
        if state.mark_online():
            self._publish_device(device_id)
        if frame.type is FrameType.HELLO:
            log.info("%s: boot %s firmware %s", device_id, frame.boot, escape_external(frame.args[0]))
            self._resend_lights(device_id)
        elif frame.type in SIGNAL_TYPES:
            payload = json.dumps(signal_payload(frame, self._clock()), separators=(",", ":")).encode()
            try:
                self.outbox.add(self.topics.device_signal(device_id), payload)
            except sqlite3.Error as exc:  # not stored: no ACK, so the device sends it again
                log.error(
                    "%s: event %s,%s not stored (%s); not acknowledged", device_id, frame.boot, frame.seq, exc
                )
                return
            # ACK only what is on disk: from here the event survives a broker outage and a crash.
            self.counts["signals"] += 1
            self._send(device_id, FrameType.ACK, str(frame.seq))
            self._drain()

    def _on_port(self, device_id: str, connected: bool, detail: str) -> None:
        with self._lock:
            # A frame cut by the loss must not be glued to the first bytes after the reopen.
            self._decoders[device_id].feed(b"\n")
            log.info("%s: port %s (%s)", device_id, "open" if connected else "lost", detail)
            if connected:
                self._resend_lights(device_id)
            elif self.devices[device_id].mark_offline():
                self._publish_device(device_id)

    def _send(self, device_id: str, type_: FrameType, *args: str) -> bool:
        seq = self._host_seq[device_id]
        self._host_seq[device_id] = (seq + 1) % SEQ_MODULO
        return self.links[device_id].send(encode(Frame(device_id, type_, self.host_boot, seq, args)))

    def _set_lights(self, device_id: str, lights: Lights) -> None:
        self._lights[device_id] = lights
        self._send(device_id, FrameType.LIGHT, lights.red, lights.amber, lights.green)
        self._send(device_id, FrameType.BUZZ, "on" if lights.buzzer else "off")

    def _resend_lights(self, device_id: str) -> None:
        if device_id in self._lights and self._by_id[device_id].has_light:
            self._set_lights(device_id, self._lights[device_id])

    def _housekeeping(self) -> None:
        last_beat = self._monotonic()
        while not self._stop.wait(_HOUSEKEEPING_S):
            try:
                now = self._monotonic()
                with self._lock:
                    for device_id, state in self.devices.items():
                        if state.timed_out(now) and state.mark_offline():
                            log.warning(
                                "%s: silent for %.1f s, offline", device_id, now - (state.last_seen or now)
                            )
                            self._publish_device(device_id)
                self._drain()
                if now - last_beat >= self.config.limits.bridge_heartbeat_s and self.mqtt.connected:
                    last_beat = now
                    with self._lock:
                        # Refreshing the lamps is the host's heartbeat (the link sends the bridge's):
                        # firmware that hears nothing for 3 periods stops claiming a line state it
                        # no longer knows, and without the broker the bridge no longer knows it either.
                        for device_id in self.devices:
                            self._resend_lights(device_id)
            except Exception:  # the housekeeper must outlive any bug it trips over
                log.exception("housekeeping failed")

    # --- MQTT side --------------------------------------------------------------------------------

    def _bridge_payload(self, state: str) -> bytes:
        """The retained bridge availability; the link sends it (will, connect, heartbeat, stop)."""
        payload: dict[str, object] = {
            "v": 1,
            "bridge": self.config.bridge_id,
            "state": state,
            "session": self.session,
        }
        if state == "online":
            payload["heartbeat_at"] = iso(self._clock())
            payload["heartbeat_s"] = self.config.limits.bridge_heartbeat_s
            payload["devices"] = sorted(self._by_id)
        return json.dumps(payload, separators=(",", ":")).encode()

    def _publish_device(self, device_id: str) -> None:
        state = self.devices[device_id]
        payload = {
            "v": 1,
            "device": device_id,
            "state": "online" if state.online else "offline",
            "boot": state.boot or "",
            "bridge": self.config.bridge_id,
            "at": iso(self._clock()),
        }
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.mqtt.publish(self.topics.device_availability(device_id), data, retain=True)

    def _drain(self) -> None:
        """Settle the broker's answers, then hand the oldest stored events to it, a window at a time."""
        with self._out_lock:
            while True:
                try:
                    mid, ok = self._answers.get_nowait()
                except queue.Empty:
                    break
                window = self.config.limits.replay_after_reconnect_s
                if mid == _RECONNECTED:
                    self._inflight.clear()
                    replayed = self.outbox.replay_recent(window)
                    if replayed:
                        log.info(
                            "broker reconnected: %d event(s) it acknowledged lately sent again", replayed
                        )
                    continue
                event_id = self._inflight.pop(mid, None)
                if event_id is not None and ok:
                    self.outbox.done(event_id, self._clock().timestamp(), window)
                # A refused event stays in the outbox and goes out again below or on a later drain.
            if not self.mqtt.connected:
                return
            free = _OUTBOX_WINDOW - len(self._inflight)
            if free <= 0:
                return
            for event_id, topic, payload in self.outbox.pending(free, set(self._inflight.values())):
                self._inflight[self.mqtt.publish(topic, payload)] = event_id

    def _on_published(self, mid: int, ok: bool, reason: str) -> None:
        """paho's thread: the broker answered one publish. Only hand it over: taking our lock here
        while `_drain` holds it and waits inside paho's publish would deadlock the two threads."""
        if not ok:
            self.counts["publish_refused"] += 1
            log.warning("broker refused publish mid=%s: %s", mid, escape_external(reason))
        self._answers.put((mid, ok))

    def _on_mqtt_connected(self, session_present: bool) -> None:
        # Answers to publishes of the old connection may never come: publish what is stored again
        # (the terminal drops a repeat by its (device, boot, seq)). Queued, not locked: paho's thread.
        # The link has already said "online" for the bridge.
        self._answers.put((_RECONNECTED, False))
        with self._lock:
            for device_id in self.devices:
                self._publish_device(device_id)

    def _on_mqtt(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        try:
            self._handle_mqtt(topic, payload)
        finally:  # handled (or refused) on this thread: nothing is left to lose by acknowledging
            self.mqtt.ack(mid, qos, generation)

    def _handle_mqtt(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a retained message being cleared
        with self._lock:
            if topic == self.topics.line_state:
                result = parse_line_state(payload)
                if isinstance(result, Lights):
                    for device_id, device in self._by_id.items():
                        if device.has_light:
                            self._set_lights(device_id, result)
                    return
            elif topic in self._commands:
                device_id = self._commands[topic]
                command = parse_command(payload)
                if isinstance(command, Lights):
                    self._set_lights(device_id, command)
                    return
                if isinstance(command, bool):
                    self._lights[device_id] = replace(self._lights.get(device_id, Lights()), buzzer=command)
                    self._send(device_id, FrameType.BUZZ, "on" if command else "off")
                    return
                result = command
            else:
                result = "unexpected topic"
            self.counts["mqtt_rejected"] += 1
            log.warning(
                "ignored MQTT message on %s: %s: %s",
                escape_external(topic),
                result,
                escape_bytes(payload, 120),
            )
