"""Elapsed time across restarts and reboots, and telling a wall-clock step from time passing
(domain/clocks.py), on hand-made readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kanban_terminal.domain.clocks import (
    ClockReading,
    ElapsedAnchor,
    elapsed_from,
    first_anchor,
    re_anchor,
    wall_step,
)

T0 = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


def test_same_boot_counts_the_monotonic_clock_whatever_the_wall_says() -> None:
    anchor = ElapsedAnchor("andon:a", "boot-1", 1000.0, 30.0, T0)
    for wall in (T0 - timedelta(hours=1), T0, T0 + timedelta(hours=1)):  # steps do not matter
        assert elapsed_from(anchor, "boot-1", 1100.0, wall) == timedelta(seconds=130)


def test_after_a_reboot_the_stored_elapsed_plus_the_wall_time_since_never_negative() -> None:
    anchor = ElapsedAnchor("andon:a", "boot-1", 1000.0, 30.0, T0)
    assert elapsed_from(anchor, "boot-2", 5.0, T0 + timedelta(minutes=2)) == timedelta(seconds=150)
    assert elapsed_from(anchor, "boot-2", 5.0, T0 - timedelta(hours=1)) == timedelta(seconds=30)
    moved = re_anchor(anchor, "boot-2", 5.0, T0 + timedelta(minutes=2))  # from here, boot-2's clock
    assert (moved.boot_id, moved.mono_s, moved.elapsed_s) == ("boot-2", 5.0, 150.0)
    assert elapsed_from(moved, "boot-2", 65.0, T0) == timedelta(seconds=210)


def test_a_timer_first_seen_starts_from_the_wall_time_since_its_start() -> None:
    assert first_anchor("k", T0, "b", 7.0, T0 + timedelta(seconds=3)).elapsed_s == 3.0
    assert first_anchor("k", T0, "b", 7.0, T0 - timedelta(hours=1)).elapsed_s == 0.0


@pytest.mark.parametrize(
    ("wall_s", "mono_s", "step"),
    [(1.0, 1.0, None), (1.3, 1.0, None), (3601.0, 1.0, 3600.0), (-3599.0, 1.0, -3600.0), (0.0, 1.9, None)],
)
def test_a_step_is_what_the_wall_moved_beyond_the_monotonic_clock(
    wall_s: float, mono_s: float, step: float | None
) -> None:
    before = ClockReading(T0, 100.0)
    after = ClockReading(T0 + timedelta(seconds=wall_s), 100.0 + mono_s)
    assert wall_step(before, after) == step
