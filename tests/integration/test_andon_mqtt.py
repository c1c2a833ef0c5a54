"""Andon buttons and published state: signal validation and dedupe on SQLite, then a real mosquitto:
button -> andon event -> retained line state (and stack-light command), through the terminal's one
MQTT link as `serve` runs it (there is no separate andon client)."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kanban_terminal.adapters.wire import InboundDecoder
from kanban_terminal.domain.inbound import AndonSignal, Refusal
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_signals import SignalOutcome
from kanban_terminal.services.andon_signals import handle_andon_signal as apply_andon
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import settings_for, wait_for


def signal(seq: int, type_: str = "andon_call", device: str = "ANDON-ST10", **kw: Any) -> dict[str, Any]:
    payload = {
        "v": 1, "id": f"{device}:3:{seq}", "device": device, "boot": "3", "seq": seq, "type": type_,
        "station": "ST10", "reason": "MACH",
    }  # fmt: skip
    payload.update(kw)
    return payload


def handle_andon_signal(
    terminal: Terminal, payload: dict[str, Any], topic_device: str | None = None
) -> SignalOutcome:
    """The inbound worker's road: the wire schema decodes, then the andon use case applies."""
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    device = topic_device or str(payload.get("device"))
    topic = f"{topics.device_signal('DEVICE').removesuffix('DEVICE/signal')}{device}/signal"
    decoded = InboundDecoder(terminal.config, topics).decode(
        topic, json.dumps(payload).encode(), terminal.clock()
    )
    if isinstance(decoded, Refusal):
        return SignalOutcome("invalid", decoded.reason)
    assert isinstance(decoded, AndonSignal)
    return apply_andon(terminal, decoded)


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


def test_button_call_is_deduped_by_signal_id(terminal: Terminal) -> None:
    first = handle_andon_signal(terminal, signal(1), topic_device="ANDON-ST10")
    again = handle_andon_signal(terminal, signal(1), topic_device="ANDON-ST10")
    assert (first.status, again.status) == ("raised", "duplicate")
    assert len(read_board(terminal).line.active) == 1


def test_button_cancel_withdraws_its_own_call(terminal: Terminal) -> None:
    handle_andon_signal(terminal, signal(1))
    assert handle_andon_signal(terminal, signal(2, "andon_cancel")).status == "cancelled"
    assert read_board(terminal).line.active == ()
    assert handle_andon_signal(terminal, signal(3, "andon_cancel")).status == "refused"


def test_stop_only_from_a_key_switch_device(terminal: Terminal) -> None:
    refused = handle_andon_signal(terminal, signal(1, "andon_stop", reason="SAFE"))
    assert refused.status == "refused" and "team lead" in refused.message
    key = handle_andon_signal(terminal, signal(1, "andon_stop", device="ANDON-ST20-KEY", reason="SAFE"))
    assert key.status == "raised" and read_board(terminal).line.stopped


@pytest.mark.parametrize(
    ("payload", "topic_device"),
    [
        (signal(1, v=2), None),
        (signal(1, id="ANDON-ST10:3:2"), None),
        (signal(1, device="x/#", id="x/#:3:1"), None),
        (signal(1), "OTHER-DEVICE"),
        (signal(1, type="andon_party"), None),
        ({**signal(1), "seq": True, "id": "ANDON-ST10:3:True"}, None),
    ],
)
def test_invalid_signals_are_refused(terminal: Terminal, payload: dict[str, Any], topic_device: str) -> None:
    assert handle_andon_signal(terminal, payload, topic_device=topic_device).status == "invalid"
    assert read_board(terminal).line.active == ()


def test_shelved_button_is_logged_but_raises_nothing_until_the_shelve_ends(
    terminal: Terminal,
) -> None:
    clock = terminal.clock
    assert isinstance(clock, FakeClock)
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, svc.Rejection)
    assert svc.shelve_source(terminal, "ANDON-ST10", 10, source="keyboard", auth=AuthSession(state)).ok
    assert handle_andon_signal(terminal, signal(1)).status == "shelved"
    clock.advance(minutes=10)
    assert handle_andon_signal(terminal, signal(2)).status == "raised"


class Listener:
    """A plain paho client recording what arrives on the andon topics."""

    def __init__(self, broker: Mosquitto, topics: list[str]) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any], bool]] = queue.Queue()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_connect(c: mqtt.Client, *_: Any) -> None:
            c.subscribe([(t, 1) for t in topics])

        # Ready only once the broker confirmed the subscription: events are not retained, so one
        # published before the SUBACK would be lost to this listener.
        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, json.loads(m.payload), bool(m.retain))
        )
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def next(self, topic: str, predicate: Any = lambda p: True) -> tuple[dict[str, Any], bool]:
        while True:
            got_topic, payload, retained = self.messages.get(timeout=10)
            if got_topic == topic and predicate(payload):
                return payload, retained

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.broker
def test_button_to_event_to_retained_line_state(terminal: Terminal, mosquitto: Mosquitto) -> None:
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    services = TerminalServices(terminal, settings_for(mosquitto.port)).start()
    wait_for(services.subscribed, what="the terminal's link subscribed to the device signals")
    listener = Listener(mosquitto, [topics.andon, topics.line_state, topics.device_command("LIGHT-L1")])
    button = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ANDON-ST10", protocol=mqtt.MQTTv5)
    button.connect("127.0.0.1", mosquitto.port)
    button.loop_start()
    try:
        payload = signal(7, "andon_stop", device="ANDON-ST20-KEY", station="ST20", reason="SAFE")
        sent = button.publish(topics.device_signal("ANDON-ST20-KEY"), json.dumps(payload), qos=1)
        sent.wait_for_publish(10)
        event, retained = listener.next(topics.andon)
        assert not retained
        assert (event["action"], event["kind"], event["station"]) == ("raised", "stop", "ST20")
        state, _ = listener.next(topics.line_state, lambda p: p["state"] == "stopped")
        assert [a["id"] for a in state["active"]] == [event["id"]]
        stopped = topics.device_command("LIGHT-L1")
        light, _ = listener.next(stopped, lambda p: p["state"] == "stopped" and p["type"] == "light")
        buzzer, _ = listener.next(stopped, lambda p: p["state"] == "stopped" and p["type"] == "buzzer")
        assert (light["red"], buzzer["on"]) == ("on", True)
    finally:
        button.disconnect()
        button.loop_stop()
        listener.close()
        services.stop()

    # A board that connects later gets the line state at once: it is retained.
    late = Listener(mosquitto, [topics.line_state])
    try:
        state, retained = late.next(topics.line_state)
        assert retained and state["state"] == "stopped" and state["line"] == "L1"
    finally:
        late.close()


class RecordingPublisher:
    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.lights: list[tuple[str, dict[str, Any]]] = []

    def publish_line_state(self, payload: dict[str, Any]) -> None:
        self.states.append(payload)

    def publish_andon_event(self, payload: dict[str, Any]) -> None:
        self.events.append(payload)

    def publish_stack_light(self, device: str, payload: dict[str, Any]) -> None:
        self.lights.append((device, payload))


def test_published_state_follows_commits_even_when_the_wall_clock_steps_back(terminal: Terminal) -> None:
    from kanban_terminal.domain.andon import AndonKind
    from kanban_terminal.services.andon_publishing import connect_publisher

    clock = terminal.clock
    assert isinstance(clock, FakeClock)
    out = RecordingPublisher()
    connect_publisher(terminal, out)
    a = svc.raise_andon(terminal, AndonKind.CALL, "ST10", "HELP", source="keyboard").andon
    assert a is not None
    clock.step_wall(hours=-1)
    assert svc.cancel_andon(terminal, a.id, source="keyboard").ok
    assert [s["state"] for s in out.states] == ["call", "running"]
    assert [e["action"] for e in out.events] == ["raised", "cancelled"]
    lamps = [(d, p["amber"], p["green"]) for d, p in out.lights if p["type"] == "light"]
    assert lamps == [("LIGHT-L1", "blink", "on"), ("LIGHT-L1", "off", "on")]
    buzzers = [p["on"] for _d, p in out.lights if p["type"] == "buzzer"]
    assert buzzers == [False, False]  # a call never sounds the buzzer
