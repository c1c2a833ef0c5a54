"""Simulator on a real pty <-> bridge <-> real mosquitto: signals, stack lights, unplug/replug, bad input."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from firmware_bridge.framing import FrameType
from firmware_bridge.outbox import Outbox
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.topics import LineTopics, bridge_availability
from tests.support.mosquitto import Mosquitto, running_mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.pty]

TOPICS = LineTopics("plant1", "L1")
DEADLINE = 5.0


def wait_until(condition: Callable[[], object], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


@dataclass
class Observer:
    """A plain MQTT client on the whole tree: what the terminal would see."""

    client: mqtt.Client
    messages: list[tuple[str, dict[str, object], bool]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait(
        self, topic: str, pred: Callable[[dict[str, object]], bool] = lambda p: True, after: int = 0
    ) -> dict[str, object]:
        deadline = time.monotonic() + DEADLINE
        with self.cond:
            while True:
                for t, payload, _ in self.messages[after:]:
                    if t == topic and pred(payload):
                        return payload
                left = deadline - time.monotonic()
                assert left > 0, f"no matching message on {topic}; got {self.messages[after:]}"
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.messages)

    def on(self, topic: str, after: int = 0) -> list[dict[str, object]]:
        with self.cond:
            return [p for t, p, _ in self.messages[after:] if t == topic]


@contextlib.contextmanager
def observing(port: int) -> Iterator[Observer]:
    """A subscriber with a persistent session, as the terminal has."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="observer",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    obs = Observer(client)

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        try:  # the malformed-payload test sends JSON that would kill this thread too (finding 5)
            payload = json.loads(msg.payload) if msg.payload else None
        except (ValueError, RecursionError):
            payload = None
        if isinstance(payload, dict):
            with obs.cond:
                obs.messages.append((msg.topic, payload, msg.retain))
                obs.cond.notify_all()

    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.subscribe("kanban/v1/#", qos=1)
    client.loop_start()
    try:
        yield obs
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def observer(mosquitto: Mosquitto) -> Iterator[Observer]:
    with observing(mosquitto.port) as obs:
        yield obs


def make_config(broker_port: int, ports: dict[str, Path]) -> BridgeConfig:
    return BridgeConfig(
        site="plant1",
        line="L1",
        bridge_id="br1",
        broker=MqttSettings(port=broker_port, keepalive_s=5, reconnect_max_s=1),
        limits=LimitsConfig(heartbeat_timeout_s=1.0, serial_retry_max_s=0.2, bridge_heartbeat_s=0.5),
        devices=tuple(DeviceConfig(id=d, port=str(p)) for d, p in ports.items()),
    )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[DeviceSimulator]:
    device = DeviceSimulator("D1", link=tmp_path / "ttyD1")
    device.open()
    device.hello()
    device.start_heartbeat(0.1)
    yield device
    device.stop()


@pytest.fixture
def bridge(mosquitto: Mosquitto, observer: Observer, sim: DeviceSimulator) -> Iterator[Bridge]:
    assert sim.link is not None
    running = Bridge(make_config(mosquitto.port, {"D1": sim.link}))
    running.start()
    observer.wait(TOPICS.device_availability("D1"), lambda p: p["state"] == "online")
    yield running
    running.stop()


def test_button_press_becomes_a_device_signal(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer
) -> None:
    sent = sim.press("stop", "S3", "MAT_SHORT")
    seq = int(sent.split(b",")[3])
    payload = observer.wait(TOPICS.device_signal("D1"))
    assert payload == {
        "v": 1,
        "id": f"D1:{sim.boot}:{seq}",
        "device": "D1",
        "boot": sim.boot,
        "seq": seq,
        "type": "andon_stop",
        "station": "S3",
        "reason": "MAT_SHORT",
        "at": payload["at"],
    }
    assert str(payload["at"]).endswith("+00:00")
    retained = [r for t, _, r in observer.messages if t == TOPICS.device_signal("D1")]
    assert retained == [False]  # events are never retained
    assert sim.wait_for(lambda f: f.type is FrameType.ACK and f.args == (str(seq),)) is not None


def test_bin_sensor_empty_becomes_a_device_signal(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer
) -> None:
    sim.bin("B-07", "empty")
    payload = observer.wait(TOPICS.device_signal("D1"))
    assert (payload["type"], payload["bin"], payload["boot"]) == ("bin_empty", "B-07", sim.boot)
    assert "station" not in payload


def test_line_stop_lights_the_stack_light_red(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer, mosquitto: Mosquitto
) -> None:
    publisher = observer.client
    publisher.publish(TOPICS.line_state, json.dumps({"v": 1, "state": "stopped"}), qos=1, retain=True)
    light = sim.wait_for(lambda f: f.type is FrameType.LIGHT)
    assert light is not None and light.args == ("on", "off", "off")
    assert sim.wait_for(lambda f: f.type is FrameType.BUZZ and f.args == ("on",)) is not None
    # A device that reboots gets the current lamps again with its HELLO.
    before = len(sim.received)
    sim.reboot()
    again = sim.wait_for(lambda f: f.type is FrameType.LIGHT and sim.received.index(f) >= before)
    assert again is not None and again.args == ("on", "off", "off")


def test_unplug_then_replug_reports_offline_then_online(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer
) -> None:
    topic = TOPICS.device_availability("D1")
    fds: list[int] = []
    for round_ in range(4):
        mark = observer.mark()
        sim.close()
        assert observer.wait(topic, lambda p: p["state"] == "offline", after=mark)["boot"] == sim.boot
        mark = observer.mark()
        sim.reopen()
        observer.wait(topic, lambda p: p["state"] == "online", after=mark)
        assert bridge.alive, f"a bridge thread died in round {round_}"
        gc.collect()  # sockets of earlier tests' objects close when collected, not when this runs
        fds.append(len(os.listdir("/proc/self/fd")))
    assert bridge.links["D1"].losses == 4
    # R13: no growth across replugs. Compared from the second round on: in the whole suite the
    # first count once held 12 descriptors of earlier tests that closed later ([39, 27, 27, 27]).
    assert max(fds[1:]) <= fds[1], f"file descriptors leak across replugs: {fds}"
    # The link carries events again after the replug, and the sequence continued (same boot).
    sim.press("call", "S1")
    assert observer.wait(TOPICS.device_signal("D1"))["type"] == "andon_call"


def test_heartbeat_silence_reports_offline(mosquitto: Mosquitto, observer: Observer, tmp_path: Path) -> None:
    device = DeviceSimulator("D2", link=tmp_path / "ttyD2")
    device.open()
    running = Bridge(make_config(mosquitto.port, {"D2": tmp_path / "ttyD2"}))
    running.start()
    try:
        wait_until(lambda: running.links["D2"].connected)
        topic = TOPICS.device_availability("D2")
        mark = observer.mark()  # before the hello: on a fast run "online" came before a later mark
        device.hello()  # one frame, then silence: online, then offline after heartbeat_timeout_s
        observer.wait(topic, lambda p: p["state"] == "online", after=mark)
        observer.wait(topic, lambda p: p["state"] == "offline", after=mark)
    finally:
        running.stop()
        device.stop()


def test_bad_frames_replays_and_reboot(bridge: Bridge, sim: DeviceSimulator, observer: Observer) -> None:
    topic = TOPICS.device_signal("D1")
    mark = observer.mark()
    for flip in range(1, 30, 3):
        sim.corrupt(flip_at=flip)
    sim.send_raw(b"\x1b[2J\x00\xff garbage \r\n$$$" + b"X" * 500 + b"\n")
    first = sim.press("call", "S1")
    sim.send_raw(first)  # a retransmission: dropped, but acknowledged again
    old_boot = sim.boot
    sim.reboot()
    sim.press("cancel", "S1")
    sim.send_raw(first)  # a replay from the previous boot
    sim.press("call", "S2")
    observer.wait(topic, lambda p: p["station"] == "S2", after=mark)
    signals = observer.on(topic, after=mark)
    assert [(p["boot"], p["type"], p["station"]) for p in signals] == [
        (old_boot, "andon_call", "S1"),
        (sim.boot, "andon_cancel", "S1"),
        (sim.boot, "andon_call", "S2"),
    ]
    errors = bridge.error_counts()
    assert errors["crc"] + errors["syntax"] + errors["fields"] >= 10
    assert errors["overlong"] == 1
    assert bridge.counts["duplicate"] == 1 and bridge.counts["old_boot"] == 1


def test_malformed_mqtt_payloads_are_ignored_and_counted(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer
) -> None:
    command = TOPICS.device_command("D1")
    bad = [
        b"[" * 100_000,
        b"[" * 3000,
        b"\xff\xfe\x1b[2J",
        b"{}",
        b'{"v":1,"type":"light","red":"plaid"}',
        b"null",
    ]
    for payload in bad:
        observer.client.publish(command, payload, qos=1)
    observer.client.publish(TOPICS.line_state, b'{"v":1,"state":"on fire"}', qos=1)
    good = {"v": 1, "id": "c1", "type": "light", "red": "off", "amber": "blink", "green": "on"}
    observer.client.publish(command, json.dumps(good), qos=1)
    light = sim.wait_for(lambda f: f.type is FrameType.LIGHT)
    assert light is not None and light.args == ("off", "blink", "on")
    assert bridge.counts["mqtt_rejected"] == len(bad) + 1
    assert bridge.mqtt.connected and bridge.mqtt.callback_errors == 0


def test_bridge_availability_and_last_will(mosquitto: Mosquitto, observer: Observer, tmp_path: Path) -> None:
    config_path = tmp_path / "bridge.toml"
    config_path.write_text(
        'site = "plant1"\nline = "L1"\nbridge_id = "br9"\n'
        "[limits]\nbridge_heartbeat_s = 0.3\n"
        f'[[devices]]\nid = "D9"\nport = "{tmp_path / "absent"}"\n'
    )
    topic = bridge_availability("plant1", "br9")
    cmd = [
        sys.executable,
        "-m",
        "firmware_bridge.cli",
        "run",
        "--config",
        str(config_path),
        "--mqtt",
        mosquitto.url,
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    # 1. clean stop: heartbeats, then a retained offline from the bridge itself, exit code 0
    log = (tmp_path / "bridge.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stderr=log)
    try:
        first = observer.wait(topic, lambda p: p["state"] == "online")
        observer.wait(topic, lambda p: p.get("heartbeat_at") != first["heartbeat_at"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        proc.kill()
    assert observer.wait(topic, lambda p: p["state"] == "offline")["session"] == first["session"]
    # 2. SIGKILL: the broker publishes the last will for the new session
    proc = subprocess.Popen(cmd, env=env, stderr=log)
    try:
        second = observer.wait(topic, lambda p: p["state"] == "online" and p["session"] != first["session"])
        mark = observer.mark()
        proc.kill()
        proc.wait()
        will = observer.wait(topic, lambda p: p["state"] == "offline", after=mark)
        assert will["session"] == second["session"]
    finally:
        proc.kill()
        log.close()
    assert b"Traceback" not in (tmp_path / "bridge.log").read_bytes()


@pytest.fixture
def durable_broker() -> Iterator[Mosquitto]:
    """A plant-configured mosquitto whose persistence really works.

    The shared `mosquitto` fixture keeps its database under pytest's 0700 tmp dir, which the
    "mosquitto" user cannot enter ("Error saving in-memory database ... Permission denied" in its
    log), so no session survives its restart there. This one lives in a 0755 dir.
    """
    root = Path(tempfile.mkdtemp(prefix="bridge-broker-"))
    root.chmod(0o755)
    try:
        with running_mosquitto(root / "broker") as broker:
            yield broker
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_signal_pressed_while_the_broker_is_down_arrives_after_restart(
    durable_broker: Mosquitto, sim: DeviceSimulator
) -> None:
    assert sim.link is not None
    running = Bridge(make_config(durable_broker.port, {"D1": sim.link}))
    with observing(durable_broker.port) as observer:
        running.start()
        try:
            observer.wait(TOPICS.device_availability("D1"), lambda p: p["state"] == "online")
            durable_broker.stop()
            wait_until(lambda: not running.mqtt.connected)
            sent = sim.press("call", "S7")
            seq = int(sent.split(b",")[3])
            # paho queues it and the bridge ACKs: the device may forget it now.
            assert sim.wait_for(lambda f: f.type is FrameType.ACK and f.args == (str(seq),)) is not None
            mark = observer.mark()
            durable_broker.start()
            payload = observer.wait(TOPICS.device_signal("D1"), lambda p: p["station"] == "S7", after=mark)
            assert payload["seq"] == seq
            observer.wait(bridge_availability("plant1", "br1"), lambda p: p["state"] == "online", after=mark)
            assert running.alive and running.mqtt.generation == 2
        finally:
            running.stop()


def test_an_acknowledged_event_survives_a_bridge_restart_while_the_broker_is_down(
    durable_broker: Mosquitto, sim: DeviceSimulator, tmp_path: Path
) -> None:
    """The device was told ACK, so the event must arrive even if this bridge process dies first.

    Stopping the bridge while the broker is down throws away paho's in-memory queue: only the
    bridge's on-disk outbox can still deliver the event, from the next bridge process.
    """
    assert sim.link is not None
    config = make_config(durable_broker.port, {"D1": sim.link}).model_copy(
        update={"state_dir": str(tmp_path / "bridge-state")}
    )
    first = Bridge(config)
    with observing(durable_broker.port) as observer:
        first.start()
        try:
            observer.wait(TOPICS.device_availability("D1"), lambda p: p["state"] == "online")
            durable_broker.stop()
            wait_until(lambda: not first.mqtt.connected)
            sent = sim.bin("B-07", "empty")
            seq = int(sent.split(b",")[3])
            assert sim.wait_for(lambda f: f.type is FrameType.ACK and f.args == (str(seq),)) is not None
        finally:
            first.stop()
        assert len(Outbox(tmp_path / "bridge-state" / "outbox.db")) == 1
        mark = observer.mark()
        durable_broker.start()
        second = Bridge(config)
        second.start()
        try:
            payload = observer.wait(TOPICS.device_signal("D1"), lambda p: p.get("bin") == "B-07", after=mark)
            assert (payload["seq"], payload["type"]) == (seq, "bin_empty")
            wait_until(lambda: len(second.outbox) == 0)  # forgotten only once the broker had it
        finally:
            second.stop()


def test_a_flooding_device_does_not_starve_another(
    mosquitto: Mosquitto, observer: Observer, tmp_path: Path
) -> None:
    quiet, noisy = (
        DeviceSimulator("D1", link=tmp_path / "ttyD1"),
        DeviceSimulator("D2", link=tmp_path / "ttyD2"),
    )
    for device in (quiet, noisy):
        device.open()
    config = make_config(mosquitto.port, {"D1": tmp_path / "ttyD1", "D2": tmp_path / "ttyD2"})
    running = Bridge(config)
    running.start()
    stop = threading.Event()

    def flood() -> None:
        garbage = bytes(range(256)) * 16
        while not stop.is_set():
            noisy.send_raw(garbage)  # non-blocking pty: what the reader cannot take is dropped
            noisy.heartbeat()  # valid frames at full speed too: the rate limit must cut them

    flooder = threading.Thread(target=flood, daemon=True)
    try:
        wait_until(lambda: running.links["D1"].connected and running.links["D2"].connected)
        flooder.start()
        wait_until(lambda: running.counts["bytes_dropped"] > 20_000)
        for n in range(5):
            quiet.press("call", f"S{n}")
        signals = TOPICS.device_signal("D1")
        observer.wait(signals, lambda p: p["station"] == "S4")
        assert [p["station"] for p in observer.on(signals)] == [f"S{n}" for n in range(5)]
        # The flood is cut by its byte budget before decoding; the quiet device loses nothing.
        assert running.devices["D2"].counts["bytes_dropped"] > 20_000
        assert running.devices["D1"].counts["bytes_dropped"] == 0
        assert running.devices["D1"].counts["rate_limited"] == 0
        assert running.error_counts()["noise"] > 0
    finally:
        stop.set()
        flooder.join(2.0)
        running.stop()
        quiet.stop()
        noisy.stop()


def test_valid_frames_faster_than_the_frame_limit_are_cut_and_counted(
    mosquitto: Mosquitto, observer: Observer, tmp_path: Path
) -> None:
    # Well inside the byte budget (a heartbeat is ~30 bytes), so the frame limit is what acts.
    device = DeviceSimulator("D1", link=tmp_path / "ttyD1")
    device.open()
    running = Bridge(make_config(mosquitto.port, {"D1": tmp_path / "ttyD1"}))
    running.start()
    try:
        wait_until(lambda: running.links["D1"].connected)
        for _ in range(200):
            device.heartbeat()
        wait_until(lambda: running.devices["D1"].counts["rate_limited"] > 100)
        assert running.devices["D1"].counts["bytes_dropped"] == 0
    finally:
        running.stop()
        device.stop()


def test_line_noise_between_and_inside_frames_loses_no_intact_frame(
    bridge: Bridge, sim: DeviceSimulator, observer: Observer
) -> None:
    """A noisy serial line, as a long unshielded cable gives: single-bit errors inside frames (any
    byte, the delimiters too) and random bytes between them. Every intact frame arrives once and in
    order, and none of the damaged ones does: `$` or `\\n` resynchronise the decoder, and a 16-bit CRC
    catches every single-bit error."""
    rng = random.Random(7)
    topic = TOPICS.device_signal("D1")
    mark = observer.mark()
    intact: list[str] = []
    flips = 0
    for n in range(30):
        kind = rng.choice(("intact", "intact", "flip", "junk"))
        if kind == "flip":
            frame = bytearray(sim._frame(FrameType.BTN, "call", f"X{n}"))
            # The first two hit the delimiters ("\n" -> "\x0b" merges it with the next frame,
            # "$" -> "%" hides its start); the rest hit any bit.
            byte = (len(frame) - 1, 0)[flips] if flips < 2 else rng.randrange(len(frame))
            frame[byte] ^= 1 << (0 if flips < 2 else rng.randrange(8))
            flips += 1
            sim.send_raw(bytes(frame))
        elif kind == "junk":
            sim.send_raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        station = f"P{n}"
        sim.press("call", station)
        intact.append(station)
        time.sleep(0.1)  # under the device's frame rate limit, heartbeats included
    observer.wait(topic, lambda p: p["station"] == intact[-1], after=mark)
    stations = [p["station"] for p in observer.on(topic, after=mark)]
    assert flips >= 2 and stations == intact
