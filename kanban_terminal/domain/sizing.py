"""Kanban sizing from measured data: how many cards a loop needs, and evidence that it is right.

Formula (our convention, ADDITIVE safety factor, see config.py and domain.md 3.1):

    N = ceil(D x L x (1 + S) / C) + B,  at least 2

- L: measured mean empty -> full lead time (request raise to delivery scan) plus the scan-delay
  allowance: the time between a bin running empty and its card being scanned, which the log cannot
  see (JD Edwards' "scan delta").
- D: measured demand while refills are under way: for every delivered cycle, the parts used
  (bins emptied x C) between its raise and raise + its lead time + the allowance, summed and divided
  by the summed time. Measuring demand over the lead times themselves, not per calendar hour, keeps
  nights and weekends (no demand, but refills still count their hours) from diluting D.
- S: safety from measured variability: S = z x sd(LTD) / mean(LTD), where LTD is that per-cycle
  lead-time demand. Its spread carries both the demand and the lead-time variability as they really
  combined on this loop (no independence or normality assumption needed); z is the service factor
  (1.65 for 95 %). The separate demand and lead-time CVs are reported for the segmentation hint.
- B: bins in use, default 1: the bin the line is drawing from while the others are being refilled
  (SAP's constant C, default 1). Without it a loop sized to exactly its lead-time demand runs dry at
  the end of every lead time: when a bin empties only N - 1 cards can be out for refill.
- At least 2 cards: with one, the line waits for every refill.

`replay` runs recorded bin-empty times and recorded lead times against a card count and counts
stockouts, so a recommendation is shown beside what it would have done to the recorded history.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from heapq import heappop, heappush

from kanban_terminal.domain.metrics import percentile

SERVICE_FACTORS = {0.90: 1.29, 0.95: 1.65, 0.98: 2.05, 0.99: 2.33}
MIN_CARDS = 2


@dataclass(frozen=True)
class LoopHistory:
    """What the log recorded for one loop."""

    loop_id: str
    container_quantity: int
    configured_cards: int
    planned_lead_time_s: float
    empties: tuple[datetime, ...]
    """Times bins ran empty (bin_empty rows), oldest first."""
    lead_times_s: tuple[float, ...]
    """Measured raise -> delivery lead times, in the order the requests were raised."""
    raised: tuple[datetime, ...] = ()
    """Raise time of each of `lead_times_s` (same order)."""
    source_kind: str = "supermarket"


@dataclass(frozen=True)
class Recommendation:
    loop_id: str
    demand_per_hour: float
    demand_cv: float
    """Daily demand standard deviation / mean, over days with any demand (working days)."""
    lead_time_h: float
    """Mean measured lead time plus the scan-delay allowance."""
    lead_time_cv: float
    ltd_mean: float
    """Mean parts used during one lead time (D x L)."""
    ltd_sd: float
    safety: float
    """S in N = D x L x (1 + S) / C."""
    raw_cards: float
    recommended: int
    configured: int
    observed_hours: float
    bins_per_day: float
    samples: int
    """Lead-time samples behind the figures."""

    @property
    def change(self) -> int:
        return self.recommended - self.configured

    def advice(self) -> str:
        if self.samples < 10:
            return "too little history (fewer than 10 deliveries): keep the configured count"
        if self.change > 0:
            return f"add {self.change} card(s)"
        if self.change < 0:
            return f"remove {-self.change} card(s)"
        return "keep"


def demand_per_day(empties: Sequence[datetime], quantity: int) -> list[float]:
    """Parts consumed on each UTC day that had any consumption (days the line did not run are left
    out: they say nothing about how steady demand is when it runs)."""
    counts = Counter(e.date() for e in empties)
    return [n * quantity for _, n in sorted(counts.items())]


def consumed(empties: Sequence[datetime], at: datetime, quantity: int) -> float:
    """Parts used from the first recorded empty up to `at`: whole bins up to the last empty, plus the
    share of the bin in use by linear interpolation to the next empty (a bin is used up steadily)."""
    i = bisect_right(empties, at)
    if i == 0:
        return 0.0
    whole = (i - 1) * quantity
    if i == len(empties):
        return float(whole)
    prev, nxt = empties[i - 1], empties[i]
    return whole + quantity * (at - prev).total_seconds() / (nxt - prev).total_seconds()


def lead_time_demand(
    empties: Sequence[datetime],
    raised: Sequence[datetime],
    lead_times_s: Sequence[float],
    quantity: int,
    scan_delay_s: float,
) -> list[float]:
    """Parts used during each cycle's lead time plus the allowance (its lead-time demand)."""
    out = []
    for at, lead in zip(raised, lead_times_s, strict=True):
        end = at + timedelta(seconds=lead + scan_delay_s)
        out.append(consumed(empties, end, quantity) - consumed(empties, at, quantity))
    return out


def recommend(
    h: LoopHistory, *, scan_delay_s: float = 300.0, service_level: float = 0.95, bins_in_use: int = 1
) -> Recommendation | None:
    """The recommended card count for one loop; None without 2 deliveries and 2 empties."""
    if len(h.empties) < 2 or len(h.lead_times_s) < 2 or len(h.raised) != len(h.lead_times_s):
        return None
    z = SERVICE_FACTORS.get(service_level, 1.65)
    ltd = lead_time_demand(h.empties, h.raised, h.lead_times_s, h.container_quantity, scan_delay_s)
    hours = sum(h.lead_times_s) / 3600 + len(h.lead_times_s) * scan_delay_s / 3600
    d = sum(ltd) / hours
    lead_h = statistics.fmean(h.lead_times_s) / 3600 + scan_delay_s / 3600
    ltd_mean, ltd_sd = statistics.fmean(ltd), statistics.stdev(ltd)
    s = z * ltd_sd / ltd_mean if ltd_mean > 0 else 0.0
    raw = d * lead_h * (1 + s) / h.container_quantity
    daily = demand_per_day(h.empties, h.container_quantity)
    d_day_mean = statistics.fmean(daily)
    d_day_sd = statistics.stdev(daily) if len(daily) >= 2 else 0.0
    lead_mean = statistics.fmean(h.lead_times_s)
    return Recommendation(
        loop_id=h.loop_id,
        demand_per_hour=d,
        demand_cv=d_day_sd / d_day_mean if d_day_mean else 0.0,
        lead_time_h=lead_h,
        lead_time_cv=statistics.stdev(h.lead_times_s) / lead_mean if lead_mean else 0.0,
        ltd_mean=ltd_mean,
        ltd_sd=ltd_sd,
        safety=s,
        raw_cards=raw,
        # round() first: 3.0000000001 from float noise must not become 4 cards.
        recommended=max(MIN_CARDS, math.ceil(round(raw, 9)) + bins_in_use),
        configured=h.configured_cards,
        observed_hours=(h.empties[-1] - h.empties[0]).total_seconds() / 3600,
        bins_per_day=len(h.empties) / len(daily),
        samples=len(h.lead_times_s),
    )


@dataclass(frozen=True)
class ReplayResult:
    cards: int
    stockouts: int
    """Times a bin ran empty with no full bin on hand."""
    stockout_h: float
    """Hours the point of use had no full bin."""


def replay(
    empties: Sequence[datetime], lead_times_s: Sequence[float], cards: int, *, scan_delay_s: float = 0.0
) -> ReplayResult:
    """Replay recorded demand and lead times against `cards` cards.

    Start with every bin full. At each recorded empty the line takes the next full bin and the empty
    one's card leaves for a refill that takes the next recorded lead time (cycled when there are fewer
    lead times than empties) plus `scan_delay_s`. An empty with no full bin on hand is a stockout; it
    lasts until the next refill arrives. Demand is replayed as recorded (the line is not delayed by
    the stockout), which makes the count a fair comparison between card counts, not a forecast.
    """
    if cards <= 0 or not empties or not lead_times_s:
        return ReplayResult(cards, len(empties) if cards <= 0 else 0, 0.0)
    arrivals: list[datetime] = []  # heap of refill arrival times
    full = cards - 1  # one bin is in use at the start
    outs, out_s = 0, 0.0
    for i, at in enumerate(empties):
        while arrivals and arrivals[0] <= at:
            heappop(arrivals)
            full += 1
        heappush(arrivals, at + timedelta(seconds=lead_times_s[i % len(lead_times_s)] + scan_delay_s))
        if full > 0:
            full -= 1
            continue
        # No full bin: the line waits for the next refill, which becomes the bin in use.
        outs += 1
        arrival = heappop(arrivals)
        out_s += (arrival - at).total_seconds()
    return ReplayResult(cards, outs, out_s / 3600)


@dataclass(frozen=True)
class Segment:
    label: str
    """`tight pull` or `buffer`."""
    reasons: tuple[str, ...]
    """The numbers behind the hint, in words."""


def segment(rec: Recommendation, *, source_kind: str, planned_lead_time_s: float) -> Segment:
    """Steady high-volume loops suit a tight pull; volatile, long-lead or single-source loops need a
    buffer. Thresholds: demand CV 0.5 / 1.0, lead-time CV 0.25 / 0.5, 8 h lead time, 4 bins a day."""
    buffer: list[str] = []
    if rec.demand_cv > 1.0:
        buffer.append(f"volatile demand: daily CV {rec.demand_cv:.2f} > 1.0")
    if rec.lead_time_cv > 0.5:
        buffer.append(f"unreliable lead time: CV {rec.lead_time_cv:.2f} > 0.5")
    if rec.lead_time_h > 8:
        buffer.append(f"long lead time: {rec.lead_time_h:.1f} h > 8 h")
    if source_kind == "supplier":
        buffer.append("single external source (supplier): no second source to fall back on")
    if buffer:
        return Segment("buffer", tuple(buffer))
    steady = rec.demand_cv <= 0.5 and rec.lead_time_cv <= 0.25 and rec.bins_per_day >= 4
    why = (
        f"{rec.bins_per_day:.1f} bins a day, demand CV {rec.demand_cv:.2f}, "
        f"lead-time CV {rec.lead_time_cv:.2f}, "
        f"lead time {rec.lead_time_h:.1f} h (planned {planned_lead_time_s / 3600:.1f} h)"
    )
    if steady:
        return Segment("tight pull", (f"steady: {why}",))
    return Segment("moderate", (f"neither steady nor volatile: {why}",))


@dataclass(frozen=True)
class ReserveAdvice:
    """A contingency reserve ("red cards", issue 18) for one loop, and what it would have changed."""

    loop_id: str
    bins: int
    """Recommended reserve bins: 0 when the cards already cover the measured exposure."""
    exposure: float
    """Parts the line would need beyond its cards in a bad cycle: spiking demand over a late refill."""
    spike_rate_per_h: float
    """p95 of the demand rate over single lead times (the demand spikes)."""
    lead_time_p95_h: float
    """p95 of the measured lead time (its variance)."""
    without: ReplayResult
    """The recorded history replayed with the configured cards."""
    with_reserve: ReplayResult
    """The same history with the reserve bins added."""


def recommend_reserve(h: LoopHistory, *, scan_delay_s: float = 300.0) -> ReserveAdvice | None:
    """Reserve bins for a critical loop: targeted safety stock sized to the exposure the log shows.

    exposure = (p95 demand rate over one lead time) x (p95 lead time + allowance) - (N - 1) x C;
    bins = ceil(exposure / C). The normal safety factor covers ordinary spread (z x sd); the reserve
    covers the tail the card count does not, where both go wrong at once. The replay of the recorded
    history with N and with N + bins shows the stoppages the reserve would have avoided. None without
    2 deliveries and 2 empties.
    """
    if len(h.empties) < 2 or len(h.lead_times_s) < 2 or len(h.raised) != len(h.lead_times_s):
        return None
    c = h.container_quantity
    ltd = lead_time_demand(h.empties, h.raised, h.lead_times_s, c, scan_delay_s)
    rates = [d / ((lead + scan_delay_s) / 3600) for d, lead in zip(ltd, h.lead_times_s, strict=True)]
    spike = percentile(rates, 95) or 0.0  # never None: two lead times at least
    lead_p95_h = ((percentile(h.lead_times_s, 95) or 0.0) + scan_delay_s) / 3600
    exposure = max(0.0, spike * lead_p95_h - (h.configured_cards - 1) * c)
    bins = math.ceil(round(exposure / c, 9))
    return ReserveAdvice(
        loop_id=h.loop_id,
        bins=bins,
        exposure=exposure,
        spike_rate_per_h=spike,
        lead_time_p95_h=lead_p95_h,
        without=replay(h.empties, h.lead_times_s, h.configured_cards, scan_delay_s=scan_delay_s),
        with_reserve=replay(h.empties, h.lead_times_s, h.configured_cards + bins, scan_delay_s=scan_delay_s),
    )
