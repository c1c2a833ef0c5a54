"""A realistic year of line history in a data dir: for trying the log and metrics screens, and for
the benchmark (about 1,000,000 card-log rows with the demo line).

Simulates each loop as the floor runs it: two shifts (06:00-22:00 UTC) Monday to Friday, bins
emptied at a loop-specific rate that varies day to day, refills taking a lognormal lead time around
the planned one (suppliers slower and more variable, with rare very late deliveries), a stockout and a
material andon when a bin empties with no full bin on hand, plus other andons (quality, machine,
help, safety) at random. Rows are written with the stdlib sqlite3 module in large transactions with
the hash chain computed on the way, continuing the chain of the database it is given: the result
passes `verify-log`. This is a test-data tool; it never runs on a live terminal's database.
"""

from __future__ import annotations

import heapq
import math
import random
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kanban_terminal.config import Loop, TerminalConfig
from kanban_terminal.storage.card_log import GENESIS, chain_hash
from kanban_terminal.storage.types import to_text

SHIFT_START, SHIFT_END = 6, 22
_LEAD_CV = {"supermarket": 0.15, "warehouse": 0.25, "supplier": 0.35}
_ANDON_REASONS = (("QUAL", "call", 3), ("MACH", "stop", 3), ("HELP", "call", 4), ("SAFE", "stop", 0.3))
_OPERATORS = ("E1001", "E1002")
_STEP_STATES = {"request_sent": "sent", "accepted": "accepted", "picked": "picked", "shipped": "shipped"}


@dataclass
class _Event:
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
class _Request:
    id: str
    card_id: str
    loop: Loop
    seq: int
    raised_at: datetime
    due_at: datetime
    delivered_at: datetime
    steps: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass(frozen=True)
class GenerateResult:
    log_rows: int
    requests: int
    andons: int
    stockouts: int
    start: datetime
    end: datetime


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


def _operator(at: datetime) -> str:
    return _OPERATORS[0] if at.hour < 14 else _OPERATORS[1]


def simulate(
    cfg: TerminalConfig, start: datetime, end: datetime, seed: int = 6
) -> tuple[list[_Event], list[_Request], int, int]:
    """Events (unsorted) and requests of every loop between `start` and `end`."""
    rng = random.Random(seed)
    events: list[_Event] = []
    requests: list[_Request] = []
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
            req = _Request(
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
                _Event(
                    at,
                    "andon_raised",
                    None,
                    loop.id,
                    None,
                    None,
                    None,
                    _operator(at),
                    "keyboard",
                    f"STOP {station} MAT: stockout in {loop.id}",
                    andon_id,
                    facts,
                )
            )
            ack = at + timedelta(seconds=rng.uniform(30, 300))
            if ack < arrive:
                events.append(
                    _Event(
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
                _Event(
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
                    who = _operator(at)
                    facts = (andon_kind, reason, station, None)
                    events.append(
                        _Event(
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
                            _Event(
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
                        _Event(
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
                            _Event(
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
                        _Event(
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


def _card_events(req: _Request, end: datetime, rng: random.Random) -> tuple[list[_Event], str]:
    """The log rows of one request up to `end`, and the card's state at `end`."""
    loop = req.loop
    sensor = rng.random() < 0.2
    source = f"mqtt:bin-{loop.id.lower()}" if sensor else "keyboard"
    actor = None if sensor else _operator(req.raised_at)
    base: dict[str, Any] = {"card_id": req.card_id, "loop_id": loop.id, "request_id": req.id}
    out = [
        _Event(
            req.raised_at,
            "bin_empty",
            from_state="in_use",
            to_state="empty",
            actor=actor,
            source=source,
            **base,
        ),
        _Event(
            req.raised_at,
            "request_raised",
            from_state="empty",
            to_state="queued",
            actor=actor,
            source=source,
            **base,
        ),
    ]
    state = "queued"
    for at, name in req.steps:
        if at >= end:
            return out, state
        target = {"request_sent": "sent", "accepted": "accepted", "picked": "picked", "shipped": "shipped"}[
            name
        ]
        src = "relay" if name == "request_sent" else "upstream"
        out.append(_Event(at, name, from_state=state, to_state=target, actor=None, source=src, **base))
        state = target
    if req.delivered_at >= end:
        return out, state
    lead = (req.delivered_at - req.raised_at).total_seconds()
    out.append(
        _Event(
            req.delivered_at,
            "delivered",
            from_state=state,
            to_state="in_use",
            actor=_operator(req.delivered_at),
            source="keyboard",
            detail=f"lead time {lead:.0f} s",
            **base,
        )
    )
    return out, "in_use"


def generate(
    cfg: TerminalConfig,
    db_path: Path,
    *,
    days: int = 365,
    end: datetime | None = None,
    seed: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Append `days` days of simulated history ending at `end` (default now) to the database at
    `db_path`, which must exist with the schema and catalog (open it with `Terminal.open` first)."""
    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    rng = random.Random(seed + 1)
    events, requests, andons, stockouts = simulate(cfg, start, end, seed)
    card_state: dict[str, tuple[str, datetime, str | None]] = {}
    request_rows = []
    for req in requests:
        rows, state = _card_events(req, end, rng)
        events.extend(rows)
        closed = req.delivered_at < end
        card_state[req.card_id] = (state, rows[-1].at, None if closed else req.id)
        loop = req.loop
        request_rows.append(
            (
                req.id,
                req.card_id,
                loop.id,
                req.seq,
                loop.part,
                loop.container_quantity,
                loop.station,
                loop.point_of_use,
                loop.source,
                to_text(req.raised_at),
                to_text(req.due_at),
                "delivered" if closed else state,
                "done" if closed else "published",
                1,
                to_text(req.raised_at),
                to_text(req.delivered_at) if closed else None,
                (req.delivered_at - req.raised_at).total_seconds() if closed else None,
            )
        )
    events.sort(key=lambda e: e.at)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        # Bulk load of throw-away test data: durability per row does not matter, speed does.
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN IMMEDIATE")
        prev = conn.execute("SELECT hash FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
        prev = prev[0] if prev else GENESIS
        batch = []
        done = 0
        sql = (
            "INSERT INTO card_log (occurred_at, recorded_at, event, card_id, loop_id, from_state, to_state,"
            " request_id, actor, source, detail, andon_id, andon_kind, andon_reason, station, downtime_s,"
            " hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        for e in events:
            at = to_text(e.at)
            values = (
                e.event,
                e.card_id,
                e.loop_id,
                e.from_state,
                e.to_state,
                e.request_id,
                e.actor,
                e.source,
                e.detail,
                e.andon_id,
                *e.facts,
            )
            prev = chain_hash(prev, at, at, values)  # values are card_log.FIELDS, in order
            batch.append((at, at, *values, prev))
            if len(batch) >= 50_000:
                conn.executemany(sql, batch)
                batch.clear()
                if progress is not None:
                    progress(done := done + 50_000, len(events))
        conn.executemany(sql, batch)
        if progress is not None:
            progress(len(events), len(events))
        conn.executemany(
            "INSERT INTO replenishment_request (id, card_id, loop_id, loop_seq, part_number, quantity,"
            " station, point_of_use, source, raised_at, due_at, status, publish_state, publish_count,"
            " last_published_at, closed_at, lead_time_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            request_rows,
        )
        for card_id, (state, since, open_id) in card_state.items():
            conn.execute(
                "UPDATE card SET state=?, state_since=?, last_scan_at=?, last_seen_at=?, open_request_id=? "
                "WHERE id=?",
                (state, to_text(since), to_text(since), to_text(since), open_id, card_id),
            )
        for loop in cfg.loops:
            seqs = [r.seq for r in requests if r.loop.id == loop.id]
            conn.execute("UPDATE loop SET next_seq=? WHERE id=?", (max(seqs, default=0) + 1, loop.id))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return GenerateResult(len(events), len(requests), andons, stockouts, start, end)
