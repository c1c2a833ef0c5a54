"""A stop's downtime from elapsed time (pure domain): an anchor of this boot wins over the wall clock,
one of another boot counts the wall time since its save, none leaves the wall difference."""

from __future__ import annotations

from datetime import timedelta

from kanban_terminal.domain.andon import Andon, AndonKind, elapsed_since_raise
from kanban_terminal.domain.clocks import ElapsedAnchor
from tests.support.andon import T0

HOUR = timedelta(hours=1)
STOP = Andon("a1", AndonKind.STOP, "ST30", "SAFE", T0, "keyboard")
CALL = Andon("c1", AndonKind.CALL, "ST20", "QUAL", T0, "keyboard")


def anchor(key: str, boot: str, mono_s: float, elapsed_s: float = 0.0) -> ElapsedAnchor:
    return ElapsedAnchor(key, boot, mono_s, elapsed_s, T0)


def test_downtime_takes_elapsed_over_the_wall_difference() -> None:
    stepped = T0 + timedelta(minutes=4) + HOUR  # 4 min passed, the wall clock stepped +1 h
    assert STOP.downtime(stepped) == timedelta(minutes=64)  # what was recorded before
    assert STOP.downtime(stepped, timedelta(minutes=4)) == timedelta(minutes=4)
    assert STOP.downtime(T0 - HOUR) == timedelta(0)  # stepped back: never negative
    assert STOP.downtime(T0, timedelta(seconds=-3)) == timedelta(0)
    assert CALL.downtime(stepped, timedelta(minutes=4)) is None  # a call stops nothing
    assert CALL.running_time(stepped, timedelta(minutes=4)) == timedelta(minutes=4)


def test_an_anchor_of_this_boot_is_exact_whichever_process_wrote_it() -> None:
    kept, runner = anchor("andon-kept:a1", "b", 1060.0, 60.0), anchor("andon:a1", "b", 1000.0)
    now = T0 + 2 * HOUR  # whatever the wall clock says
    assert elapsed_since_raise([kept, runner], "b", 1240.0, now) == timedelta(seconds=240)
    assert elapsed_since_raise([None, runner], "b", 1240.0, now) == timedelta(seconds=240)


def test_another_boot_counts_the_wall_time_since_the_save_and_no_anchor_means_the_wall() -> None:
    other = anchor("andon:a1", "old-boot", 5000.0, 30.0)
    assert elapsed_since_raise([None, other], "b", 12.0, T0 + timedelta(minutes=4)) == timedelta(seconds=270)
    assert elapsed_since_raise([None, None], "b", 12.0, T0) is None
    # This boot, but read ahead of the present monotonic reading: another clock's (a test's) figure.
    assert elapsed_since_raise([anchor("andon:a1", "b", 9000.0)], "b", 12.0, T0) is None
