"""One MQTT link: the terminal, the upstream peer and the firmware bridge run the same class with the
same settings model, and it really sets what it promises on a real connection to a real mosquitto:
TCP_NODELAY on the socket (paho leaves Nagle on, stack P6), MQTT 5 with clean_start=False and a
session the broker keeps after a clean disconnect (stack P4). Its hooks are public.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker


@contextmanager
def three_users(tmp_path: Path, port: int) -> Iterator[dict[str, MqttLink]]:
    """The terminal's services, the upstream peer and a bridge, all started against `port`."""
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    with ExitStack() as stack:
        terminal = Terminal.open(config, tmp_path / "terminal")
        stack.callback(terminal.close)
        services = stack.enter_context(TerminalServices(terminal, settings_for(port)))
        peer = stack.enter_context(
            UpstreamPeer(settings_for(port), config.site.id, UpstreamSettings(), tmp_path / "peer.db")
        )
        bridge = Bridge(
            BridgeConfig(
                site=config.site.id,
                line=config.line.id,
                bridge_id="br1",
                broker=MqttSettings(port=port, keepalive_s=5, reconnect_max_s=1),
                limits=LimitsConfig(serial_retry_max_s=0.2),
                devices=(DeviceConfig(id="D1", port=str(tmp_path / "no-such-port")),),
            )
        )
        bridge.start()
        stack.callback(bridge.stop)
        assert services.link is not None
        yield {"terminal": services.link, "peer": peer.link, "bridge": bridge.mqtt}


def session_kept(port: int, client_id: str) -> bool:
    """Connect as `client_id` with clean_start=False: did the broker still hold its session?
    Leaves with expiry 0, so the session ends here."""
    present = threading.Event()
    answered = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)

    def on_connect(_c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, _r: object, _p: object) -> None:
        if flags.session_present:
            present.set()
        answered.set()

    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", port, 5, clean_start=False, properties=props)
    client.loop_start()
    try:
        assert answered.wait(10), f"no CONNACK for {client_id}"
    finally:
        client.disconnect()
        client.loop_stop()
    return present.is_set()


def test_the_terminal_the_peer_and_the_bridge_share_one_link_and_its_settings(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with three_users(tmp_path, mosquitto.port) as links:
        for name, link in links.items():
            assert type(link) is MqttLink, name
            assert isinstance(link.settings, MqttSettings), name
            wait_for(partial(getattr, link, "subscribed"), what=f"{name} connected and subscribed")
            sock = link.client.socket()
            assert isinstance(sock, socket.socket), name
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, f"{name}: Nagle is on"
        client_ids = {name: link.client_id for name, link in links.items()}
    broker_log = (mosquitto.home / "mosquitto.log").read_text(errors="replace")
    for name, client_id in client_ids.items():
        # mosquitto logs each CONNECT as (protocol, clean start, keepalive).
        assert f"as {client_id} (p5, c0, k5" in broker_log, f"{name}: not MQTT 5 with clean_start=False"
        # Stopped cleanly, yet the broker kept the session: a Session Expiry Interval was sent.
        assert session_kept(mosquitto.port, client_id), f"{name}: the broker kept no session"


def test_hooks_are_set_through_public_arguments_and_set_handlers(mosquitto: Mosquitto) -> None:
    """The owner of a hook may exist only after the link (the relay takes the link): `set_handlers`
    replaces just the hooks it is given, before `start()`, without touching private attributes."""
    connected: list[bool] = []
    published: list[tuple[int, bool, str]] = []
    received: list[str] = []

    def on_message(topic: str, _payload: bytes, mid: int, qos: int, generation: int) -> None:
        received.append(topic)
        link.ack(mid, qos, generation)

    link = MqttLink(
        settings_for(mosquitto.port),
        "T-hooks",
        subscriptions=[("hooks/#", 1)],
        on_message=on_message,
        on_published=lambda *_: pytest.fail("replaced by set_handlers"),
    )
    link.set_handlers(on_published=lambda mid, ok, reason: published.append((mid, ok, reason)))
    link.set_handlers(on_connected=connected.append)
    link.start()
    try:
        wait_for(lambda: link.subscribed, what="subscribed")
        mid = link.publish("hooks/one", b"{}", qos=1)
        wait_for(lambda: published and received, what="PUBACK and the message back")
    finally:
        link.stop()
    assert connected == [False]  # a brand-new session
    assert [(m, ok) for m, ok, _ in published] == [(mid, True)]
    assert received == ["hooks/one"]
    assert link.callback_errors == 0
