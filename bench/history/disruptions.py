"""The history generator's year with injected disruptions, replayed with and without runway warnings and
contingency reserves (issue 18). Test data and a benchmark only: `kanban_terminal` never imports it.

Each loop of the config runs as in `simulation.py`: two shifts Monday to Friday, takt-paced bin empties
(gamma, CV 0.35) at a loop-specific load, lognormal refills around 85 % of the planned lead time,
and 3 % of supplier trucks 2-4x late (background noise, not counted as injected). On top of that:

- **supplier delays**: per external source (warehouse, supplier), episodes of 3 days (6 a year) in
  which every refill raised takes 2.5-4x as long. In 70 % of the delayed requests upstream says so
  (a `delayed` status with the new ETA) a quarter of the planned lead time after the request; the
  others are only noticed when their due time passes with no delivery (a broken promise, which the
  runway stops counting).
- **demand spikes**: per loop, one-shift episodes (5 a year) in which the line uses bins 2.5x as fast.

All random draws are made up front per loop (demand by bin, lead time by request, episodes), so
every policy replays the same year; the policies differ only in what the line does:

- `plain`: kanban as configured. The runway is computed and warnings are recorded, but nobody acts.
- `warnings`: on a warning (runway below the margin, domain/runway.py, same code as the terminal),
  the team lead expedites: the loop's late open refills come in at most half a planned lead time
  from the warning (the assumed effect of an expedite or a re-route to the second source).
- `reserves`: loops with `[[reserves]]` in the config (or, with `reserve_all`, every external loop)
  keep reserve bins sized by `domain.sizing.recommend_reserve` on the plain year's history (at least
  one); a bin running out with none on the rack draws a reserve bin instead of stopping the line,
  and the reserve's refill is an expedited request (half a lead time).
- `both`: warnings and reserves.

Stockout minutes are wall minutes the line waits for a bin (the line waits; demand shifts later,
as in `simulation.py`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bench.history.simulation import _LEAD_CV, _consume, _next_working
from kanban_terminal.config import Loop, TerminalConfig
from kanban_terminal.domain.runway import (
    Arrival,
    LoopSupply,
    RunwaySettings,
    WarningStep,
    assess,
    planned_rate_per_h,
    warning_step,
)
from kanban_terminal.domain.sizing import LoopHistory, recommend_reserve
from kanban_terminal.resilience_config import reserve_cards

POLICIES = ("plain", "warnings", "reserves", "both")
DELAYS_PER_YEAR, DELAY_DAYS, ANNOUNCED = 6, 3, 0.7
SPIKES_PER_YEAR, SPIKE_FACTOR, SPIKE_HOURS = 5, 2.5, 8
EXPEDITE_LEAD_TIMES = 0.5
LOADS = (0.35, 0.45, 0.55, 0.65)
"""Loads of the history generator without its deliberately tight 0.8: those loops run out weekly
with no disruption at all (60 days, seed 6: 278 stockouts), which drowned the comparison; here a
stockout is the disruption's doing or the background's rare late truck."""
TICK = timedelta(hours=1)
"""Besides its exact checks (see `check`), the runway is rechecked hourly: old empties leave the
measuring window as time passes, which moves the rate a little."""


@dataclass(frozen=True)
class Disruption:
    """One injected disruption of one loop."""

    loop_id: str
    kind: str
    """`delay` (supplier) or `spike` (demand)."""
    start: datetime
    end: datetime


@dataclass(frozen=True)
class LoopPlan:
    """Everything random about one loop's year, drawn once."""

    loop: Loop
    kind: str
    bin_hours: list[float]
    """Working hours each successive bin lasts at the normal pace."""
    lead_factor: list[float]
    """Refill time of the n-th request as a multiple of the planned lead time (before delays)."""
    announce: list[bool]
    """Whether upstream announces the n-th request's delay, if it is delayed."""
    delay_factor: list[float]
    disruptions: list[Disruption]


@dataclass
class Outcome:
    """What one policy did to one loop over the year."""

    loop_id: str
    stockouts: int = 0
    stockout_min: float = 0.0
    warnings: int = 0
    reserve_draws: int = 0
    run_outs: list[datetime] = field(default_factory=list)
    """When the line found no full bin (a stockout, or a reserve draw instead of one)."""
    warned_at: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    """Warning episodes: (raised, cleared)."""
    empties: list[datetime] = field(default_factory=list)
    raised: list[datetime] = field(default_factory=list)
    lead_times_s: list[float] = field(default_factory=list)


def plan(cfg: TerminalConfig, start: datetime, end: datetime, seed: int) -> list[LoopPlan]:
    """The random year of every loop, with its injected disruptions."""
    rng = random.Random(seed)
    days = (end - start).days
    delays: dict[str, list[Disruption]] = {}
    for source in cfg.sources:
        if source.kind == "supermarket":
            continue
        n = _poisson(rng, DELAYS_PER_YEAR * days / 365)
        starts = sorted(_next_working(start + timedelta(days=rng.uniform(0, days))) for _ in range(n))
        delays[source.id] = [Disruption("", "delay", s, s + timedelta(days=DELAY_DAYS)) for s in starts]
    plans = []
    for loop in cfg.loops:
        kind = cfg.source(loop.source).kind
        cards = len(loop.card_id_list())
        load = rng.choice(LOADS)
        rate = (cards - 1) / (loop.lead_time_minutes / 60 * (1 + loop.safety_factor)) * load
        sigma = math.sqrt(math.log(1 + _LEAD_CV[kind] ** 2))
        n = int(rate * 16 * days * 1.2) + 50
        bin_hours = [rng.gammavariate(8.0, 1 / (8.0 * rate)) for _ in range(n)]
        leads = []
        for _ in range(n):
            lead = rng.lognormvariate(math.log(0.85) - sigma * sigma / 2, sigma)
            if kind == "supplier" and rng.random() < 0.03:
                lead *= rng.uniform(2, 4)
            leads.append(lead)
        announce = [rng.random() < ANNOUNCED for _ in range(n)]
        delay_factor = [rng.uniform(2.5, 4.0) for _ in range(n)]
        spikes = []
        for _ in range(_poisson(rng, SPIKES_PER_YEAR * days / 365)):
            s = _next_working(start + timedelta(days=rng.uniform(0, days)))
            spikes.append(Disruption(loop.id, "spike", s, _consume(s, SPIKE_HOURS)))
        own = [Disruption(loop.id, d.kind, d.start, d.end) for d in delays.get(loop.source, [])]
        plans.append(
            LoopPlan(
                loop,
                kind,
                bin_hours,
                leads,
                announce,
                delay_factor,
                sorted(own + spikes, key=lambda d: d.start),
            )
        )
    return plans


@dataclass
class _Request:
    raised: datetime
    due: datetime
    arrive: datetime
    promised: datetime
    """What the terminal believes: the due time, or upstream's ETA once announced."""
    announce_at: datetime | None
    reserve: bool = False


def replay_loop(
    p: LoopPlan, start: datetime, end: datetime, settings: RunwaySettings, *, respond: bool, reserve_bins: int
) -> Outcome:
    """One loop's year under one policy."""
    loop = p.loop
    c = loop.container_quantity
    cards = len(loop.card_id_list())
    lead = timedelta(minutes=loop.lead_time_minutes)
    planned = planned_rate_per_h(cards, c, lead, loop.safety_factor)
    out = Outcome(loop.id)
    full = cards - 1  # bins on the rack; one is in use
    reserve = reserve_bins
    open_reqs: list[_Request] = []
    events: list[tuple[datetime, int, str]] = []  # (time, seq, kind) - arrivals are looked up by time
    seq = 0
    warning_open = False

    def push(at: datetime, kind: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind))

    bins_used = 0

    def next_empty(at: datetime) -> datetime:
        hours = p.bin_hours[bins_used % len(p.bin_hours)]
        factor = (
            SPIKE_FACTOR if any(d.kind == "spike" and d.start <= at < d.end for d in p.disruptions) else 1.0
        )
        return _consume(at, hours / factor)

    def raise_request(at: datetime, *, reserve_refill: bool = False) -> None:
        n = len(out.raised)
        factor = p.lead_factor[n % len(p.lead_factor)]
        delayed = any(d.kind == "delay" and d.start <= at < d.end for d in p.disruptions)
        took = lead * factor * (p.delay_factor[n % len(p.delay_factor)] if delayed else 1.0)
        if reserve_refill:
            took = min(took, lead * EXPEDITE_LEAD_TIMES)
        announce = at + lead / 4 if delayed and p.announce[n % len(p.announce)] else None
        req = _Request(at, at + lead, at + took, at + lead, announce, reserve_refill)
        open_reqs.append(req)
        out.raised.append(at)
        out.lead_times_s.append(took.total_seconds())
        push(req.arrive, "arrive")
        if announce is not None and announce < req.arrive:
            push(announce, "announce")

    def check(now: datetime) -> None:
        nonlocal warning_open
        supply = LoopSupply(
            loop.id, c, full + 1 if in_use else full, tuple(out.empties[-64:]),
            tuple(Arrival(r.promised, c) for r in open_reqs if not r.reserve), planned, lead,
        )  # fmt: skip
        runway = assess(supply, now, settings)
        # Exact instead of polled: the runway next changes when it crosses the margin (or the
        # deadband), or when a promise falls due unkept; check then, as the terminal's 30 s job would.
        later = [r.promised for r in open_reqs if r.promised > now and not r.reserve]
        if runway.run_out_at is not None:
            later += [
                runway.run_out_at - runway.margin,
                runway.run_out_at - runway.margin * (1 + settings.deadband),
            ]
        later = [t + timedelta(seconds=1) for t in later if t > now]
        if later and (next_check[0] <= now or min(later) < next_check[0]):
            next_check[0] = min(later)
            push(min(later), "check")
        step = warning_step(runway, warning_open, settings)
        if step is WarningStep.RAISE:
            warning_open = True
            out.warnings += 1
            out.warned_at.append((now, None))
            if respond:  # expedite / re-route: late refills come within half a lead time
                soon = now + lead * EXPEDITE_LEAD_TIMES
                for r in open_reqs:
                    if r.arrive > soon:
                        r.arrive = soon
                        r.promised = soon
                        push(soon, "arrive")
        elif step is WarningStep.CLEAR:
            warning_open = False
            out.warned_at[-1] = (out.warned_at[-1][0], now)

    in_use = True
    next_check = [start]  # the one pending exact check (older ones are stale and skipped)
    push(next_empty(_next_working(start)), "empty")
    push(start + TICK, "tick")
    waiting_since: datetime | None = None
    while events:
        now, _, kind = heapq.heappop(events)
        if now >= end:
            break
        if kind == "check" and now != next_check[0]:
            continue
        if kind == "tick":
            push(now + TICK, "tick")
        elif kind == "announce":
            for r in open_reqs:
                if r.announce_at == now:
                    r.promised = r.arrive
        elif kind == "arrive":
            arrived = [r for r in open_reqs if r.arrive <= now]
            if not arrived:
                continue  # an expedite moved it earlier: this is its old arrival
            for r in arrived:
                open_reqs.remove(r)
                if r.reserve:
                    reserve += 1
                else:
                    full += 1
            if waiting_since is not None and full > 0:
                full -= 1
                in_use = True
                out.stockout_min += (now - waiting_since).total_seconds() / 60
                waiting_since = None
                push(next_empty(now), "empty")
        elif kind == "empty":
            out.empties.append(now)
            bins_used += 1
            raise_request(now)
            if full > 0:
                full -= 1
                push(next_empty(now), "empty")
            else:
                out.run_outs.append(now)
                if reserve > 0:
                    reserve -= 1
                    out.reserve_draws += 1
                    raise_request(now, reserve_refill=True)
                    push(next_empty(now), "empty")
                else:
                    out.stockouts += 1
                    in_use = False
                    waiting_since = now
        check(now)
    return out


def replay(
    cfg: TerminalConfig, start: datetime, end: datetime, *, seed: int = 6, reserve_all: bool = False
) -> tuple[list[LoopPlan], dict[str, list[Outcome]], dict[str, int]]:
    """Every policy over every loop: the plans, outcomes by policy, and the reserve bins used."""
    settings = cfg.runway.settings()
    plans = plan(cfg, start, end, seed)
    critical = set(reserve_cards(cfg).values())
    outcomes: dict[str, list[Outcome]] = {name: [] for name in POLICIES}
    bins: dict[str, int] = {}
    for p in plans:
        plain = replay_loop(p, start, end, settings, respond=False, reserve_bins=0)
        outcomes["plain"].append(plain)
        if p.loop.id in critical or (reserve_all and p.kind != "supermarket"):
            bins[p.loop.id] = max(1, _advised_bins(p, plain))
        r = bins.get(p.loop.id, 0)
        outcomes["warnings"].append(replay_loop(p, start, end, settings, respond=True, reserve_bins=0))
        outcomes["reserves"].append(replay_loop(p, start, end, settings, respond=False, reserve_bins=r))
        outcomes["both"].append(replay_loop(p, start, end, settings, respond=True, reserve_bins=r))
    return plans, outcomes, bins


def _advised_bins(p: LoopPlan, plain: Outcome) -> int:
    delivered = [(at, s) for at, s in zip(plain.raised, plain.lead_times_s, strict=True)]
    h = LoopHistory(
        p.loop.id, p.loop.container_quantity, len(p.loop.card_id_list()), p.loop.lead_time_minutes * 60,
        tuple(plain.empties), tuple(s for _, s in delivered), tuple(at for at, _ in delivered), p.kind,
    )  # fmt: skip
    advice = recommend_reserve(h, scan_delay_s=0)
    return advice.bins if advice else 1


def caused_run_outs(
    p: LoopPlan, plain: Outcome, start: datetime, end: datetime, settings: RunwaySettings
) -> list[tuple[Disruption, datetime]]:
    """Each injected disruption of the loop that ran it out, with the first run-out in its window:
    only where the same year without that disruption (counterfactual replay) ran out fewer times in
    the window, so the background's own late trucks and tight loops are not blamed on it."""
    out = []
    lead = timedelta(minutes=p.loop.lead_time_minutes)
    for d in p.disruptions:
        # A delay shows up to a delayed lead time after the episode; a spike within a lead time.
        horizon = d.end + lead * (4 if d.kind == "delay" else 1)
        outs = [t for t in plain.run_outs if d.start - lead <= t <= horizon]
        if not outs:
            continue
        without = replay_loop(
            replace(p, disruptions=[x for x in p.disruptions if x is not d]), start, end, settings,
            respond=False, reserve_bins=0,
        )  # fmt: skip
        # After the disruption the two years drift apart in time, so compare how many run-outs the
        # window holds, not when: more with it than without means it caused at least the extra ones.
        before = [t for t in without.run_outs if d.start - lead <= t <= horizon]
        if len(outs) > len(before):
            out.append((d, outs[0]))
    return out


@dataclass(frozen=True)
class Check:
    """One injected disruption that ran a loop out in the plain year, and whether it was warned."""

    disruption: Disruption
    run_out: datetime
    warned_at: datetime | None
    """The warning that fired before the run-out (None: none did)."""
    visible: bool
    """Whether the line's own data showed the trouble before the run-out: a delay always does (an
    ETA, or a due time passing unkept); a spike only once a bin inside it emptied faster than the
    loop's planned pace. A spike whose first fast bin *is* the run-out (a 2-card loop's one spare
    bin used up early) gives a scan-based runway nothing to see in advance."""

    @property
    def minutes_ahead(self) -> float | None:
        return None if self.warned_at is None else (self.run_out - self.warned_at).total_seconds() / 60


def warned_before_run_out(
    plans: Iterable[LoopPlan],
    plain: Iterable[Outcome],
    start: datetime,
    end: datetime,
    settings: RunwaySettings,
) -> list[Check]:
    """Every injected disruption that ran a loop out in the plain year (nobody acting on warnings),
    with the runway warning that fired before its first run-out, if one did."""
    checks = []
    by_loop = {o.loop_id: o for o in plain}
    for p in plans:
        o = by_loop[p.loop.id]
        lead = timedelta(minutes=p.loop.lead_time_minutes)
        c = p.loop.container_quantity
        rate = planned_rate_per_h(len(p.loop.card_id_list()), c, lead, p.loop.safety_factor)
        bin_time = timedelta(hours=c / rate)
        for d, first in caused_run_outs(p, o, start, end, settings):
            # Fired before the run-out: raised since the disruption began (or within a lead time
            # before it: a delay is seen through requests raised before it), or still open from earlier.
            fired = [
                raised for raised, cleared in o.warned_at
                if raised < first and (raised >= d.start - lead or cleared is None or cleared > first)
            ]  # fmt: skip
            pairs = list(zip(o.empties, o.empties[1:], strict=False))
            fast = any(d.start <= b < first and b - a < bin_time for a, b in pairs)
            checks.append(Check(d, first, max(fired) if fired else None, d.kind == "delay" or fast))
    return checks


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1
