"""MqttLink's subscriptions: "subscribed" means the broker answered them, and a refusal is logged.

Until the broker grants a subscription it keeps nothing for the client, so a caller that starts
publishing at "connected" can lose the first messages of a brand-new session.
"""

from __future__ import annotations

import logging
import threading

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from kanban_terminal.adapters.mqtt_client import MqttLink
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import publish_raw, settings_for, wait_for

TOPICS = ["kanban/v1/S1/L1/device/+/signal", "kanban/v1/S1/L1/status"]


@pytest.mark.broker
def test_messages_published_once_subscribed_all_arrive(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    received: list[str] = []
    lock = threading.Lock()

    def on_message(topic: str, _payload: bytes, mid: int, qos: int, generation: int) -> None:
        with lock:
            received.append(topic)
        link.ack(mid, qos, generation)

    link = MqttLink(settings_for(mosquitto.port), "T-new", subscriptions=[(t, 1) for t in TOPICS],
                    on_message=on_message)  # fmt: skip
    assert not link.subscribed
    link.start()
    try:
        wait_for(lambda: link.subscribed, what="subscriptions granted")
        publish_raw(mosquitto.port, [("kanban/v1/S1/L1/device/BS1/signal", b"{}"),
                                     ("kanban/v1/S1/L1/status", b"{}")])  # fmt: skip
        wait_for(lambda: len(received) == 2, what="both messages")
    finally:
        link.stop()
    assert sorted(received) == sorted(["kanban/v1/S1/L1/device/BS1/signal", "kanban/v1/S1/L1/status"])
    for topic in TOPICS:
        assert f"MQTT link subscribed to {topic}" in caplog.text


def test_a_refused_subscription_is_a_warning_naming_the_topic(caplog: pytest.LogCaptureFixture) -> None:
    # mosquitto grants ACL-denied subscriptions and filters silently, so a broker that refuses
    # (EMQX, HiveMQ: 0x87) is played here by handing the link the SUBACK it would get.
    link = MqttLink(settings_for(1), "T-acl", subscriptions=[(TOPICS[0], 1)])
    link._pending_subscriptions[7] = TOPICS[0]
    refused = ReasonCode(PacketTypes.SUBACK, "Not authorized")
    with caplog.at_level(logging.WARNING):
        link._handle_subscribe(link.client, None, 7, [refused], None)
    assert f"refused the subscription to {TOPICS[0]}: Not authorized" in caplog.text
    assert not link._pending_subscriptions
