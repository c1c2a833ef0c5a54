"""The outbox relay against a real SQLite file and a publisher double that answers like a broker."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.relay import Relay
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Timer:
    """Monotonic seconds the test moves by hand (the relay's answer-rate and sweep clocks)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Records publishes; the test decides when and how the broker answers each mid."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[int, dict]] = []
        self.raw: dict[int, bytes] = {}
        self._mid = 0

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        assert qos == 1 and not retain and topic == "kanban/v1/S1/L1/requests"
        self._mid += 1
        self.sent.append((self._mid, json.loads(payload)))
        self.raw[self._mid] = payload
        return self._mid


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Terminal:
    config, _ = make_config(tmp_path, loops=2, cards=30, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def raise_requests(terminal: Terminal, cards: list[str]) -> None:
    for card in cards:
        assert record_scan(terminal, card, source="test", intent=Intent.EMPTY).accepted


def rows(terminal: Terminal) -> dict[str, tuple[str, int]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        q = "SELECT card_id, publish_state, publish_count FROM replenishment_request"
        return {card: (state, n) for card, state, n in con.execute(q)}
    finally:
        con.close()


def card_state(terminal: Terminal, card: str) -> str:
    con = sqlite3.connect(terminal.db.path)
    try:
        return str(con.execute("SELECT state FROM card WHERE id = ?", (card,)).fetchone()[0])
    finally:
        con.close()


def test_window_order_and_success_puback(terminal: Terminal) -> None:
    cards = [f"C{i:05d}" for i in range(1, 26)]
    raise_requests(terminal, cards)
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.run_once()
    # paho never holds more than the window; the rest waits in SQLite.
    assert len(broker.sent) == 20 and relay.inflight == 20
    assert [m["card"] for _, m in broker.sent] == cards[:20]
    assert [m["loop_seq"] for _, m in broker.sent] == list(range(1, 21))
    for mid, _ in broker.sent:
        relay.on_published(mid, True, "Success")
    relay.run_once()
    assert len(broker.sent) == 25
    assert rows(terminal)["C00001"] == ("published", 1)
    assert rows(terminal)["C00021"] == ("pending", 0)
    assert card_state(terminal, "C00001") == "sent"
    assert relay.state().unsent == 5


def test_a_refused_publish_stays_pending_and_is_shown(terminal: Terminal, clock: Clock) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    relay = Relay(terminal, broker, window=5)
    relay.run_once()
    relay.on_published(broker.sent[0][0], False, "Not authorized")
    relay.run_once()
    assert rows(terminal)["C00001"] == ("pending", 0)
    assert card_state(terminal, "C00001") == "queued"
    assert "Not authorized" in relay.state().last_error
    assert len(broker.sent) == 1  # held back, not hammered
    clock.now += timedelta(seconds=31)
    relay.run_once()
    assert len(broker.sent) == 2 and broker.sent[1][1]["id"] == broker.sent[0][1]["id"]


def test_no_publishing_while_offline_and_republish_with_the_same_id(terminal: Terminal, clock: Clock) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    broker.connected = False
    relay = Relay(terminal, broker, window=5, republish_after=timedelta(seconds=60))
    relay.run_once()
    assert broker.sent == []
    broker.connected = True
    relay.run_once()
    relay.on_published(broker.sent[0][0], True, "Success")
    relay.run_once()
    assert len(broker.sent) == 1
    # No upstream answer within the timeout: the same request (same UUID) goes out again.
    clock.now += timedelta(seconds=61)
    relay.run_once()
    assert len(broker.sent) == 2
    first, second = broker.sent[0][1], broker.sent[1][1]
    assert first["id"] == second["id"] and second["attempt"] == 2
    # And after a reconnect, whatever upstream has not answered goes out again.
    relay.on_published(broker.sent[1][0], True, "Success")
    relay.run_once()
    clock.now += timedelta(seconds=1)
    relay.on_connected(session_present=False)
    relay.run_once()
    assert len(broker.sent) == 3 and broker.sent[2][1]["id"] == first["id"]


def test_request_payload_is_the_documented_one(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00031"])
    broker = Broker()
    Relay(terminal, broker).run_once()
    message = broker.sent[0][1]
    assert set(message) == {
        "v", "id", "site", "line", "terminal", "loop", "loop_seq", "card", "part", "quantity",
        "station", "point_of_use", "source", "raised_at", "due_at", "attempt",
    }  # fmt: skip
    assert message["v"] == 1 and message["loop"] == "LP1" and message["card"] == "C00031"
    assert message["raised_at"] == "2026-11-23T10:00:00.000Z"


def test_the_relays_request_is_valid_under_the_wire_schema_the_peer_reads(terminal: Terminal) -> None:
    """The relay (a service) writes the request without importing an adapter; the wire schema
    (adapters/wire, docs/schema/request.json) is what every consumer validates it with, strictly."""
    from kanban_terminal.adapters.wire import MAX_REQUEST_BYTES, RequestMessage, validate

    raise_requests(terminal, ["C00031"])
    broker = Broker()
    Relay(terminal, broker).run_once()
    mid, _ = broker.sent[0]
    parsed = validate(RequestMessage, broker.raw[mid], MAX_REQUEST_BYTES)
    assert isinstance(parsed, RequestMessage), parsed
    assert parsed.card == "C00031" and parsed.attempt == 1


def test_a_puback_batch_logs_one_chained_row_per_card(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001", "C00002", "C00031"])
    broker = Broker()
    relay = Relay(terminal, broker, window=5)
    relay.run_once()
    for mid, _ in broker.sent:
        relay.on_published(mid, True, "Success")
    relay.run_once()
    con = sqlite3.connect(terminal.db.path)
    try:
        logged = con.execute(
            "SELECT card_id, from_state, to_state, source FROM card_log WHERE detail = 'broker acknowledged'"
        ).fetchall()
    finally:
        con.close()
    assert sorted(logged) == [(c, "queued", "sent", "relay") for c in ("C00001", "C00002", "C00031")]
    assert verify_log(terminal.db).ok  # the batch insert extends the same hash chain verify-log checks


@pytest.mark.parametrize(
    "refused, lost", [({"C00002"}, set()), (set(), {"C00003"}), ({"C00002"}, {"C00003"})]
)
def test_backlog_rows_refused_or_lost_behind_later_rows_still_go_out_again(
    terminal: Terminal, clock: Clock, refused: set[str], lost: set[str]
) -> None:
    cards = [f"C{i:05d}" for i in range(1, 11)]
    raise_requests(terminal, cards)
    clock.now += timedelta(minutes=5)  # an outage's backlog: no row is live any more
    broker = Broker()
    relay = Relay(terminal, broker, window=3, republish_after=timedelta(seconds=60))
    answered: set[int] = set()

    def answer_until_quiet(refuse: set[str], ignore: set[str]) -> None:
        while True:
            relay.run_once()
            due = [
                (mid, m["card"]) for mid, m in broker.sent if mid not in answered and m["card"] not in ignore
            ]
            if not due:
                return
            for mid, card in due:
                relay.on_published(mid, card not in refuse, "Not authorized" if card in refuse else "Success")
                answered.add(mid)

    answer_until_quiet(refused, lost)  # the rows stuck near the start must not stop the ones after
    assert sorted(m["card"] for _, m in broker.sent) == cards
    clock.now += timedelta(seconds=61)  # the refusal's pause and the lost PUBACK's timeout are over
    answer_until_quiet(set(), set())
    # The stuck rows again, and every other row once more because upstream never answered it.
    assert Counter(m["card"] for _, m in broker.sent) == dict.fromkeys(cards, 2)
    assert relay.state().unsent == 0


def test_a_peer_that_subscribed_anew_gets_again_what_was_marked_and_what_was_in_flight(
    terminal: Terminal, clock: Clock
) -> None:
    """adapters/peer_watch.py: every unanswered request goes again, the one paho still held too,
    once its PUBACK is marked (its mark stamps it after the cutoff), and each only once."""
    raise_requests(terminal, ["C00001", "C00002"])
    broker = Broker()
    relay = Relay(terminal, broker, window=5, republish_after=timedelta(seconds=60))
    relay.run_once()
    relay.on_published(broker.sent[0][0], True, "Success")
    relay.run_once()
    assert rows(terminal)["C00001"] == ("published", 1) and rows(terminal)["C00002"] == ("pending", 0)
    clock.now += timedelta(seconds=1)
    relay.republish_unanswered()
    relay.run_once()
    assert [m["card"] for _, m in broker.sent[2:]] == ["C00001"]  # C00002 is still with paho
    clock.now += timedelta(seconds=1)
    relay.on_published(broker.sent[1][0], True, "Success")  # C00002 marked after the cutoff
    relay.on_published(broker.sent[2][0], True, "Success")
    relay.run_once()
    clock.now += timedelta(seconds=1)
    relay.run_once()
    assert [m["card"] for _, m in broker.sent[2:]] == ["C00001", "C00002"]
    relay.on_published(broker.sent[3][0], True, "Success")
    for _ in range(3):
        clock.now += timedelta(seconds=1)
        relay.run_once()
    assert len(broker.sent) == 4  # no third copy: the cutoff moved once, for C00002's mark
