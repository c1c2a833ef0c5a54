"""MQTT 3.1.1 as a supported mode, and fail-over between broker cluster nodes (issue 16).

mosquitto logs each client's protocol ("p2" = 3.1.1, "p5" = MQTT 5): the 3.1.1 tests check that log,
so they cannot pass over MQTT 5 by mistake.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.domain.scans import Intent
from kanban_terminal.mqtt_settings import MqttConfigError, MqttSettings
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for
from tests.support.peers import partition_peers

pytestmark = pytest.mark.broker


def _protocols(broker: Mosquitto) -> dict[str, str]:
    """client id -> protocol level mosquitto logged for its newest connection."""
    log = (broker.home / "mosquitto.log").read_text(errors="replace")
    return {m[0]: m[1] for m in re.findall(r"New client connected from \S+ as (\S+) \((p\d)", log)}


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    # Six loops: crc32 puts LP0-LP3 in partition 0 and LP4, LP5 in partition 1.
    config, _ = make_config(tmp_path, loops=6, cards=2, sensors=0)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


def test_terminal_and_partitioned_peers_over_mqtt_3_1_1(
    mosquitto: Mosquitto, terminal: Terminal, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto.port, protocol="3.1.1", reconcile_after_s=2.0)
    peers = partition_peers(settings, tmp_path)
    with peers[0], peers[1], TerminalServices(terminal, settings) as services:
        wait_for(lambda: services.subscribed() and all(p.link.subscribed for p in peers), what="links up")
        for n in range(1, 13):
            assert record_scan(terminal, f"C{n:05d}", source="test", intent=Intent.EMPTY).accepted
        con = sqlite3.connect(terminal.db.path)
        try:
            wait_for(
                lambda: con.execute("SELECT count(*) FROM card WHERE state = 'shipped'").fetchone()[0] == 12,
                what="every card shipped",
            )
        finally:
            con.close()
        assert [p.count_picked() for p in peers] == [8, 4]
    protocols = _protocols(mosquitto)
    assert (
        protocols["L1-T1"] == "p2" and protocols["SM1-peer-p0"] == "p2" and protocols["SM1-peer-p1"] == "p2"
    )


def test_the_link_moves_to_the_next_cluster_node_when_its_node_dies(tmp_path: Path) -> None:
    with (
        running_mosquitto(tmp_path / "node1") as node1,
        running_mosquitto(tmp_path / "node2") as node2,
    ):
        settings = settings_for(node1.port, failover_urls=(node2.url,))
        link = MqttLink(settings, "failover-probe", subscriptions=[("kanban/v1/S1/L1/status", 1)])
        link.start()
        try:
            wait_for(lambda: link.subscribed, what="on node 1")
            assert "failover-probe" in _protocols(node1) and "failover-probe" not in _protocols(node2)
            node1.stop()
            wait_for(lambda: "failover-probe" in _protocols(node2), what="moved to node 2")
            wait_for(lambda: link.subscribed, what="subscribed again on node 2")
            node1.start()
            node2.stop()  # and back: round robin, whichever node is alive
            wait_for(lambda: "failover-probe" in _protocols(node1), timeout=30, what="back on node 1")
            wait_for(lambda: link.subscribed, what="subscribed again on node 1")
        finally:
            link.stop()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"failover_urls": ("mqtts://node2.plant:8883",)}, "link's TLS setting"),
        ({"failover_urls": ("mqtt://10.1.2.3:1883",)}, "plain mqtt:// to 10.1.2.3 refused"),
        ({"failover_urls": ("mqtt://other@127.0.0.2:1883",), "username": "term-l1"}, "link's user name"),
        ({"failover_urls": ("http://127.0.0.1:1883",)}, "must start with mqtt://"),
    ],
)
def test_a_failover_url_that_cannot_be_used_is_refused_with_the_reason(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises((MqttConfigError, ValueError), match=re.escape(message)):
        MqttSettings.model_validate(values)


@pytest.mark.pty
def test_the_firmware_bridge_over_mqtt_3_1_1(mosquitto: Mosquitto, tmp_path: Path) -> None:
    from firmware_bridge.bridge import Bridge
    from firmware_bridge.simulator import DeviceSimulator
    from tests.integration.test_bridge import TOPICS, make_config, observing

    sim = DeviceSimulator("D1", link=tmp_path / "ttyD1")
    sim.open()
    sim.hello()
    sim.start_heartbeat(0.1)
    assert sim.link is not None
    config = make_config(mosquitto.port, {"D1": sim.link})
    config = config.model_copy(update={"broker": config.broker.model_copy(update={"protocol": "3.1.1"})})
    bridge = Bridge(config, instance="a")
    try:
        with observing(mosquitto.port) as observer:
            bridge.start()
            observer.wait(TOPICS.device_availability("D1"), lambda p: p["state"] == "online")
            sim.bin("B-07", "empty")
            assert observer.wait(TOPICS.device_signal("D1"))["type"] == "bin_empty"
    finally:
        bridge.stop()
        sim.stop()
    assert _protocols(mosquitto)["bridge-plant1-br1-a"] == "p2"
