"""A microcontroller on a real pty -> firmware bridge -> real mosquitto -> terminal, and back.

The whole path issue 5 promises: a bin sensor becomes a replenishment request, an andon button
becomes an andon event, and a line stop lights the device's stack light red with the buzzer on.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from firmware_bridge.framing import FrameType
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.config import BinSensor, MqttSettings
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto
from tests.support.terminals import demo_config

pytestmark = [pytest.mark.broker, pytest.mark.pty]

CARD = "B1001Z"


def wait_until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rows(terminal: Terminal, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(terminal.db.path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[DeviceSimulator]:
    sim = DeviceSimulator("D1", link=tmp_path / "ttyD1")
    sim.open()
    sim.hello()
    sim.start_heartbeat(0.2)
    yield sim
    sim.stop()


@pytest.fixture
def line(tmp_path: Path, mosquitto: Mosquitto, device: DeviceSimulator) -> Iterator[Terminal]:
    cfg = demo_config()
    cfg = cfg.model_copy(
        update={
            "bins": (BinSensor(device="D1", bin="B-07", card=CARD),),
            # D1's stop button is a key switch only team leads hold (config [andon] stop_devices).
            "andon": cfg.andon.model_copy(update={"stop_devices": ("D1",)}),
        }
    )
    terminal = Terminal.open(cfg, tmp_path / "terminal")
    assert device.link is not None
    bridge = Bridge(
        BridgeConfig(
            site=cfg.site.id,
            line=cfg.line.id,
            bridge_id="br1",
            broker=MqttSettings(port=mosquitto.port, keepalive_s=5, reconnect_max_s=1),
            limits=LimitsConfig(heartbeat_timeout_s=2.0, serial_retry_max_s=0.2, bridge_heartbeat_s=0.5),
            devices=(DeviceConfig(id="D1", port=str(device.link)),),
        )
    )
    services = TerminalServices(terminal, MqttSettings(port=mosquitto.port, keepalive_s=5))
    services.start()
    bridge.start()
    wait_until(lambda: services.subscribed(), "terminal link")
    # pyserial flushes the port's input when it opens it, so what the device sent before then is
    # gone (real firmware retransmits an unacknowledged event; the simulator does not). The device
    # is online once the bridge has read a frame of it: from here on nothing it sends is lost.
    wait_until(lambda: bridge.devices["D1"].online, "the bridge reading the device")
    try:
        yield terminal
    finally:
        bridge.stop()
        services.stop()
        terminal.close()


def test_bin_sensor_on_the_bridge_raises_a_request(line: Terminal, device: DeviceSimulator) -> None:
    device.bin("B-07", "empty")
    requested = ([("queued",)], [("sent",)])
    wait_until(lambda: rows(line, f"SELECT state FROM card WHERE id='{CARD}'") in requested, "the request")
    assert rows(line, f"SELECT source FROM card_log WHERE card_id='{CARD}' AND event='bin_empty'") == [
        ("mqtt:D1",)
    ]
    assert rows(line, f"SELECT count(*) FROM replenishment_request WHERE card_id='{CARD}'") == [(1,)]


def test_andon_button_raises_a_call(line: Terminal, device: DeviceSimulator) -> None:
    device.press("call", "ST20", "HELP")
    wait_until(lambda: rows(line, "SELECT kind, station, reason FROM andon"), "the andon event")
    assert rows(line, "SELECT kind, station, reason FROM andon") == [("call", "ST20", "HELP")]
    # The line state the terminal publishes reaches the device as lamps: amber blinking, green on.
    light = device.wait_for(lambda f: f.type is FrameType.LIGHT and f.args == ("off", "blink", "on"))
    assert light is not None


def test_line_stop_lights_the_stack_light_red(line: Terminal, device: DeviceSimulator) -> None:
    device.press("stop", "ST20", "SAFE")
    wait_until(lambda: rows(line, "SELECT kind FROM andon"), "the line stop")
    assert rows(line, "SELECT kind, state FROM andon") == [("stop", "raised")]
    light = device.wait_for(lambda f: f.type is FrameType.LIGHT and f.args == ("on", "off", "off"))
    assert light is not None
    assert device.wait_for(lambda f: f.type is FrameType.BUZZ and f.args == ("on",)) is not None
