"""Simulated hardware for the demo: one microcontroller station on a serial port, behind the bridge.

`kanban-terminal demo --simulated-hardware` puts the whole device path on screen with no board on
the desk: a simulated station (andon button, one bin sensor, a stack light with buzzer) speaks the
firmware protocol on a pseudo-terminal, and the real firmware bridge reads that port and talks to
the demo broker, exactly as it would on a line PC with a board plugged in by USB. The station's bin
takes part in the pull loop like the other sensors; its button calls for help now and then while the
line is green; its stack light follows the line state, and the status bar shows what it lights.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig
from firmware_bridge.framing import FrameType
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.config import BinSensor, MqttSettings, TerminalConfig

DEVICE = "SIM-ST20"
"""The simulated station's device id (topic level, frame field)."""
BIN = "PLATE-1"
STATION = "ST20"
"""The demo line's station the button belongs to."""
_TAKES_OVER = "BS-ST20-PLATE-1"
"""The demo config's simulated sensor whose bin the station watches instead."""


MOSQUITTO_NEEDED = (
    "simulated hardware needs mosquitto (the firmware bridge speaks MQTT 5, the built-in "
    "amqtt broker only 3.1.1): apt-get install mosquitto, then run the demo again"
)


class HardwareUnavailable(Exception):
    """Simulated hardware cannot run here; the message says what to install or change."""


def with_simulated_station(config: TerminalConfig) -> tuple[TerminalConfig, str]:
    """The config with one bin sensor moved onto the simulated station; returns it and that card.

    The bin keeps its card, so the loop and the board stay the same; only the signal now comes over
    serial and the bridge (device SIM-ST20, bin PLATE-1) instead of straight over MQTT.
    """
    bins = list(config.bins)
    index = next((i for i, b in enumerate(bins) if b.device == _TAKES_OVER), 0 if bins else None)
    if index is None:
        raise HardwareUnavailable("simulated hardware needs at least one [[bins]] entry in the config")
    card = bins[index].card
    bins[index] = BinSensor(device=DEVICE, bin=BIN, card=card)
    return config.model_copy(update={"bins": tuple(bins)}), card


@dataclass(frozen=True)
class StackLight:
    """What the station's stack light shows: each lamp on|off|blink, the buzzer, and whether the
    bridge currently hears the device at all."""

    device: str
    red: str = "off"
    amber: str = "off"
    green: str = "off"
    buzzer: bool = False
    online: bool = False

    def describe(self) -> tuple[str, str]:
        """(words, severity) for a status line; severity is ok, warn, alarm or off."""
        if not self.online:
            return "offline", "alarm"
        lit = [(name, mode) for name, mode in (("red", self.red), ("amber", self.amber),
                                                ("green", self.green)) if mode != "off"]  # fmt: skip
        shown = [(name.upper() if name == "red" else name) + (" blinking" if mode == "blink" else "")
                 for name, mode in lit]  # fmt: skip
        words = " + ".join(shown) or "dark"
        if self.buzzer:
            words += ", buzzer"
        severity = "alarm" if self.red != "off" else "warn" if self.amber != "off" else "ok" if lit else "off"
        return words, severity


class SimulatedStation:
    """The simulated board on its pty plus the real bridge serving it; a context manager."""

    def __init__(
        self,
        mqtt: MqttSettings,
        config: TerminalConfig,
        folder: Path,
        *,
        press_every: tuple[float, float] = (120.0, 300.0),
        seed: int | None = None,
    ) -> None:
        if mqtt.protocol != "5":
            raise HardwareUnavailable(MOSQUITTO_NEEDED)
        folder.mkdir(parents=True, exist_ok=True)
        self.port_path = folder / f"tty{DEVICE}"
        self.device = DeviceSimulator(DEVICE, link=self.port_path, firmware="demo-sim")
        self.bridge_config = BridgeConfig(
            site=config.site.id,
            line=config.line.id,
            bridge_id="demo-bridge",
            broker=MqttSettings(
                host=mqtt.host, port=mqtt.port, protocol=mqtt.protocol, keepalive_s=10, reconnect_max_s=2
            ),
            devices=(DeviceConfig(id=DEVICE, port=str(self.port_path), kind="station"),),
            state_dir=str(folder / "bridge"),
        )
        self.bridge: Bridge | None = None
        self.press_every = press_every
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._button = threading.Thread(target=self._press_now_and_then, name="demo-button", daemon=True)

    def __enter__(self) -> SimulatedStation:
        self.device.open()
        self.device.hello()
        self.device.start_heartbeat(1.0)
        self.bridge = Bridge(self.bridge_config)
        self.bridge.start()
        self._button.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._button.join(timeout=5)
        if self.bridge is not None:
            self.bridge.stop()
        self.device.stop()

    def bin_signal(self, kind: str) -> None:
        """The bin sensor reports its bin `empty` or `full` (a BIN frame on the serial line)."""
        self.device.bin(BIN, kind)

    def press(self, action: str = "call", reason: str = "HELP") -> None:
        """Somebody presses the station's andon button."""
        self.device.press(action, STATION, reason)

    def light(self) -> StackLight:
        """The lamps as the bridge last commanded them over serial (the frames the board received)."""
        lamps: tuple[str, str, str] | None = None
        buzzer: bool | None = None
        # Newest first, stopping at the last of each: the status bar asks every second, and the
        # simulator keeps the last RECEIVED_KEPT frames the bridge sent it.
        for frame in reversed(list(self.device.received)):
            if lamps is None and frame.type is FrameType.LIGHT and len(frame.args) == 3:
                lamps = (frame.args[0], frame.args[1], frame.args[2])
            elif buzzer is None and frame.type is FrameType.BUZZ and frame.args:
                buzzer = frame.args[0] == "on"
            if lamps is not None and buzzer is not None:
                break
        state = self.bridge.devices.get(DEVICE) if self.bridge else None
        online = bool(state and state.online)
        red, amber, green = lamps or ("off", "off", "off")
        return StackLight(DEVICE, red, amber, green, buzzer=bool(buzzer), online=online)

    def status_items(self) -> tuple[tuple[str, str, str], ...]:
        """For the status bar: (device, what its stack light shows, severity)."""
        light = self.light()
        return ((light.device, *light.describe()),)

    def _press_now_and_then(self) -> None:
        # Only on a green line: a demo left running should show calls come and go, not pile them up.
        while not self._stop.wait(self._random.uniform(*self.press_every)):
            light = self.light()
            if light.online and (light.red, light.amber, light.green) == ("off", "off", "on"):
                self.press()
