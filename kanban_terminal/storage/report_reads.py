"""The metrics and sizing reads: requests as cycles, andon facts from the card log, cards per state,
each loop's request history. The SQL of services/reports.py, which does the arithmetic.

Each function reads in one snapshot (`Database.reading()`) and returns the domain's value types or
plain values. Andon facts come from the card log's structured columns (migration 0006), never from
`detail` text. It must never write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from kanban_terminal.domain.andon_metrics import AndonLogEvent
from kanban_terminal.domain.metrics import Cycle
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.log_reads import parse_stored as parse_stored  # one fast reader of stored times
from kanban_terminal.storage.types import to_text


def cycles(db: Database, since: datetime) -> list[Cycle]:
    """Requests raised since `since`, plus every request still open."""
    with db.reading() as session:
        rows = (
            session.connection()
            .execute(
                text(
                    "SELECT loop_id, card_id, source, raised_at, due_at, closed_at, status, "
                    "coalesce(short_qty, 0), coalesce(damaged_qty, 0), trouble_at, safe_at, "
                    "shortfall_of IS NOT NULL "
                    "FROM replenishment_request WHERE raised_at >= :since OR closed_at IS NULL"
                ),
                {"since": to_text(since)},
            )
            .all()
        )
    return [
        Cycle(
            r[0],
            r[1],
            r[2],
            parse_stored(r[3]),
            parse_stored(r[4]),
            parse_stored(r[5]) if r[5] else None,
            r[6],
            r[7],
            r[8],
            parse_stored(r[9]) if r[9] else None,
            parse_stored(r[10]) if r[10] else None,
            bool(r[11]),
        )
        for r in rows
    ]


def andon_log_events(db: Database, since: datetime) -> list[AndonLogEvent]:
    """Every card-log row of the andons raised since `since`."""
    with db.reading() as session:
        rows = (
            session.connection()
            .execute(
                text(
                    "SELECT andon_id, event, occurred_at, andon_kind, andon_reason, station, "
                    "coalesce(loop_id, (SELECT loop_id FROM card WHERE card.id = card_log.card_id)), "
                    "downtime_s, elapsed_s FROM card_log WHERE andon_id IN "
                    "(SELECT andon_id FROM card_log WHERE event = 'andon_raised' AND occurred_at >= :since)"
                ),
                {"since": to_text(since)},
            )
            .all()
        )
    return [AndonLogEvent(r[0], r[1], parse_stored(r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]


def cards_by_state(db: Database) -> dict[str, Counter[str]]:
    """Active cards counted by loop and state."""
    with db.reading() as session:
        rows = session.connection().execute(text("SELECT loop_id, state FROM card WHERE retired = 0")).all()
    out: dict[str, Counter[str]] = {}
    for loop_id, state in rows:
        out.setdefault(loop_id, Counter())[state] += 1
    return out


@dataclass(frozen=True)
class LoopRequests:
    """One loop's requests since a date: (raised_at, status, lead_time_s) oldest first; its cards."""

    requests: list[tuple[datetime, str, float | None]]
    cards: int
    extra_leads: tuple[tuple[datetime, float], ...] = ()
    """Delivered lead times of requests that were no bin-empty (a re-route's replacement, a
    shortfall): real lead times, but not demand (issues 17, 18)."""


def loop_requests(db: Database, loop_ids: Sequence[str], since: datetime) -> dict[str, LoopRequests]:
    """Each loop's requests raised since `since` and its active card count (one snapshot)."""
    out: dict[str, LoopRequests] = {}
    with db.reading() as session:
        conn = session.connection()
        for loop_id in loop_ids:
            # Every bin-empty raises exactly one request at the same moment (scanning.py), so the
            # requests give both the empties and the lead times through one index range
            # (ix_request_loop_raised) instead of a scan of the log's bin_empty rows.
            # Since issues 17/18 a request may also be a re-route's replacement or a shortfall:
            # those are read apart, as lead times only.
            rows = conn.execute(
                text(
                    "SELECT raised_at, status, lead_time_s, shortfall_of IS NOT NULL OR id IN "
                    "(SELECT replaced_by FROM request_cancel WHERE loop_id = :loop) "
                    "FROM replenishment_request WHERE loop_id = :loop AND raised_at >= :since "
                    "ORDER BY raised_at"
                ),
                {"loop": loop_id, "since": to_text(since)},
            ).all()
            cards = conn.execute(
                text("SELECT count(*) FROM card WHERE loop_id = :loop AND retired = 0"), {"loop": loop_id}
            ).scalar_one()
            extra = tuple(
                (parse_stored(r[0]), float(r[2])) for r in rows if r[3] and r[1] == "delivered" and r[2]
            )
            out[loop_id] = LoopRequests(
                [(parse_stored(r[0]), r[1], r[2]) for r in rows if not r[3]], cards, extra
            )
    return out
