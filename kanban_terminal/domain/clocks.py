"""Elapsed time that a wall-clock step cannot bend, and telling a step from time passing.

Line PCs get NTP steps, a person setting the clock, and DST mistakes (a PC whose clock keeps local
time steps a whole hour twice a year). Timers (andon escalation tiers) must count elapsed time, not
wall time. Two clocks go into these decisions as plain numbers:

* the monotonic clock (CLOCK_MONOTONIC, seconds since boot): never steps, and is one clock for every
  process of one boot, so a restarted `serve` goes on counting from the same origin;
* the wall clock (UTC), the only clock that survives a reboot.

An `ElapsedAnchor` is "at monotonic `mono_s` of boot `boot_id`, `elapsed_s` had passed; that was
wall time `saved_at`". On the same boot elapsed is exact (`elapsed_s + mono - mono_s`), across a
reboot it is the stored elapsed plus the wall time since it was saved (never negative).

Nothing here reads a clock or a file: readings come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STEP_THRESHOLD_S = 2.0
"""A wall-vs-monotonic disagreement at least this big between two checks is a step. NTP slews at most
0.5 ms/s (ntpd's limit), so in the 1 s between checks a slew is 1,000x under this; a busy 2-core box
delayed a check by up to 0.3 s in the fault suite, and a delayed check moves both clocks alike."""


@dataclass(frozen=True)
class ElapsedAnchor:
    """Elapsed time of one timer, as stored (table `elapsed_anchor`)."""

    key: str
    boot_id: str
    mono_s: float
    elapsed_s: float
    saved_at: datetime


def elapsed_from(anchor: ElapsedAnchor, boot_id: str, mono_s: float, now: datetime) -> timedelta:
    """Elapsed time of `anchor`'s timer now.

    Same boot: the monotonic clock decides, also across a process restart (the time `serve` was down
    counts, as it should). Another boot: the monotonic clock restarted at zero, so the stored elapsed
    plus the wall time since it was saved; a wall clock behind the save adds nothing (never negative).
    """
    if anchor.boot_id == boot_id:
        return timedelta(seconds=anchor.elapsed_s + max(0.0, mono_s - anchor.mono_s))
    return timedelta(seconds=anchor.elapsed_s) + max(timedelta(0), now - anchor.saved_at)


def first_anchor(key: str, started_at: datetime, boot_id: str, mono_s: float, now: datetime) -> ElapsedAnchor:
    """The anchor of a timer seen for the first time: elapsed is the wall time since it started
    (a raise moments ago, possibly by another process), never negative."""
    elapsed = max(timedelta(0), now - started_at).total_seconds()
    return ElapsedAnchor(key, boot_id, mono_s, elapsed, now)


def re_anchor(anchor: ElapsedAnchor, boot_id: str, mono_s: float, now: datetime) -> ElapsedAnchor:
    """The same timer anchored to the present reading (after a reboot, or to refresh the save)."""
    elapsed = elapsed_from(anchor, boot_id, mono_s, now).total_seconds()
    return ElapsedAnchor(anchor.key, boot_id, mono_s, elapsed, now)


@dataclass(frozen=True)
class ClockReading:
    """Both clocks read at one instant."""

    wall: datetime
    mono_s: float


def wall_step(
    before: ClockReading, after: ClockReading, threshold_s: float = STEP_THRESHOLD_S
) -> float | None:
    """Seconds the wall clock stepped between two readings (+ forward, - back), or None.

    Between two readings both clocks should advance alike; what the wall clock moved beyond the
    monotonic clock is a step.
    """
    wall_delta = (after.wall - before.wall).total_seconds()
    mono_delta = after.mono_s - before.mono_s
    step = wall_delta - mono_delta
    return step if abs(step) >= threshold_s else None


def describe_step(step_s: float, before: ClockReading, after: ClockReading) -> str:
    """Words for the card log's `clock_stepped` row."""
    direction = "forward" if step_s > 0 else "back"
    return (
        f"wall clock stepped {direction} {abs(step_s):.1f} s: it moved "
        f"{(after.wall - before.wall).total_seconds():+.1f} s while {after.mono_s - before.mono_s:.1f} s "
        f"passed (last check {before.wall:%Y-%m-%d %H:%M:%S} UTC)"
    )
