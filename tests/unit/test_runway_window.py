"""The runway window kept between passes (domain/runway_window.py) gives the runway every time gives.

The window takes bin-empty times in any order (a buffered signal logged late with its older time),
moves on in steps, and hands over only the first, the last few and the count; the runway assessed
from that must be the one assessed from every time in the window (what the screen's read computes),
for any settings of `recent_bins` and `min_bins`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.runway import Arrival, LoopSupply, RunwaySettings, assess, consumption_rate
from kanban_terminal.domain.runway_window import EmptiesWindow

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
WINDOW = timedelta(hours=8)


def supply(empties: tuple[datetime, ...], elided: int = 0) -> LoopSupply:
    return LoopSupply(
        "L1", 10, 3, empties, (Arrival(T0 + timedelta(hours=30), 10),), 40.0, timedelta(hours=1), elided
    )


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 30 * 3600 * 1000), max_size=60),
    late=st.lists(st.integers(0, 30 * 3600 * 1000), max_size=5),
    steps=st.lists(st.integers(0, 6 * 3600 * 1000), min_size=1, max_size=5),
    recent=st.integers(1, 5),
    min_bins=st.integers(1, 6),
    slack=st.sampled_from([0, 1, 60_000, 3_600_000]),
)
def test_the_window_gives_the_runway_of_every_time_in_it(
    offsets: list[int], late: list[int], steps: list[int], recent: int, min_bins: int, slack: int
) -> None:
    """`slack`: the window kept from a little before the reader's start (another reader's clock)."""
    rules = RunwaySettings(window=WINDOW, recent_bins=recent, min_bins=min_bins)
    logged: list[datetime] = []
    now = T0 + timedelta(hours=8)
    keep = WINDOW + timedelta(milliseconds=slack)
    window = EmptiesWindow(now - keep, reserve={"RED"})
    rows = sorted(offsets) + late  # in time order, then a few logged late with older times
    for i, ms in enumerate(rows):
        at = T0 + timedelta(milliseconds=ms)
        logged.append(at)
        window.add("L1", "C1", at)
        window.add("L1", "RED", at)  # a red card's empty: never counted
        if i % 7 == 6 and steps:  # the clock moves on between reads
            now += timedelta(milliseconds=steps.pop())
            window.move_to(now - keep)
    for step in steps:
        now += timedelta(milliseconds=step)
        window.move_to(now - keep)
    every = tuple(sorted(at for at in logged if at >= now - WINDOW))
    times, elided = window.empties_of("L1", now - WINDOW, now, max(2, recent))
    assert window.count("L1") == len([at for at in logged if at >= now - keep])
    assert len(times) + elided == len(every)
    assert consumption_rate(times, now, rules, elided) == consumption_rate(every, now, rules)
    assert assess(supply(times, elided), now, rules) == assess(supply(every), now, rules)


def test_a_window_does_not_start_earlier() -> None:
    window = EmptiesWindow(T0, reserve=())
    window.add("L1", "C1", T0 + timedelta(minutes=1))
    window.add("L1", "C1", T0 - timedelta(minutes=1))  # before the window: not kept
    assert window.count("L1") == 1
    with pytest.raises(ValueError):
        window.move_to(T0 - timedelta(seconds=1))


def test_what_left_the_window_is_dropped_and_the_rest_elided() -> None:
    window = EmptiesWindow(T0, reserve=())
    for m in range(10):
        window.add("L1", "C1", T0 + timedelta(minutes=10 * m))
    window.move_to(T0 + timedelta(minutes=25))  # the first three leave
    now = T0 + timedelta(minutes=85)  # the last one is after now (a clock behind the log)
    since = T0 + timedelta(minutes=25)
    times, elided = window.empties_of("L1", since, now, 2)
    minutes = [int((t - T0).total_seconds() // 60) for t in times]
    assert minutes == [30, 70, 80, 90] and elided == 3  # 40, 50 and 60 left out
    assert window.empties_of("L2", since, now, 2) == ((), 0)
    # Asked from a later start (the window kept a little before a reader's): only from there on.
    times, elided = window.empties_of("L1", T0 + timedelta(minutes=55), now, 2)
    assert [int((t - T0).total_seconds() // 60) for t in times] == [60, 70, 80, 90] and elided == 0
    times, elided = window.empties_of("L1", T0 + timedelta(minutes=95), now, 2)
    assert times == () and elided == 0
    with pytest.raises(ValueError):
        window.empties_of("L1", T0, now, 2)
