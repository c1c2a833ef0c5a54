"""Live priority during a drain: a request raised now overtakes other loops' backlog, never its own
loop's older requests, and the backlog's share of the window follows the broker's answer rate."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.services.relay import Relay
from kanban_terminal.services.relay_window import MIN_BACKLOG_INFLIGHT
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config
from tests.unit.test_relay import Broker, Clock, Timer, raise_requests


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Terminal:
    # LP0 = C00001..C00030, LP1 = C00031..C00060, LP2 = C00061..C00090
    config, _ = make_config(tmp_path, loops=3, cards=30, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def cards(first: int, last: int) -> list[str]:
    return [f"C{i:05d}" for i in range(first, last + 1)]


def assert_seq_order_per_loop(sent: list[tuple[int, dict]]) -> None:
    """The protocol's promise: within a loop, loop_seq only ever goes up on the wire."""
    last: dict[str, int] = defaultdict(int)
    for _mid, m in sent:
        assert m["loop_seq"] > last[m["loop"]], f"{m['loop']} seq {m['loop_seq']} after {last[m['loop']]}"
        last[m["loop"]] = m["loop_seq"]


def test_a_live_request_goes_ahead_of_other_loops_backlog_but_after_its_own(
    terminal: Terminal, clock: Clock
) -> None:
    raise_requests(terminal, cards(1, 25) + cards(31, 33))  # the outage's backlog: LP0 x 25, LP1 x 3
    clock.now += timedelta(minutes=5)
    raise_requests(terminal, ["C00034"])  # raised now, in LP1 behind LP1's three older requests
    broker = Broker()
    relay = Relay(terminal, broker, window=10)
    relay.run_once()
    sent = [m["card"] for _, m in broker.sent]
    assert sent[:4] == ["C00031", "C00032", "C00033", "C00034"]  # its loop first, in seq order
    assert sent[4:] == cards(1, 6)  # then the backlog, oldest first
    assert_seq_order_per_loop(broker.sent)


def test_without_live_requests_the_backlog_goes_oldest_first(terminal: Terminal, clock: Clock) -> None:
    raise_requests(terminal, cards(31, 33) + cards(1, 5))
    clock.now += timedelta(minutes=5)
    broker = Broker()
    Relay(terminal, broker, window=10).run_once()
    assert [m["card"] for _, m in broker.sent] == cards(31, 33) + cards(1, 5)


def test_live_loops_take_turns_so_a_deep_one_cannot_hold_back_another(
    terminal: Terminal, clock: Clock
) -> None:
    raise_requests(terminal, cards(1, 20))  # LP0's backlog
    clock.now += timedelta(minutes=5)
    raise_requests(terminal, ["C00021", "C00061"])  # live in LP0 (deep) and LP2 (empty)
    broker = Broker()
    relay = Relay(terminal, broker, window=4)
    relay.run_once()
    sent = [m["card"] for _, m in broker.sent]
    assert "C00061" in sent[:2]
    assert_seq_order_per_loop(broker.sent)


def test_the_backlog_share_of_the_window_follows_the_broker_answer_rate(tmp_path: Path, clock: Clock) -> None:
    config, _ = make_config(tmp_path, loops=4, cards=200, sensors=0)  # LP3 = C00601..C00800
    terminal = Terminal.open(config, tmp_path / "data", clock=clock)
    try:
        raise_requests(terminal, cards(1, 600))  # LP0..LP2
        clock.now += timedelta(minutes=5)
        broker = Broker()
        timer = Timer()
        relay = Relay(terminal, broker, window=60, timer=timer)

        def answer_all_in_flight() -> None:
            for mid, _m in broker.sent[-relay.inflight :]:
                relay.on_published(mid, True, "Success")

        relay.run_once()
        # No answer yet: the backlog may not fill the window, so a live request does not queue
        # behind 60 backlog publishes at a broker of unknown speed.
        assert relay.inflight == MIN_BACKLOG_INFLIGHT
        raise_requests(terminal, ["C00601"])
        relay.run_once()
        assert broker.sent[-1][1]["card"] == "C00601"  # a live row is never held by that limit
        assert relay.inflight == MIN_BACKLOG_INFLIGHT + 1
        # A broker answering every 5 ms (thousands a second) soon gets the whole window.
        steps = 0
        while relay.inflight < 60 and steps < 50:
            answer_all_in_flight()
            timer.now += 0.005
            relay.run_once()
            steps += 1
        assert relay.inflight == 60
        # The broker stalls (a slow disk): one answer in the last seconds does not refill the
        # window with backlog, but a live request still goes straight out.
        timer.now += 2
        relay.on_published(broker.sent[-60][0], True, "Success")
        relay.run_once()
        assert relay.inflight == 59
        raise_requests(terminal, ["C00602"])
        relay.run_once()
        assert relay.inflight == 60 and broker.sent[-1][1]["card"] == "C00602"
        assert_seq_order_per_loop(broker.sent)
    finally:
        terminal.close()
