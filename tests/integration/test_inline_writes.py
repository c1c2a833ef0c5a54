"""What the drain hook queues on paho's thread goes out in the same pass, with no wake-up byte
(adapters/mqtt_inline_writes.py), against a real mosquitto. paho's loop is driven by hand here
(`client.loop`) and the test's thread stands for paho's network thread (`_thread`)."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from kanban_terminal.adapters.mqtt_inline_writes import writes_after
from tests.support.mosquitto import Mosquitto


def woken(client: mqtt.Client) -> bool:
    """A wake-up byte waits in the client's socket pair (paho's next select() returns at once)."""
    return bool(select.select([client._sockpairR], [], [], 0)[0])


@pytest.fixture
def pair(mosquitto: Mosquitto) -> Iterator[tuple[mqtt.Client, list[bytes]]]:
    """A connected client driven by hand, and what a subscriber on `t/#` received."""
    got: list[bytes] = []
    arrived = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub", protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: (got.append(bytes(m.payload)), arrived.set())
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("t/#", 1)
    sub.loop_start()
    assert subscribed.wait(10)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    while not client.is_connected():
        assert client.loop(1.0) == mqtt.MQTT_ERR_SUCCESS
    while client.want_write() or woken(client):
        client.loop(0.1)
    # As under `loop_start`: a publish only queues (and wakes the loop's thread, this one here).
    client._thread = threading.current_thread()
    yield client, got
    client._thread = None
    client.disconnect()
    sub.loop_stop()
    sub.disconnect()


def wait_for(got: list[bytes], n: int, client: mqtt.Client) -> None:
    for _ in range(100):
        if len(got) >= n:
            return
        client.loop(0.05)  # reads the PUBACKs; nothing of ours waits to be written
    raise AssertionError(f"received {got}")


def test_a_publish_and_an_ack_queued_in_the_hook_are_written_before_the_next_select(
    pair: tuple[mqtt.Client, list[bytes]],
) -> None:
    client, got = pair
    wake = client._sockpairW
    run = writes_after(client, lambda: client.publish("t/request", b"r1", qos=1))
    run()
    assert not client.want_write()  # written in this pass: no pass of paho's loop only to write
    assert not woken(client)  # and no wake-up byte to read in the next one
    assert client._sockpairW is wake  # the real socket pair is back for the other threads
    wait_for(got, 1, client)
    assert got == [b"r1"]


def test_without_it_the_hooks_publish_waits_for_a_pass_and_a_wake_up_byte(
    pair: tuple[mqtt.Client, list[bytes]],
) -> None:
    """What `writes_after` saves (and what makes the test above able to fail)."""
    client, got = pair
    client.publish("t/request", b"r1", qos=1)
    assert client.want_write() and woken(client)


def test_a_publish_of_another_thread_during_the_hook_still_goes_out(
    pair: tuple[mqtt.Client, list[bytes]],
) -> None:
    """The relay thread or the watchdog may publish while the hook runs: it finds no wake-up to
    send, but paho's thread writes its packet before it selects again."""
    client, got = pair

    def hook() -> None:
        other = threading.Thread(target=lambda: client.publish("t/heartbeat", b"h", qos=1))
        other.start()
        other.join()
        client.publish("t/request", b"r1", qos=1)

    writes_after(client, hook)()
    assert not client.want_write()
    wait_for(got, 2, client)
    assert sorted(got) == [b"h", b"r1"]


def test_a_hook_that_raises_still_restores_the_socket_pair_and_writes(
    pair: tuple[mqtt.Client, list[bytes]],
) -> None:
    client, got = pair
    wake = client._sockpairW

    def hook() -> None:
        client.publish("t/request", b"r1", qos=1)
        raise RuntimeError("a failing owner")

    with pytest.raises(RuntimeError):
        writes_after(client, hook)()
    assert client._sockpairW is wake and not client.want_write()
    wait_for(got, 1, client)
