"""Serial goal: unplug/replug a device 5 times (CI) / 50 (soak); the bridge never exits, and open file
descriptors and memory stay flat.

A real `Bridge` reads a `DeviceSimulator` on a real pty behind a stable symlink (what
/dev/serial/by-id is across a real replug) and publishes to a real mosquitto. Each round pulls the
plug (both pty ends close), waits until the bridge has reported the device offline, plugs it back in
(a new pty behind the same link), waits until it is online again, and then proves the link carries
events: a button press and a bin frame sent after the replug must both reach MQTT, by their ids.

Figures are taken once the link has carried its first events (so paho's socket, the outbox's SQLite
file and its -wal/-shm are all open) and again after the last round, with the device online in both.
`run_replugs` asserts the goals itself, so `python -m tests.faults.soak --only serial` (50 replugs)
checks exactly what the CI test checks.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from firmware_bridge.framing import Frame, FrameDecoder
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.topics import LineTopics
from tests.support.mosquitto import running_mosquitto
from tests.support.mqtt_lines import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.pty]

TOPICS = LineTopics("plant1", "L1")
CI_REPLUGS = 5
SOAK_REPLUGS = 50
RSS_GROWTH_LIMIT_KB = 16 * 1024
"""Generous on purpose: the interpreter's allocator keeps freed arenas, so RSS is not exact. A leak of
one pyserial port object, thread or buffer per replug would still pass 5 rounds here, which is why the
file-descriptor count (exact) is the sharp check and the 50-round soak the one for slow growth."""
STEP_TIMEOUT_S = 20.0
"""Bound of every wait (never a blind sleep); generous for a loaded 2-core CI machine."""


def open_fds() -> int:
    """Open descriptors of this process, after a collection: a port object that is unreachable but not
    yet collected is not a leak, and counting it would make the figure depend on GC timing."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    """Resident set size of this process (the bridge runs in it) from /proc/self/statm."""
    gc.collect()
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


class Signals:
    """Device availability and signal messages from the broker, as the terminal would see them."""

    def __init__(self, port: int) -> None:
        self.ids: set[str] = set()
        self.availability: list[str] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="replug-observer",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(
            [(TOPICS.device_signal("D1"), 1), (TOPICS.device_availability("D1"), 1)]
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.client.is_connected, STEP_TIMEOUT_S, "observer connected")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        with self._lock:
            if msg.topic == TOPICS.device_signal("D1"):
                self.ids.add(str(payload.get("id")))
            else:
                self.availability.append(str(payload.get("state")))

    def state_changes(self) -> int:
        with self._lock:
            return len(self.availability)

    def became(self, state: str, after: int) -> bool:
        with self._lock:
            return state in self.availability[after:]

    def has(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self.ids

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _sent(data: bytes) -> str:
    """The MQTT id (device:boot:seq) the bridge gives the event in the frame just sent."""
    [frame] = FrameDecoder().feed(data)
    assert isinstance(frame, Frame), frame
    return f"{frame.device}:{frame.boot}:{frame.seq}"


def _events_get_through(sim: DeviceSimulator, signals: Signals, round_: int) -> None:
    press = _sent(sim.press("call", "S1"))
    bin_ = _sent(sim.bin(f"B{round_ % 10}", "empty"))
    for event_id in (press, bin_):
        wait_for(lambda e=event_id: signals.has(e), STEP_TIMEOUT_S, f"event {event_id} (round {round_})")


def run_replugs(tmp: Path, replugs: int) -> dict[str, object]:
    """Unplug and replug one device `replugs` times under a running bridge; assert the serial goal.

    Returns:
        The figures for docs/RELIABILITY.md (fd counts, RSS in KiB, events delivered, wall time).
    """
    start = time.monotonic()
    with running_mosquitto(tmp / "broker") as broker:
        signals = Signals(broker.port)
        sim = DeviceSimulator("D1", link=tmp / "ttyD1")
        sim.open()
        sim.hello()
        sim.start_heartbeat(0.1)
        config = BridgeConfig(
            site="plant1", line="L1", bridge_id="br1", state_dir=str(tmp / "state"),
            broker=MqttSettings(port=broker.port, keepalive_s=5, reconnect_max_s=1),
            limits=LimitsConfig(heartbeat_timeout_s=1.0, serial_retry_max_s=0.2, bridge_heartbeat_s=0.5),
            devices=(DeviceConfig(id="D1", port=str(tmp / "ttyD1")),),
        )  # fmt: skip
        bridge = Bridge(config)
        bridge.start()
        try:
            wait_for(lambda: signals.became("online", 0), STEP_TIMEOUT_S, "device online at start")
            _events_get_through(sim, signals, 0)
            fds_before, rss_before = open_fds(), rss_kb()
            fds_seen: list[int] = []
            for round_ in range(1, replugs + 1):
                mark = signals.state_changes()
                sim.close()
                wait_for(
                    lambda m=mark: signals.became("offline", m), STEP_TIMEOUT_S, f"offline, round {round_}"
                )
                mark = signals.state_changes()
                sim.reopen()
                wait_for(
                    lambda m=mark: signals.became("online", m), STEP_TIMEOUT_S, f"online, round {round_}"
                )
                _events_get_through(sim, signals, round_)
                assert bridge.alive, f"a bridge thread died in round {round_}"
                fds_seen.append(open_fds())
            fds_after, rss_after = open_fds(), rss_kb()
            losses = bridge.links["D1"].losses
        finally:
            bridge.stop()
            sim.stop()
            signals.close()
    figures: dict[str, object] = {
        "replugs": replugs,
        "serial_losses_seen": losses,
        "events_delivered": len(signals.ids),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "fds_max": max(fds_seen),
        "rss_before_kb": rss_before,
        "rss_after_kb": rss_after,
        "rss_growth_kb": rss_after - rss_before,
        "wall_s": round(time.monotonic() - start, 1),
    }
    assert losses == replugs, f"the bridge saw {losses} unplugs of {replugs}: {figures}"
    assert len(signals.ids) == 2 * (replugs + 1), f"events missing: {figures}"
    # Exact: every replug opens one new port; a descriptor kept per replug would show here at once.
    assert fds_after == fds_before and max(fds_seen) == fds_before, f"descriptors leak: {fds_seen} {figures}"
    assert rss_after - rss_before <= RSS_GROWTH_LIMIT_KB, f"memory grows across replugs: {figures}"
    return figures


def test_replugs_leave_the_bridge_running_with_flat_fds_and_memory(tmp_path: Path) -> None:
    figures = run_replugs(tmp_path, CI_REPLUGS)
    assert figures["replugs"] == CI_REPLUGS
