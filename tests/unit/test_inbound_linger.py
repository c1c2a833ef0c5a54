"""When a ready group of signals waits for more (runtime/inbound_linger.py): time comes in as
arguments, so each rule is shown on exact instants (milliseconds written as integers / 1000)."""

from __future__ import annotations

from kanban_terminal.runtime.inbound_linger import FAST_GAPS, Linger

MS = 0.001


def arrivals(linger: Linger, start: float, gap: float, n: int) -> float:
    """`n` arrivals `gap` apart from `start`; returns the last one's time."""
    at = start
    for _ in range(n):
        linger.arrived(at)
        at += gap
    return at - gap


def test_a_quiet_line_never_waits() -> None:
    linger = Linger(linger_s=3 * MS)
    for n in range(20):  # 50 signals/s: each ready group is applied at its first drain
        linger.arrived(n * 20 * MS)
        assert not linger.hold(n * 20 * MS, 1, 256)
    assert linger.waits == 0 and linger.applied_at_once == 20 and linger.deadline is None


def test_the_first_signals_do_not_wait_before_enough_gaps_are_known() -> None:
    linger = Linger(linger_s=3 * MS)
    last = arrivals(linger, 0.0, 1 * MS, FAST_GAPS)  # FAST_GAPS arrivals: one gap short
    assert not linger.hold(last, 1, 256)
    linger.arrived(last + 1 * MS)
    assert linger.hold(last + 1 * MS, 1, 256)


def test_one_close_pair_on_a_slow_line_does_not_make_a_group_wait() -> None:
    linger = Linger(linger_s=3 * MS)
    last = arrivals(linger, 0.0, 20 * MS, 6)
    linger.arrived(last + 0.5 * MS)  # two sensors fired together once
    assert not linger.hold(last + 0.5 * MS, 2, 256)
    assert linger.waits == 0


def test_signals_slower_than_the_linger_never_wait() -> None:
    linger = Linger(linger_s=3 * MS)
    last = arrivals(linger, 0.0, 4 * MS, 8)  # 250/s: the next would come after the deadline
    assert not linger.hold(last, 1, 256)
    assert linger.waits == 0


def test_at_500_per_s_a_group_waits_for_the_next_signal_only() -> None:
    linger = Linger(linger_s=3 * MS)
    t = arrivals(linger, 0.0, 2 * MS, 8)
    assert linger.hold(t, 1, 256)  # the next is due at +2 ms, before the deadline at +3 ms
    assert linger.deadline == t + 3 * MS
    assert linger.hold(t + 1 * MS, 1, 256)  # a pass woken by something else: still due in time
    linger.arrived(t + 2 * MS)
    # The one after is due at +4 ms, past the deadline: applied now, with both, not at +3 ms.
    assert not linger.hold(t + 2 * MS, 2, 256)
    assert linger.deadline is None and linger.waits == 1


def test_at_1000_per_s_a_group_takes_what_comes_before_the_deadline() -> None:
    linger = Linger(linger_s=3 * MS)
    t = arrivals(linger, 0.0, 1 * MS, 8)
    assert linger.hold(t, 1, 256)
    linger.arrived(t + 1 * MS)
    assert linger.hold(t + 1 * MS, 2, 256)
    linger.arrived(t + 2 * MS)
    assert not linger.hold(t + 2 * MS, 3, 256)  # the next is due at the deadline: no later wait


def test_a_wait_ends_at_the_deadline_when_the_signals_stop() -> None:
    linger = Linger(linger_s=3 * MS)
    t = arrivals(linger, 0.0, 0.1 * MS, 8)  # read in a bunch
    assert linger.hold(t, 1, 256)
    assert linger.hold(t + 2.9 * MS, 1, 256)
    assert not linger.hold(t + 3 * MS, 1, 256)  # the deadline, whatever was expected
    assert linger.deadline is None


def test_a_wait_ends_at_the_size_bound_or_when_the_link_cannot_bring_more() -> None:
    linger = Linger(linger_s=3 * MS)
    t = arrivals(linger, 0.0, 0.1 * MS, 8)
    assert not linger.hold(t, 256, 256)  # a full group never waits
    assert linger.hold(t, 3, 256)
    assert not linger.hold(t + 1 * MS, 256, 256)  # full before the deadline: applied at once
    assert linger.hold(t + 1 * MS, 1, 256)
    assert not linger.hold(t + 1.1 * MS, 1, 256, can_wait=False)  # the link went down
    assert not linger.hold(t + 1.2 * MS, 1, 256, can_wait=False)
    assert linger.deadline is None


def test_a_linger_of_zero_turns_waiting_off() -> None:
    linger = Linger(linger_s=0.0)
    t = arrivals(linger, 0.0, 0.1 * MS, 8)
    assert not linger.hold(t, 1, 256)
    assert not linger.hold(t + 1 * MS, 1, 256)  # the next signal overdue: still no wait of 0 s
    assert linger.waits == 0
