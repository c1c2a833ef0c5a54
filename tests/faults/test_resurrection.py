"""R6: stale messages a SIGKILLed broker resurrects from its last snapshot have no second effect.

mosquitto writes its persistence file only every `autosave_interval` (30 min by default) or on
SIGUSR1. Killed between two saves, it restarts from the old snapshot: messages it had already
delivered and seen acknowledged are queued again and redelivered (reliability.md, finding on
"resurrection"). Here the snapshot holds upstream's "accepted" answers queued for the terminal
while it was away; the terminal applies them, the broker is SIGKILLed and restarted, the same
answers arrive a second time, and the card log must still show each request accepted exactly once
and every card where it was. A witness client with its own persistent session proves the broker
really did redeliver: without that the test would pass for the wrong reason.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.faults.support import query
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, settings_for, wait_for

pytestmark = pytest.mark.broker
TOPICS = LineTopics("S1", "L1")
REQUESTS = 12


class SnapshotBroker(Mosquitto):
    """Persistence on with mosquitto's default autosave: the store is written on SIGUSR1 only."""

    def _config(self) -> str:
        return super()._config() + f"persistence true\npersistence_location {self.data}/\n"

    def snapshot(self) -> None:
        store = self.data / "mosquitto.db"
        before = store.stat().st_mtime_ns if store.exists() else 0
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: store.exists() and store.stat().st_mtime_ns != before, what="snapshot written")


class Witness:
    """A client with a persistent session on the status topic, counting what it is given."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: Counter[str] = Counter()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="witness", protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.seen.update([json.loads(msg.payload)["id"]])
        self.client.on_subscribe = lambda *_a: setattr(self, "subscribed", True)
        self.subscribed = False

    def connect(self) -> None:
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, 5, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.subscribed:
            self.client.subscribe(TOPICS.status, 1)
            wait_for(lambda: self.subscribed, what="witness subscribed")

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _status(request_id: str, card: str, stage: str) -> tuple[str, bytes]:
    payload = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "request_id": request_id,
        "status": stage,
        "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eta": None,
        "card": card,
        "by": "test-upstream",
    }
    return TOPICS.status, json.dumps(payload).encode()


def test_answers_resurrected_by_a_killed_broker_change_nothing(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path, loops=2, cards=REQUESTS, sensors=0)
    terminal = Terminal.open(config, tmp_path / "data")
    broker = SnapshotBroker(tmp_path / "broker", plant=False).start()
    settings = settings_for(broker.port)
    witness = Witness(broker.port)
    try:
        witness.connect()
        witness.disconnect()
        # Requests raised and sent; then the terminal goes away (its session stays on the broker).
        cards = [card for loop in config.loops for card in loop.card_id_list()][:REQUESTS]
        raised = {}
        with TerminalServices(terminal, settings) as services:
            wait_for(services.subscribed, what="terminal subscribed")
            for card in cards:
                outcome = record_scan(terminal, card, source="test", intent=Intent.EMPTY)
                assert outcome.accepted, outcome
                raised[outcome.request_id] = card
            wait_for(lambda: services.link_state().unsent == 0, what="requests published")
        # Upstream answers while the terminal is away: queued in its session, then snapshotted.
        publish_raw(broker.port, [_status(rid, card, "accepted") for rid, card in raised.items()])
        broker.snapshot()
        witness.connect()
        wait_for(lambda: len(witness.seen) == REQUESTS, what="witness got the answers")
        witness.disconnect()
        with TerminalServices(terminal, settings) as services:
            wait_for(services.subscribed, what="terminal back")
            accepted_sql = "SELECT request_id FROM card_log WHERE event = 'accepted'"
            wait_for(lambda: len(query(terminal.db.path, accepted_sql)) == REQUESTS, what="answers applied")
            # Killed after delivering them: the restart brings back the snapshot, answers included.
            broker.kill()
            broker.start()
            witness.connect()
            wait_for(lambda: sum(witness.seen.values()) >= 2 * REQUESTS, what="witness got them again")
            witness.disconnect()
            wait_for(services.subscribed, timeout=30, what="terminal reconnected")
            # A later answer still moves the cards: the resurrected ones went through the pipeline first.
            publish_raw(broker.port, [_status(rid, card, "picked") for rid, card in raised.items()])
            picked_sql = "SELECT count(*) FROM card WHERE state = 'picked'"
            wait_for(lambda: query(terminal.db.path, picked_sql)[0][0] == REQUESTS, what="picked applied")
            assert services.link is not None and services.link.callback_errors == 0
        assert set(witness.seen.values()) == {2}, "the broker did not resurrect every answer"
        accepted = Counter(rid for (rid,) in query(terminal.db.path, accepted_sql))
        assert set(accepted) == set(raised) and set(accepted.values()) == {1}
        picked = Counter(
            rid for (rid,) in query(terminal.db.path, accepted_sql.replace("accepted", "picked"))
        )
        assert set(picked.values()) == {1} and len(picked) == REQUESTS
    finally:
        broker.stop()
        terminal.close()
