"""When a ready group of signals waits for more (runtime/inbound_linger.py): time comes in as
arguments, so each rule is shown on exact instants."""

from __future__ import annotations

from kanban_terminal.runtime.inbound_linger import FAST_GAPS, Linger


def arrivals(linger: Linger, start: float, gap: float, n: int) -> float:
    at = start
    for _ in range(n):
        linger.arrived(at)
        at += gap
    return at - gap


def test_a_quiet_line_never_waits() -> None:
    linger = Linger(linger_s=0.003, fast_gap_s=0.005)
    for n in range(20):  # 50 signals/s: each ready group is applied at its first drain
        linger.arrived(n * 0.02)
        assert not linger.hold(n * 0.02, 1, 256)
    assert linger.waits == 0 and linger.applied_at_once == 20 and linger.deadline is None


def test_the_first_signals_do_not_wait_before_enough_gaps_are_known() -> None:
    linger = Linger(linger_s=0.003, fast_gap_s=0.005)
    last = arrivals(linger, 0.0, 0.001, FAST_GAPS)  # FAST_GAPS arrivals: one gap short
    assert not linger.hold(last, 1, 256)
    linger.arrived(last + 0.001)
    assert linger.hold(last + 0.001, 1, 256)


def test_one_close_pair_on_a_slow_line_does_not_make_a_group_wait() -> None:
    linger = Linger(linger_s=0.003, fast_gap_s=0.005)
    last = arrivals(linger, 0.0, 0.02, 6)
    linger.arrived(last + 0.0005)  # two sensors fired together once
    assert not linger.hold(last + 0.0005, 2, 256)
    assert linger.waits == 0


def test_signals_coming_fast_wait_until_the_deadline_then_apply() -> None:
    linger = Linger(linger_s=0.003, fast_gap_s=0.005)
    last = arrivals(linger, 0.0, 0.002, 8)  # 500 signals/s
    assert linger.hold(last, 1, 256)  # the wait starts: paho's passes end by the deadline
    assert linger.deadline == last + 0.003
    linger.arrived(last + 0.002)
    assert linger.hold(last + 0.002, 2, 256)  # one more joined: still before the deadline
    assert not linger.hold(last + 0.003, 2, 256)  # the deadline: applied, with both
    assert linger.deadline is None and linger.waits == 1


def test_a_wait_ends_at_the_size_bound_or_when_the_link_cannot_bring_more() -> None:
    linger = Linger(linger_s=0.003, fast_gap_s=0.005)
    last = arrivals(linger, 0.0, 0.0001, 8)
    assert not linger.hold(last, 256, 256)  # a full group never waits
    assert linger.hold(last, 3, 256)
    assert not linger.hold(last + 0.001, 256, 256)  # full before the deadline: applied at once
    assert linger.hold(last + 0.002, 1, 256)
    assert not linger.hold(last + 0.0021, 1, 256, can_wait=False)  # the link went down
    assert not linger.hold(last + 0.0022, 1, 256, can_wait=False)
    assert linger.deadline is None


def test_a_linger_of_zero_turns_waiting_off() -> None:
    linger = Linger(linger_s=0.0)
    last = arrivals(linger, 0.0, 0.0001, 8)
    assert not linger.hold(last, 1, 256)
    assert linger.waits == 0
