"""The simulated floor: what a year of a line's loops and andons would have put in the card log.

Simulates each loop as the floor runs it: two shifts (06:00-22:00 UTC) Monday to Friday, bins
emptied at a loop-specific rate that varies day to day, refills taking a lognormal lead time around
the planned one (suppliers slower and more variable, with rare very late deliveries), a stockout and a
material andon when a bin empties with no full bin on hand, plus other andons (quality, machine,
help, safety) at random. Pure: events and requests in memory, same seed same history; writing them
is `writer.py`'s job. Test data only: nothing here may be imported by `kanban_terminal`.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kanban_terminal.config import Loop, TerminalConfig

SHIFT_START, SHIFT_END = 6, 22
_LEAD_CV = {"supermarket": 0.15, "warehouse": 0.25, "supplier": 0.35}
_ANDON_REASONS = (("QUAL", "call", 3), ("MACH", "stop", 3), ("HELP", "call", 4), ("SAFE", "stop", 0.3))
_OPERATORS = ("E1001", "E1002")


@dataclass
class SimEvent:
    """One card-log row to be."""

    at: datetime
    event: str
    card_id: str | None
    loop_id: str | None
    from_state: str | None
    to_state: str | None
    request_id: str | None
    actor: str | None
    source: str
    detail: str = ""
    andon_id: str | None = None
    facts: tuple[str | None, str | None, str | None, float | None] = (None, None, None, None)
    """card_log.FACTS: an andon's kind, reason, station and, on a STOP's resolve row, downtime."""


@dataclass
class SimRequest:
    """One replenishment request, with the times of its upstream steps and its delivery."""

    id: str
    card_id: str
    loop: Loop
    seq: int
    raised_at: datetime
    due_at: datetime
    delivered_at: datetime
    steps: list[tuple[datetime, str]] = field(default_factory=list)


def _working(at: datetime) -> bool:
    return at.weekday() < 5 and SHIFT_START <= at.hour < SHIFT_END


def _next_working(at: datetime) -> datetime:
    """`at` if the line runs then, else the next shift start."""
    while not _working(at):
        at = (at + timedelta(days=1) if at.hour >= SHIFT_END else at).replace(
            hour=SHIFT_START, minute=0, second=0, microsecond=0
        )
        if at.weekday() >= 5:
            at = (at + timedelta(days=7 - at.weekday())).replace(hour=SHIFT_START)
    return at


def _consume(at: datetime, work_hours: float) -> datetime:
    """The time `work_hours` of line running after `at` (nights and weekends skipped)."""
    left = work_hours * 3600
    at = _next_working(at)
    while True:
        shift_end = at.replace(hour=SHIFT_END, minute=0, second=0, microsecond=0)
        room = (shift_end - at).total_seconds()
        if left <= room:
            return at + timedelta(seconds=left)
        left -= room
        at = _next_working(shift_end)


def operator_at(at: datetime) -> str:
    return _OPERATORS[0] if at.hour < 14 else _OPERATORS[1]


def simulate(
    cfg: TerminalConfig, start: datetime, end: datetime, seed: int = 6
) -> tuple[list[SimEvent], list[SimRequest], int, int]:
    """Events (unsorted) and requests of every loop between `start` and `end`."""
    rng = random.Random(seed)
    events: list[SimEvent] = []
    requests: list[SimRequest] = []
    andon_no = 0
    stockouts = 0
    for loop in cfg.loops:
        kind = cfg.source(loop.source).kind
        cards = list(loop.card_id_list())
        lead_h = loop.lead_time_minutes / 60
        # Load below 1 keeps the loop mostly supplied; a few loops are deliberately tight or loose so
        # the sizing screen has something to say.
        load = rng.choice((0.35, 0.45, 0.55, 0.65, 0.8))
        # One bin is in use while the others are refilled: N - 1 bins must cover the lead time.
        rate = (len(cards) - 1) / (lead_h * (1 + loop.safety_factor)) * load  # bins per working hour
        cv = _LEAD_CV[kind]
        sigma = math.sqrt(math.log(1 + cv * cv))
        in_use = cards[0]
        on_hand = cards[1:]
        arrivals: list[tuple[datetime, str]] = []
        seq = 0
        at = _next_working(start)
        day_factor, day = 1.0, at.date()
        while True:
            if at.date() != day:
                day, day_factor = at.date(), rng.lognormvariate(0, 0.2)
            # Takt-paced use: bins empty fairly regularly (gamma, CV 0.35), not as a Poisson stream.
            at = _consume(at, rng.gammavariate(8.0, 1 / (8.0 * rate * day_factor)))
            if at >= end:
                break
            while arrivals and arrivals[0][0] <= at:
                on_hand.append(heapq.heappop(arrivals)[1])
            # The bin of `in_use` ran empty now: its card goes for a refill.
            seq += 1
            # Mean 85 % of plan: sources plan with some slack, so most refills are on time.
            lead = lead_h * 3600 * rng.lognormvariate(math.log(0.85) - sigma * sigma / 2, sigma)
            if kind == "supplier" and rng.random() < 0.03:
                lead *= rng.uniform(2, 4)  # the truck that did not come
            req = SimRequest(
                str(uuid.UUID(int=rng.getrandbits(128))),
                in_use,
                loop,
                seq,
                at,
                at + timedelta(minutes=loop.lead_time_minutes),
                at + timedelta(seconds=lead),
            )
            steps = [("request_sent", 0.002), ("accepted", 0.1), ("picked", 0.4)]
            if kind != "supermarket":
                steps.append(("shipped", 0.7))
            req.steps = [(at + timedelta(seconds=lead * f), name) for name, f in steps]
            requests.append(req)
            heapq.heappush(arrivals, (req.delivered_at, in_use))
            if on_hand:
                in_use = on_hand.pop(0)
                continue
            # Stockout: nothing on the rack until the next refill; the line calls material.
            stockouts += 1
            arrive, card = heapq.heappop(arrivals)
            andon_no += 1
            andon_id = f"A{andon_no:06d}"
            station = loop.station
            facts = ("stop", "MAT", station, None)
            events.append(
                SimEvent(
                    at,
                    "andon_raised",
                    None,
                    loop.id,
                    None,
                    None,
                    None,
                    operator_at(at),
                    "keyboard",
                    f"STOP {station} MAT: stockout in {loop.id}",
                    andon_id,
                    facts,
                )
            )
            ack = at + timedelta(seconds=rng.uniform(30, 300))
            if ack < arrive:
                events.append(
                    SimEvent(
                        ack,
                        "andon_acknowledged",
                        None,
                        loop.id,
                        None,
                        None,
                        None,
                        "E2001",
                        "keyboard",
                        "",
                        andon_id,
                        facts,
                    )
                )
            events.append(
                SimEvent(
                    arrive + timedelta(seconds=5),
                    "andon_resolved",
                    None,
                    loop.id,
                    None,
                    None,
                    None,
                    "E2001",
                    "keyboard",
                    "note: material at the line",
                    andon_id,
                    (*facts[:3], (arrive + timedelta(seconds=5) - at).total_seconds()),
                )
            )
            in_use = card
            at = arrive
    # Other andons: a few a working day, at random stations.
    stations = [s.id for s in cfg.stations]
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day.weekday() < 5:
            for reason, andon_kind, per_day in _ANDON_REASONS:
                for _ in range(_poisson(rng, per_day)):
                    at = day + timedelta(hours=rng.uniform(SHIFT_START, SHIFT_END))
                    if at >= end:
                        continue
                    andon_no += 1
                    andon_id = f"A{andon_no:06d}"
                    station = rng.choice(stations)
                    who = operator_at(at)
                    facts = (andon_kind, reason, station, None)
                    events.append(
                        SimEvent(
                            at,
                            "andon_raised",
                            None,
                            None,
                            None,
                            None,
                            None,
                            who,
                            "keyboard",
                            f"{andon_kind.upper()} {station} {reason}",
                            andon_id,
                            facts,
                        )
                    )
                    if rng.random() < 0.05:
                        events.append(
                            SimEvent(
                                at + timedelta(seconds=rng.uniform(10, 60)),
                                "andon_cancelled",
                                None,
                                None,
                                None,
                                None,
                                None,
                                who,
                                "keyboard",
                                "raised in error",
                                andon_id,
                                facts,
                            )
                        )
                        continue
                    ack = at + timedelta(seconds=rng.expovariate(1 / 120))
                    events.append(
                        SimEvent(
                            ack,
                            "andon_acknowledged",
                            None,
                            None,
                            None,
                            None,
                            None,
                            "E2001",
                            "keyboard",
                            "",
                            andon_id,
                            facts,
                        )
                    )
                    if ack - at > timedelta(minutes=5):
                        events.append(
                            SimEvent(
                                at + timedelta(minutes=5),
                                "andon_escalated",
                                None,
                                None,
                                None,
                                None,
                                None,
                                None,
                                "system",
                                "tier=2",
                                andon_id,
                                facts,
                            )
                        )
                    done = ack + timedelta(seconds=rng.lognormvariate(math.log(600), 0.8))
                    events.append(
                        SimEvent(
                            done,
                            "andon_resolved",
                            None,
                            None,
                            None,
                            None,
                            None,
                            "E2001",
                            "keyboard",
                            "",
                            andon_id,
                            (*facts[:3], (done - at).total_seconds() if andon_kind == "stop" else None),
                        )
                    )
        day += timedelta(days=1)
    return events, requests, andon_no, stockouts


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1
