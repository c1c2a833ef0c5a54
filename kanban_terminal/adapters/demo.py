"""The demo's world: an embedded broker, the supermarket peer and simulated bin sensors.

A person watching `kanban-terminal demo` should see the pull loop close by itself: a sensor reports
its bin empty, the terminal raises and sends a request, the supermarket accepts, picks and ships it,
and when the ETA comes the sensor reports the bin full again, which delivers the card. The sensors
speak the same signal protocol as real ones (docs/PROTOCOL.md), boot id and sequence included.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kanban_terminal.adapters.demo_hardware import DEVICE, SimulatedStation
from kanban_terminal.adapters.embedded_broker import EmbeddedBroker, embedded_broker
from kanban_terminal.adapters.mqtt_client import MqttLink, utc_text
from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.adapters.wire import MAX_STATUS_BYTES, UpstreamStatusMessage, validate
from kanban_terminal.config import MqttSettings, TerminalConfig
from kanban_terminal.topics import LineTopics

log = logging.getLogger(__name__)


class SimulatedBins:
    """Every configured bin sensor, emptying its bin every `empty_after` seconds (random range)
    and reporting it full when the supermarket's shipment is due."""

    def __init__(
        self,
        mqtt: MqttSettings,
        config: TerminalConfig,
        *,
        empty_after: tuple[float, float] = (15.0, 60.0),
        first_after: tuple[float, float] = (2.0, 20.0),
        seed: int | None = None,
        wired: dict[str, Callable[[str], None]] | None = None,
    ):
        self.topics = LineTopics(config.site.id, config.line.id)
        self.devices = {b.card.upper(): b.device for b in config.bins}
        self.empty_after = empty_after
        self.wired = {card.upper(): emit for card, emit in (wired or {}).items()}
        """Cards whose sensor is simulated hardware: their signals go out over its serial port."""
        self.boot = uuid.uuid4().hex[:8]
        self.seq = 0
        self.sent = 0
        self._random = random.Random(seed)
        self._plan: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        now = time.monotonic()
        for card in self.devices:
            self._schedule(now + self._random.uniform(*first_after), card, "empty")
        self.link = MqttLink(
            mqtt,
            f"demo-sensors-{self.boot}",
            subscriptions=[(self.topics.status, 1)],
            on_message=self._on_status,
        )
        self._thread = threading.Thread(target=self._run, name="demo-sensors", daemon=True)

    def __enter__(self) -> SimulatedBins:
        self.link.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.link.stop()

    def _schedule(self, at: float, card: str, kind: str) -> None:
        with self._lock:
            heapq.heappush(self._plan, (at, card, kind))

    def _on_status(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        # Only "shipped" matters: the full bin arrives at its ETA.
        self.link.ack(mid, qos, generation)
        status = validate(UpstreamStatusMessage, payload, MAX_STATUS_BYTES)
        if isinstance(status, str) or status.status != "shipped" or status.card not in self.devices:
            return
        eta = status.eta
        delay = max(0.5, (eta - datetime.now(UTC)).total_seconds()) if eta else 5.0
        self._schedule(time.monotonic() + delay, status.card, "full")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            due: list[tuple[float, str, str]] = []
            with self._lock:
                while self._plan and self._plan[0][0] <= now:
                    due.append(heapq.heappop(self._plan))
            for _, card, kind in due:
                self._signal(card, kind)
                if kind == "full":
                    self._schedule(now + self._random.uniform(*self.empty_after), card, "empty")

    def _signal(self, card: str, kind: str) -> None:
        if card in self.wired:
            self.wired[card](kind)
            self.sent += 1
            return
        device = self.devices[card]
        self.seq += 1
        payload = {
            "v": 1,
            "id": f"{device}:{self.boot}:{self.seq}",
            "device": device,
            "boot": self.boot,
            "seq": self.seq,
            "type": f"bin_{kind}",
            "at": utc_text(datetime.now(UTC)),
        }
        self.link.publish(self.topics.device_signal(device), json.dumps(payload).encode(), 1)
        self.sent += 1


@dataclass
class DemoEnvironment:
    """What the demo started; `mqtt` is what the terminal connects with."""

    broker: EmbeddedBroker
    mqtt: MqttSettings
    upstream: UpstreamPeer
    sensors: SimulatedBins
    station: SimulatedStation | None = None
    """The simulated microcontroller station behind the firmware bridge, when asked for."""

    @property
    def mqtt_url(self) -> str:
        return self.broker.url


@contextlib.contextmanager
def demo_environment(
    config: TerminalConfig, data_dir: Path, *, prefer_mosquitto: bool = True, hardware: bool = False
) -> Iterator[DemoEnvironment]:
    """Start broker, supermarket and sensors; stop them all on exit (sensors first).

    With `hardware`, `config` must come from `with_simulated_station`: the station's bin is then
    signalled over its serial port and the firmware bridge, not straight over MQTT.
    """
    with embedded_broker(prefer_mosquitto) as broker:
        base = config.mqtt or MqttSettings()
        settings = base.model_copy(
            update={
                "host": broker.host,
                "port": broker.port,
                "tls": False,
                "username": None,
                "protocol": broker.protocol,
                "republish_after_s": 30.0,
            }
        )
        with contextlib.ExitStack() as stack:
            peer = stack.enter_context(
                UpstreamPeer(settings, config.site.id, config.upstream, data_dir / "demo-upstream.db")
            )
            station = None
            wired: dict[str, Callable[[str], None]] = {}
            if hardware:
                station = stack.enter_context(SimulatedStation(settings, config, data_dir / "hardware"))
                wired = {b.card: station.bin_signal for b in config.bins if b.device == DEVICE}
            sensors = stack.enter_context(SimulatedBins(settings, config, wired=wired))
            yield DemoEnvironment(broker, settings, peer, sensors, station)
