"""Runway: how long a loop can keep the line running on what it has and what it was promised.

    runway = time until the parts on hand, plus each promised refill when it arrives, are used up
             at the loop's measured consumption rate

The material andon the terminal had before (issue 4) fires once a request is overdue: by then the
line may already be dry. The runway looks forward instead, so a warning comes while there is still
time to expedite, re-route or draw on a reserve (issue 18).

- Consumption is the terminal's own measurement: bins emptied over a sliding window as long as a
  shift (default 8 h), and over the last bin interval, whichever is faster. The shift window keeps
  a steady line's figure steady; the last interval sees a demand spike at its first fast bin. In the
  disruption replay (bench/runway_replay.py, 60 days, seed 6) the last 4 bins and 3 bins a window
  warned before 15 of the 17 run-outs the line's data could foresee; the last interval and 2 bins
  warned before all 17, for 27 % more warnings (1,495 against 1,175 on 15 loops).
  With fewer than 2 empties in the window (a shift start, a quiet loop) the loop's planned rate is used:
  the demand its cards were sized for, D = (N - 1) x C / (L x (1 + S)) (domain/sizing.py's formula
  solved for D).
- On hand: the loop's cards in use (full bins at the line) times the container quantity, the bin
  being drawn from counted as full at the last empty less what the rate has used since (half when
  no empty is known: its expected fill when used steadily). Counting it at half always made a loop
  sized exactly to its lead time (3 cards, 4 h, S 0.2) at risk right after every empty: 1.5 bins
  last 3.6 h against a 4 h refill, where the 2 full bins really last 4.8 h.
- Promised arrivals come in as plain (time, quantity) pairs: an open request's upstream ETA when
  upstream sent one (`shipped`, or `delayed` with a new ETA), else its planned due time. A promise
  whose time has passed with no delivery is not counted: a promise already broken says nothing
  about when the bin will come.
- A loop is at risk when its runway is shorter than its margin (its planned lead time x a factor):
  an empty bin signalled now would not be back before the line runs dry. The warning clears only
  once the runway is back above the margin plus a deadband (ISA-18.2's deadband against chattering
  alarms), so one disruption is one warning.

Pure: no I/O, no clock; time comes in as `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from operator import attrgetter

MIN_SPAN = timedelta(minutes=1)
"""Two empties closer than this (a sensor's double report) do not make an infinite rate."""


@dataclass(frozen=True)
class Arrival:
    """One promised refill: `quantity` parts expected at the line at `at` (ETA, else due time)."""

    at: datetime
    quantity: int


@dataclass(frozen=True)
class RunwaySettings:
    """How consumption is measured and when a loop counts as at risk (config `[runway]`)."""

    window: timedelta = timedelta(hours=8)
    """The sliding window the consumption rate is measured over: one shift."""
    recent_bins: int = 2
    """The last few empties also give a rate; the faster of the two counts (a spike shows at once)."""
    min_bins: int = 2
    """Fewer empties than this in the window: the planned rate is used instead."""
    margin_lead_times: float = 1.0
    """A loop is at risk when its runway is below this many planned lead times."""
    deadband: float = 0.1
    """A warning clears only when the runway is back above margin x (1 + deadband). 10 %, not the
    25 % tried first: a loop sized with S = 0.2 covers 1.2 lead times with its bin in use run down,
    so a 25 % deadband kept a fully restocked loop's warning open for good."""


@dataclass(frozen=True)
class LoopSupply:
    """What the terminal knows about one loop at `now`."""

    loop_id: str
    container_quantity: int
    bins_on_hand: int
    """Cards in use: full bins at the line, the one being drawn from included."""
    empties: tuple[datetime, ...]
    """Bin-empty times of the loop's cards (reserve cards excluded), oldest first."""
    arrivals: tuple[Arrival, ...]
    planned_rate_per_h: float
    """Parts per hour the loop was sized for: the rate used when too little is measured."""
    planned_lead_time: timedelta
    elided: int = 0
    """Empties of the window left out of `empties`, all between its first one in the window and its
    last `recent_bins` up to `now` (domain/runway_window.py): the rates use only how many the window
    holds, the first and the last few, so the runway is the same as from every time."""


@dataclass(frozen=True)
class Runway:
    """A loop's runway at `at`, and the figures behind it."""

    loop_id: str
    at: datetime
    runway: timedelta | None
    """None when nothing is being used (no measured and no planned rate): no run-out in sight."""
    run_out_at: datetime | None
    rate_per_h: float
    """Parts per hour the runway assumes."""
    measured: bool
    """True when the rate was measured here, False when it is the planned rate."""
    on_hand: float
    """Parts at the line now."""
    promised: int
    """Parts of promised refills still expected (broken promises left out)."""
    margin: timedelta
    at_risk: bool

    @property
    def hours(self) -> float | None:
        return None if self.runway is None else self.runway.total_seconds() / 3600


class WarningStep(StrEnum):
    """What the warning of one loop should do now."""

    RAISE = "raise"
    CLEAR = "clear"
    KEEP = "keep"


def consumption_rate(
    empties: Sequence[datetime], now: datetime, settings: RunwaySettings, elided: int = 0
) -> float | None:
    """Bins per hour used recently, or None when the window holds too few empties to say.

    The faster of: the pace over the shift window, and the pace over the last `recent_bins` empties
    (both from the first to the last empty they hold, so the night before a shift does not dilute it).
    `elided`: empties of the window between the first and the last few, left out of `empties`.
    """
    start = now - settings.window
    inside = [e for e in empties if start <= e <= now]
    count = len(inside) + elided
    if count < max(2, settings.min_bins):
        return None

    def pace(first: datetime, last: datetime, n: int) -> float:
        span = max(last - first, MIN_SPAN)
        return (n - 1) / (span.total_seconds() / 3600)

    recent = inside[-max(2, settings.recent_bins) :]
    return max(pace(inside[0], inside[-1], count), pace(recent[0], recent[-1], len(recent)))


_at = attrgetter("at")


def run_out(
    now: datetime, on_hand: float, rate_per_h: float, arrivals: Sequence[Arrival]
) -> tuple[datetime | None, int]:
    """When the parts run out at `rate_per_h`, refills added as they arrive; and the parts counted.

    Returns (None, promised) when nothing is used. Arrivals at or before `now` are broken promises
    (the request is still open): left out.
    """
    coming = sorted((a for a in arrivals if a.at > now), key=_at) if arrivals else []
    promised = sum(a.quantity for a in coming)
    if rate_per_h <= 0:
        return None, promised
    per_s = rate_per_h / 3600
    t, stock = now, max(0.0, on_hand)
    for arrival in coming:
        dry_at = t + timedelta(seconds=stock / per_s)
        if dry_at < arrival.at:
            return dry_at, promised
        stock -= (arrival.at - t).total_seconds() * per_s
        stock += arrival.quantity
        t = arrival.at
    return t + timedelta(seconds=stock / per_s), promised


def assess(supply: LoopSupply, now: datetime, settings: RunwaySettings) -> Runway:
    """The runway of one loop at `now`."""
    bins_per_h = consumption_rate(supply.empties, now, settings, supply.elided)
    measured = bins_per_h is not None
    rate = bins_per_h * supply.container_quantity if bins_per_h is not None else supply.planned_rate_per_h
    on_hand = max(0.0, supply.bins_on_hand - 1 + _in_use_fill(supply, now, rate)) * supply.container_quantity
    dry_at, promised = run_out(now, on_hand, rate, supply.arrivals)
    margin = supply.planned_lead_time * settings.margin_lead_times
    runway = None if dry_at is None else max(timedelta(0), dry_at - now)
    return Runway(
        loop_id=supply.loop_id,
        at=now,
        runway=runway,
        run_out_at=dry_at,
        rate_per_h=rate,
        measured=measured,
        on_hand=on_hand,
        promised=promised,
        margin=margin,
        at_risk=runway is not None and runway < margin,
    )


def _in_use_fill(supply: LoopSupply, now: datetime, rate_per_h: float) -> float:
    """How full the bin being drawn from is: full at the last empty (the line took a full one), less
    by the rate since; half when no empty is known (its expected fill when used steadily)."""
    if supply.bins_on_hand <= 0:
        return 0.0
    if not supply.empties or supply.empties[-1] > now:
        return 0.5
    used = (now - supply.empties[-1]).total_seconds() / 3600 * rate_per_h / supply.container_quantity
    return min(1.0, max(0.0, 1.0 - used))


def warning_step(runway: Runway, warning_open: bool, settings: RunwaySettings) -> WarningStep:
    """Raise once when the runway drops below the margin; clear once it is back above the deadband."""
    if not warning_open:
        return WarningStep.RAISE if runway.at_risk else WarningStep.KEEP
    recovered = runway.runway is None or runway.runway >= runway.margin * (1 + settings.deadband)
    return WarningStep.CLEAR if recovered else WarningStep.KEEP


def planned_rate_per_h(cards: int, container_quantity: int, lead_time: timedelta, safety: float) -> float:
    """Parts per hour a loop of `cards` cards was sized for: D = (N - 1) x C / (L x (1 + S))."""
    hours = lead_time.total_seconds() / 3600 * (1 + safety)
    return max(0, cards - 1) * container_quantity / hours if hours > 0 else 0.0


def describe(runway: Runway) -> str:
    """In words for the floor and the log: `2.5 h (measured 40 pcs/h), margin 1.0 h`."""
    basis = "measured" if runway.measured else "planned"
    if runway.runway is None:
        return f"no use in sight ({basis} rate 0), margin {_h(runway.margin)}"
    return f"{_h(runway.runway)} ({basis} {runway.rate_per_h:.0f}/h), margin {_h(runway.margin)}"


def _h(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
