"""Bin signals published at a steady pace, as the sensors of a busy line send them (the inbound
linger's tests and bench/linger_cost.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt

from tests.faults.support import signal_at, signal_payload

SENSORS = 10


def line_signals(n: int, sensors: int = SENSORS, boot: str = "b1") -> list[tuple[str, bytes]]:
    """`n` signals, each sensor emptying and refilling its bin in turn, each with its own time."""
    base = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for i in range(n):
        dev_no, seq = i % sensors + 1, i // sensors
        kind = "empty" if seq % 2 == 0 else "full"
        out.append(signal_payload(f"BS{dev_no:05d}", seq, kind, signal_at(base, dev_no, seq), boot))
    return out


def publish_paced(
    port: int,
    items: list[tuple[str, bytes]],
    gap_s: float,
    client_id: str = "sensors",
    *,
    acked: bool = True,
    sent: list[float] | None = None,
) -> None:
    """Publish QoS 1 messages `gap_s` apart (as sensors on a busy line), then wait for the PUBACKs
    (`acked`; else only hand them to paho: a broker killed meanwhile answers none). `sent` gets each
    message's time.monotonic() as it is handed to paho."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, 10)
    client.loop_start()
    try:
        infos, next_at = [], time.monotonic()
        for topic, payload in items:
            while (ahead := next_at - time.monotonic()) > 0:
                time.sleep(ahead)
            next_at += gap_s
            if sent is not None:
                sent.append(time.monotonic())
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos if acked else []:
            info.wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()
