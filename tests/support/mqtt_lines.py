"""Test lines for the MQTT tests: a config with many cards and bin sensors, and a recording subscriber.

Card ids are plain (`C0001`...) with the check character turned off, so a test can have hundreds of
cards without generating printable ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kanban_terminal.config import MqttSettings, TerminalConfig, parse_config


def line_config(
    loops: int = 4, cards: int = 10, sensors: int = 10, site: str = "S1", line: str = "L1"
) -> str:
    """TOML for a line with `loops` x `cards` cards; the first `sensors` cards have a bin sensor."""
    out = [
        f'[site]\nid = "{site}"\n[line]\nid = "{line}"\n',
        f'[terminal]\nid = "{line}-T1"\ndebounce_seconds = 0\nrequire_check_character = false\n',
        '[[stations]]\nid = "ST1"\n[[sources]]\nid = "SM1"\nkind = "supermarket"\n',
        '[[parts]]\nnumber = "P-1"\n',
    ]
    n = 0
    for lp in range(loops):
        ids = []
        for _ in range(cards):
            n += 1
            ids.append(f'"C{n:05d}"')
        out.append(
            f'[[loops]]\nid = "LP{lp}"\npart = "P-1"\nstation = "ST1"\npoint_of_use = "rack {lp}"\n'
            f'source = "SM1"\ncontainer_quantity = 10\nlead_time_minutes = 60\n'
            f"card_ids = [{', '.join(ids)}]\n"
        )
    for i in range(1, min(sensors, n) + 1):
        out.append(f'[[bins]]\ndevice = "BS{i:05d}"\ncard = "C{i:05d}"\n')
    return "\n".join(out)


def make_config(tmp: Path, **kwargs: Any) -> tuple[TerminalConfig, Path]:
    text = line_config(**kwargs)
    path = tmp / "line.toml"
    path.write_text(text)
    return parse_config(text, str(path)), path


def settings_for(port: int, **kwargs: Any) -> MqttSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "keepalive_s": 5, "reconnect_max_s": 1}
    return MqttSettings.model_validate(values | kwargs)


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` until true; fail after `timeout` seconds (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Recorder:
    """A persistent-session MQTT 5 subscriber that keeps every message it receives."""

    def __init__(self, port: int, topic: str, client_id: str = "recorder"):
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        # Ready only once the broker has granted the subscription: waiting for CONNACK alone let a
        # loaded machine publish before the SUBACK, and the message was never seen (flaky test).
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, 5, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, "recorder subscribed")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            data = json.loads(msg.payload)
        except ValueError:
            data = {"raw": msg.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((msg.topic, data, bool(msg.retain)))

    def ids(self) -> list[str]:
        with self._lock:
            return [d.get("id", "") for _, d, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_raw(port: int, items: list[tuple[str, bytes]], client_id: str = "tester") -> None:
    """Publish QoS 1 messages and wait for every PUBACK."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, 5)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in items]
        for info in infos:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
