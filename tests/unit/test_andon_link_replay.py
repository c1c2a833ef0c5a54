"""The andon publisher's replay rule: notices the broker acknowledged just before it went down go out
again after the reconnect, counted back from its last answer however long the outage lasted."""

from __future__ import annotations

import json

from kanban_terminal.adapters.andon_link import LinkAndonPublisher
from kanban_terminal.topics import LineTopics

TOPICS = LineTopics("S1", "L1")


def notice(name: str) -> dict[str, object]:
    """A valid andon event (the publisher writes it through its wire model); `id` tells them apart."""
    return {
        "v": 1, "line": "L1", "terminal": "L1-T1", "action": "raised", "at": "2026-11-23T10:00:00.000Z",
        "actor": None, "id": name, "kind": "call", "station": "ST1", "reason": "HELP",
        "reason_label": "Help needed", "colour": "yellow", "state": "raised",
        "raised_at": "2026-11-23T10:00:00.000Z", "acknowledged_by": None, "card": None, "tiers_fired": [],
    }  # fmt: skip


class FakeLink:
    connected = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.last_answer_at: float | None = None
        self.answered_before_loss: float | None = None

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        self.sent.append((topic, payload))
        return len(self.sent)


def test_notices_from_just_before_the_loss_are_replayed_after_a_long_outage() -> None:
    link, now = FakeLink(), [100.0]
    publisher = LinkAndonPublisher(link, TOPICS, replay_s=10, timer=lambda: now[0])
    for at, action in ((100.0, "old"), (195.0, "late"), (199.0, "last")):
        now[0] = at
        publisher.publish_andon_event(notice(action))
        link.last_answer_at = at  # the broker answers each at once
    link.answered_before_loss = 199.0  # then it dies; the link notices and reconnects minutes later
    now[0] = 400.0
    publisher.publish_andon_event(notice("during"))  # paho holds this one and sends it itself
    link.sent.clear()
    assert publisher.replay_after_reconnect() == 2
    assert [json.loads(p)["id"] for _, p in link.sent] == ["late", "last"]
    assert {topic for topic, _ in link.sent} == {TOPICS.andon}


def test_no_replay_on_the_first_connect_or_when_turned_off() -> None:
    link = FakeLink()
    publisher = LinkAndonPublisher(link, TOPICS, replay_s=10, timer=lambda: 5.0)
    publisher.publish_andon_event(notice("raised"))
    assert publisher.replay_after_reconnect() == 0  # never lost: nothing to replay
    off = LinkAndonPublisher(link, TOPICS, replay_s=0, timer=lambda: 5.0)
    off.publish_andon_event(notice("raised"))
    link.answered_before_loss = 5.0
    assert off.replay_after_reconnect() == 0
