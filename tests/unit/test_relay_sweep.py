"""The relay thread's sweep at a paced line (services/relay_sweep.py): it leaves the PUBACKs to the
inbound worker's groups and reads the outbox only when a row can be due, yet marks a PUBACK no
group took within MARK_WITHIN_S and retries a refused row when its pause ends.

The relay thread's step (`_step`) is called by hand at the times it would wake, on a fake
monotonic timer: counts of reads and of the relay's own marks, no waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.domain.scans import Intent
from kanban_terminal.services import relay as relay_module
from kanban_terminal.services.relay import RETRY_REFUSED_AFTER, Relay
from kanban_terminal.services.relay_sweep import MARK_WITHIN_S
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config
from tests.unit.test_relay import Broker, Clock, Timer, card_state, raise_requests, rows


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Terminal:
    config, _ = make_config(tmp_path, loops=2, cards=60, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count the calls of `owner.name`, which still runs (a spy, not a mock)."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def group(terminal: Terminal, relay: Relay, card: str) -> None:
    """What the inbound worker does for a one-signal group: the request raised, then inside its
    unit of work the PUBACKs meanwhile marked and, once committed, the new request published."""
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        outcome = record_scan(terminal, card, source="test", intent=Intent.EMPTY, uow=uow)
        assert outcome.request_id is not None and outcome.loop_id is not None
        relay.join_group(uow, [(outcome.request_id, outcome.loop_id)])


def test_at_a_paced_line_the_relay_thread_leaves_the_marks_to_the_groups_and_sleeps(
    terminal: Terminal, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the thread read the outbox and marked, in a commit of its own, the one PUBACK the
    # next group was about to take; waking each second to look instead cost 1.38 wake-ups a second.
    timer = Timer()
    broker = Broker()
    relay = Relay(terminal, broker, window=20, timer=timer)
    reads = counting(monkeypatch, relay_module.outbox_sql, "read_due")
    own_marks = counting(monkeypatch, relay, "_mark_published")
    relay._step()  # the thread's first step reads once
    assert len(reads) == 1
    next_wake = timer.now + relay.sweep.wait(timer.now, in_memory=False)
    steps = 0
    cards = [f"C{i:05d}" for i in range(1, 51)]
    for card in cards:  # 5 signals a second for 10 s
        group(terminal, relay, card)
        timer.now += 0.001
        relay.on_published(broker.sent[-1][0], True, "Success")
        timer.now += 0.199
        if timer.now >= next_wake:  # the relay thread's timed wake (nothing else woke it)
            relay._step()
            steps += 1
            in_memory = relay.inflight > 0 or bool(relay._acked) or bool(relay._answers.qsize())
            next_wake = timer.now + relay.sweep.wait(timer.now, in_memory)
    assert len(broker.sent) == 50  # each request went out once, from its group
    assert own_marks == []  # every PUBACK but the last marked by the next group
    assert steps <= 2 and len(reads) <= 3  # the 5 s read sweep, not a wake each second
    assert card_state(terminal, cards[-2]) == "sent"

    # The line goes quiet: the last PUBACK has no group to mark it. The thread's next wake (its
    # read, at most `read_period` away) finds it and marks it once MARK_WITHIN_S have passed.
    answered = timer.now - 0.199
    assert next_wake - timer.now <= relay.sweep.read_period
    relay._step()
    assert card_state(terminal, cards[-1]) == "queued"
    assert relay.sweep.wait(timer.now, in_memory=True) <= answered + MARK_WITHIN_S - timer.now + 1e-9
    timer.now = answered + MARK_WITHIN_S
    relay._step()
    assert len(own_marks) == 1
    assert card_state(terminal, cards[-1]) == "sent"
    assert rows(terminal)[cards[-1]] == ("published", 1)


def test_a_refused_row_is_read_again_when_its_pause_ends_not_at_the_next_read_sweep(
    terminal: Terminal, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = Timer()
    broker = Broker()
    relay = Relay(terminal, broker, window=20, timer=timer, republish_after=timedelta(hours=1))
    raise_requests(terminal, ["C00001"])
    relay._step()
    relay.on_published(broker.sent[0][0], False, "Quota exceeded")
    relay._step()
    assert len(broker.sent) == 1
    reads = counting(monkeypatch, relay_module.outbox_sql, "read_due")
    timer.now += 0.5  # the read sweep (5 s) is not due
    relay._step()
    assert reads == [] and len(broker.sent) == 1  # a wake that finds nothing due reads no table
    clock.now += RETRY_REFUSED_AFTER
    relay._step()
    assert len(reads) == 1 and len(broker.sent) == 2  # the pause is over: read and tried again


def test_an_unanswered_publish_is_read_again_when_it_counts_as_lost(
    terminal: Terminal, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = Timer()
    broker = Broker()
    relay = Relay(terminal, broker, window=20, timer=timer, republish_after=timedelta(hours=1))
    raise_requests(terminal, ["C00001"])
    relay._step()
    reads = counting(monkeypatch, relay_module.outbox_sql, "read_due")
    clock.now += timedelta(minutes=59)
    timer.now += 0.5
    relay._step()
    assert reads == [] and len(broker.sent) == 1
    clock.now += timedelta(minutes=1, seconds=1)  # no PUBACK for republish_after: paho lost it
    relay._step()
    assert len(broker.sent) == 2 and broker.sent[1][1]["card"] == "C00001"


def test_with_no_group_marking_the_relay_thread_marks_at_once(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A drain (no signal groups): left for the 1 s deadline, its marks held the PUBACKed rows in the
    # outbox reads and the drain ran at 2,500 instead of ~6,200 req/s (bench/relay_drain.py).
    timer = Timer()
    broker = Broker()
    relay = Relay(terminal, broker, window=20, timer=timer)
    own_marks = counting(monkeypatch, relay, "_mark_published")
    raise_requests(terminal, ["C00001", "C00002", "C00003"])
    relay._step()
    assert len(broker.sent) == 3
    for mid, _m in broker.sent:
        relay.on_published(mid, True, "Success")
    relay._step()  # the same instant: no deadline has passed
    assert len(own_marks) == 1
    assert [card_state(terminal, c) for c in ("C00001", "C00002", "C00003")] == ["sent"] * 3


def test_a_stop_right_after_the_last_puback_marks_it(terminal: Terminal, clock: Clock) -> None:
    """The last scan of a shift, then the terminal closed within the ~6 s a quiet line's mark may
    wait: the PUBACK is marked on the way out, so the request is not published again at start."""
    timer = Timer()
    broker = Broker()
    relay = Relay(terminal, broker, window=20, timer=timer)
    relay._step()
    for card in ("C00001", "C00002"):  # a paced line: each group marks the PUBACK before it
        group(terminal, relay, card)
        relay.on_published(broker.sent[-1][0], True, "Success")
        timer.now += 0.2
    relay._step()  # within MARK_WITHIN_S: left for a next group that never comes
    assert card_state(terminal, "C00002") == "queued"
    relay.stop()  # never started: as after its thread has ended
    assert card_state(terminal, "C00002") == "sent"
    assert rows(terminal)["C00002"] == ("published", 1)
