"""Loop and source metrics from recorded replenishment cycles: pure arithmetic, no I/O.

Answers "is this loop keeping up" and "is this supplier reliable" from what the terminal measured
itself: each request's raise, due and close times. The service layer reads the rows and hands in
`Cycle`s; the clock comes in as `now`. Percentiles use the nearest-rank method (the value of an
actual cycle, no interpolation) so a person can check a figure against the log by hand.

Definitions:
- on time: delivered at or before the request's due time (raise + planned lead time);
- in full: delivered with nothing recorded short or damaged at the delivery scan (issue 17; a
  delivery nobody marked counts as full), so on-time-in-full = delivered on time and in full /
  requests closed (a refused, cancelled or re-routed request is closed and not OTIF);
- stockout: a span during which every card of the loop was waiting for replenishment, so the
  point of use had no full bin.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kanban_terminal.domain.shifts import UTC_CALENDAR, ShiftCalendar, per_local_day


@dataclass(frozen=True)
class Cycle:
    """One replenishment request of a loop (one bin trip)."""

    loop_id: str
    card_id: str
    source: str
    raised_at: datetime
    due_at: datetime
    closed_at: datetime | None
    status: str
    """delivered, rejected, cancelled, rerouted, or an open state (queued, sent, ...)."""
    short_qty: int = 0
    """Parts recorded missing at the delivery scan (0 when none were)."""
    damaged_qty: int = 0
    trouble_at: datetime | None = None
    """First warning from upstream (delayed / at risk) about this request."""
    safe_at: datetime | None = None
    """When a reserve was drawn for it (the line safe before the delivery); None otherwise."""
    shortfall: bool = False
    """It asks for the missing part of a short delivery: the bin is at the line, partly full."""

    @property
    def in_full(self) -> bool:
        return self.short_qty == 0 and self.damaged_qty == 0

    @property
    def delivered(self) -> bool:
        return self.status == "delivered" and self.closed_at is not None

    @property
    def lead_time_s(self) -> float | None:
        if not self.delivered or self.closed_at is None:
            return None
        return (self.closed_at - self.raised_at).total_seconds()

    @property
    def lateness_s(self) -> float | None:
        """Seconds past due at delivery (negative: early)."""
        if not self.delivered or self.closed_at is None:
            return None
        return (self.closed_at - self.due_at).total_seconds()


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (0 < p <= 100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None
    """None: still going on at `now`."""

    def seconds(self, now: datetime) -> float:
        return ((self.end or now) - self.start).total_seconds()


def stockouts(cycles: Iterable[Cycle], cards: int, now: datetime) -> list[Span]:
    """Spans during which `cards` requests of one loop were open at once (no full bin left).

    A request is open from its raise until it closes (delivered, rejected or cancelled); a cycle still
    open counts until `now`.
    """
    if cards <= 0:
        return []
    changes: list[tuple[datetime, int]] = []
    for c in cycles:
        if c.shortfall:  # its bin came back partly full: the point of use has parts
            continue
        changes.append((c.raised_at, +1))
        changes.append((c.closed_at or now, -1))
    # At equal times close before open: a bin delivered in the same second a card empties is no stockout.
    changes.sort(key=lambda t: (t[0], t[1]))
    spans: list[Span] = []
    open_now, start = 0, None
    for at, step in changes:
        open_now += step
        if open_now >= cards and start is None:
            start = at
        elif open_now < cards and start is not None:
            spans.append(Span(start, at if at < now else None))
            start = None
    if start is not None:
        spans.append(Span(start, None))
    return spans


@dataclass(frozen=True)
class LoopMetrics:
    loop_id: str
    cycles: int
    """Delivered cycles in the window."""
    planned_lead_time_s: float
    lead_time_p50_s: float | None
    lead_time_p90_s: float | None
    on_time_rate: float | None
    """Delivered on time / delivered; None with no deliveries."""
    overdue_now: int
    """Open requests past their due time at `now`."""
    stockouts: int
    stockout_s: float
    material_andons: int
    cards_by_state: dict[str, int]
    daily_cycles: tuple[int, ...]
    """Delivered cycles per day over the window, oldest first: the sparkline."""


def loop_metrics(
    loop_id: str,
    cycles: Sequence[Cycle],
    *,
    planned_lead_time_s: float,
    cards: int,
    now: datetime,
    cards_by_state: dict[str, int] | None = None,
    material_andons: int = 0,
    days: int = 14,
    calendar: ShiftCalendar = UTC_CALENDAR,
) -> LoopMetrics:
    """Metrics of one loop over `cycles` (all of that loop's requests in the window)."""
    done = [c for c in cycles if c.delivered]
    leads = [c.lead_time_s for c in done if c.lead_time_s is not None]
    on_time = sum(1 for c in done if c.closed_at is not None and c.closed_at <= c.due_at)
    outs = stockouts(cycles, cards, now)
    return LoopMetrics(
        loop_id=loop_id,
        cycles=len(done),
        planned_lead_time_s=planned_lead_time_s,
        lead_time_p50_s=percentile(leads, 50),
        lead_time_p90_s=percentile(leads, 90),
        on_time_rate=on_time / len(done) if done else None,
        overdue_now=sum(1 for c in cycles if c.closed_at is None and c.due_at < now),
        stockouts=len(outs),
        stockout_s=sum(s.seconds(now) for s in outs),
        material_andons=material_andons,
        cards_by_state=dict(cards_by_state or {}),
        daily_cycles=per_day([c.closed_at for c in done if c.closed_at], now, days, calendar),
    )


def per_day(
    times: Iterable[datetime], now: datetime, days: int, calendar: ShiftCalendar = UTC_CALENDAR
) -> tuple[int, ...]:
    """Counts per day of the plant (`calendar`'s zone) for the `days` days ending with `now`'s day,
    oldest first."""
    return per_local_day(calendar, times, now, days)


@dataclass(frozen=True)
class Delay:
    request_loop: str
    card_id: str
    raised_at: datetime
    late_s: float


@dataclass(frozen=True)
class SourceMetrics:
    """The supplier scorecard of one source."""

    source: str
    requests: int
    """Requests closed in the window (delivered, rejected or cancelled)."""
    otif_rate: float | None
    lead_time_mean_s: float | None
    lead_time_stdev_s: float | None
    """Sample standard deviation: the spread that forces safety stock."""
    worst: tuple[Delay, ...]


def source_metrics(source: str, cycles: Sequence[Cycle], worst: int = 5) -> SourceMetrics:
    """Scorecard of one source over its `cycles`."""
    closed = [c for c in cycles if c.closed_at is not None]
    done = [c for c in closed if c.delivered]
    leads = [c.lead_time_s for c in done if c.lead_time_s is not None]
    otif = sum(1 for c in done if c.closed_at is not None and c.closed_at <= c.due_at and c.in_full)
    late = sorted(
        (
            Delay(c.loop_id, c.card_id, c.raised_at, c.lateness_s)
            for c in done
            if c.lateness_s and c.lateness_s > 0
        ),
        key=lambda d: -d.late_s,
    )
    return SourceMetrics(
        source=source,
        requests=len(closed),
        otif_rate=otif / len(closed) if closed else None,
        lead_time_mean_s=statistics.fmean(leads) if leads else None,
        lead_time_stdev_s=statistics.stdev(leads) if len(leads) >= 2 else None,
        worst=tuple(late[:worst]),
    )


def cycles_by(cycles: Iterable[Cycle], key: str) -> dict[str, list[Cycle]]:
    """Group cycles by `loop_id` or `source`."""
    out: dict[str, list[Cycle]] = {}
    for c in cycles:
        out.setdefault(getattr(c, key), []).append(c)
    return out


SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """Values as a one-line bar chart (eight levels): trends read at a glance on a terminal."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return "·" * len(values)  # nothing happened: visibly empty, not a low bar
    return "".join(SPARK[max(1, round(v / top * 8))] if v > 0 else SPARK[0] for v in values)


def bar(value: float, top: float, width: int = 20) -> str:
    """A horizontal bar of `width` cells for `value` out of `top` (Pareto charts)."""
    if top <= 0:
        return ""
    cells = value / top * width
    full = int(cells)
    rest = "▏▎▍▌▋▊▉"[int((cells - full) * 7) - 1] if cells - full >= 1 / 7 else ""
    return "█" * full + rest


def fmt_duration(seconds: float | None) -> str:
    """`1 h 05 min`, `12 min`, `40 s`; `-` for None."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if abs(s) < 60:
        return f"{s} s"
    minutes = s // 60
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def fmt_short(seconds: float | None) -> str:
    """`3h53m`, `12m`, `40s`, `2d04h`; `-` for None: for tables that must fit 100 columns."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if abs(s) < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    if m < 48 * 60:
        return f"{m // 60}h{m % 60:02d}m"
    return f"{m // 1440}d{m % 1440 // 60:02d}h"


def within(cycles: Iterable[Cycle], since: datetime) -> list[Cycle]:
    """Cycles raised at or after `since`, or still open."""
    return [c for c in cycles if c.raised_at >= since or c.closed_at is None]


def window_start(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
