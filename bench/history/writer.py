"""Writes a simulated history into a terminal's database: card log (hash chain continued, so the
result passes `verify-log`), requests, and each card's and loop's state at the end.

Rows go in with the stdlib sqlite3 module in large transactions, `synchronous=OFF`: throw-away test
data, where speed matters and durability does not. It never runs on a live terminal's database, and
nothing in `kanban_terminal` may import it (issue 14: the product carries no test-data simulator).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history.simulation import SimEvent, SimRequest, operator_at, simulate
from kanban_terminal.config import TerminalConfig
from kanban_terminal.storage import log_key
from kanban_terminal.storage.card_log import GENESIS, chain_hash
from kanban_terminal.storage.types import to_text


@dataclass(frozen=True)
class GenerateResult:
    """What `generate` wrote, for the tool's one-line summary and the tests."""

    log_rows: int
    requests: int
    andons: int
    stockouts: int
    start: datetime
    end: datetime


def _card_events(req: SimRequest, end: datetime, rng: random.Random) -> tuple[list[SimEvent], str]:
    """The log rows of one request up to `end`, and the card's state at `end`."""
    loop = req.loop
    sensor = rng.random() < 0.2
    source = f"mqtt:bin-{loop.id.lower()}" if sensor else "keyboard"
    actor = None if sensor else operator_at(req.raised_at)
    base = {"card_id": req.card_id, "loop_id": loop.id, "request_id": req.id}
    out = [
        SimEvent(
            req.raised_at,
            "bin_empty",
            from_state="in_use",
            to_state="empty",
            actor=actor,
            source=source,
            **base,
        ),
        SimEvent(
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
        out.append(SimEvent(at, name, from_state=state, to_state=target, actor=None, source=src, **base))
        state = target
    if req.delivered_at >= end:
        return out, state
    lead = (req.delivered_at - req.raised_at).total_seconds()
    out.append(
        SimEvent(
            req.delivered_at,
            "delivered",
            from_state=state,
            to_state="in_use",
            actor=operator_at(req.delivered_at),
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
    `db_path`, which must exist with the schema and catalog (open it with `Terminal.open` first).
    The rows are keyed with the data dir's card-log key (`log-key.json` beside the file), as the
    terminal's own rows are, so `verify-log` checks them like any others."""
    key = log_key.load(db_path.parent / log_key.KEY_FILENAME)
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
            prev = chain_hash(prev, at, at, values, key=key)  # values are card_log.FIELDS, in order
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
