"""Runway reads and the warning episodes (issue 18): what the runway is computed from, in one snapshot,
and the `runway_warning` rows, written inside the caller's unit of work.

The read is indexed: bin-empty rows by `occurred_at` (ix_card_log_occurred_at) over one window,
cards by loop, open requests by the open-card index. It must not decide anything (domain/runway.py
does) and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import CardLogRow, RunwayWarningRow
from kanban_terminal.storage.types import from_text, to_text


@dataclass(frozen=True, slots=True)  # one per open request: 20,000 at the end of a 20,000-signal burst
class OpenPromise:
    """An open request as the runway sees it."""

    request_id: str
    loop_id: str
    card_id: str
    quantity: int
    raised_at: datetime
    due_at: datetime
    eta: datetime | None
    """Upstream's ETA (`shipped`, or a `delayed` answer's new ETA) when it sent one."""
    status: str


@dataclass(frozen=True)
class RunwayFacts:
    """Everything the runways of a line are computed from, as of one snapshot."""

    cards: list[tuple[str, str, str]]
    """(card id, loop id, state) of every active card in use (a bin on hand: the only state the
    runway counts; a burst's 20,000 raised cards are no longer read only to be skipped)."""
    empties: list[tuple[str, str | None, datetime]]
    """(loop id, card id, occurred_at) of every bin-empty row since the window start, oldest first."""
    promises: list[OpenPromise]
    open_warnings: dict[str, RunwayWarningRow]
    """Loop id -> its open warning episode."""
    called_requests: set[str]
    """Open requests that already have an andon linked (the reserve-draw warning is one of them)."""


_CARDS = "SELECT id, loop_id, state FROM card WHERE retired = 0 AND state = 'in_use'"
_EMPTIES = (
    "SELECT loop_id, card_id, occurred_at FROM card_log WHERE event = 'bin_empty' AND occurred_at >= ? "
    "ORDER BY occurred_at"
)
_PROMISES = (
    "SELECT r.id, r.loop_id, r.card_id, r.quantity, r.raised_at, r.due_at, r.eta, r.status, a.id "
    "FROM replenishment_request r LEFT JOIN andon a ON a.request_id = r.id WHERE r.closed_at IS NULL"
)


def read_facts(db: Database, since: datetime) -> RunwayFacts:
    """One snapshot, in plain SQL: through the ORM a 20,000-card line with every card's request open
    took 2.0 s a read (20,000 `RequestRow` objects built); the screen asks every 2 s.

    sqlite3 makes a new string of every text value it returns, so a card's id came back three times
    and a loop's id or a state once a row. Each distinct value is kept once (`one`): the snapshot of
    that line held 19.3 MB at once, with every request open, which was most of `serve`'s peak over a
    20,000-signal burst (issue 19); now it holds 8.4 MB (tracemalloc)."""
    same: dict[str, str] = {}
    one = same.setdefault
    with db.snapshot() as sql:
        cards = [(one(c, c), one(lp, lp), one(st, st)) for c, lp, st in sql.execute(_CARDS)]
        empties = [
            (one(lp, lp) if lp else "", one(c, c) if c else c, from_text(at))
            for lp, c, at in sql.execute(_EMPTIES, (to_text(since),))
        ]
        promises, called = [], set()
        for rid, lp, card, qty, raised, due, eta, status, andon in sql.execute(_PROMISES):
            promises.append(
                OpenPromise(
                    rid,
                    one(lp, lp),
                    one(card, card),
                    qty,
                    from_text(raised),
                    from_text(due),
                    from_text(eta) if eta else None,
                    one(status, status),
                )
            )
            if andon is not None:
                called.add(rid)
        warnings = {
            row[1]: RunwayWarningRow(
                id=row[0],
                loop_id=row[1],
                raised_at=from_text(row[2]),
                runway_s=row[3],
                margin_s=row[4],
                andon_id=row[5],
            )  # fmt: skip
            for row in sql.execute(
                "SELECT id, loop_id, raised_at, runway_s, margin_s, andon_id FROM runway_warning "
                "WHERE cleared_at IS NULL"
            )
        }
    return RunwayFacts(cards, empties, promises, warnings, called)


def open_warnings(session: Session) -> list[RunwayWarningRow]:
    stmt = select(RunwayWarningRow).where(col(RunwayWarningRow.cleared_at).is_(None))
    return list(session.exec(stmt).all())


def open_warning(session: Session, loop_id: str) -> RunwayWarningRow | None:
    return session.exec(
        select(RunwayWarningRow).where(
            RunwayWarningRow.loop_id == loop_id, col(RunwayWarningRow.cleared_at).is_(None)
        )
    ).first()


class WarningAlreadyOpen(Exception):
    """The loop has an open warning episode already (another process or tick opened it)."""


def add_warning(session: Session, row: RunwayWarningRow) -> None:
    """Open an episode.

    Raises:
        WarningAlreadyOpen: the loop has one open; the caller's unit of work must roll back.
    """
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise WarningAlreadyOpen(row.loop_id) from exc


def episodes(db: Database, since: datetime | None = None) -> list[RunwayWarningRow]:
    """Warning episodes raised since `since` (all when None), oldest first (reports, tests)."""
    with db.reading() as session:
        stmt = select(RunwayWarningRow).order_by(col(RunwayWarningRow.raised_at))
        if since is not None:
            stmt = stmt.where(col(RunwayWarningRow.raised_at) >= since)
        return list(session.exec(stmt).all())


def reserve_draws(db: Database, since: datetime | None = None) -> dict[str, int]:
    """Loop id -> how many times its reserve was drawn (`reserve_drawn` log rows)."""
    with db.reading() as session:
        stmt = select(CardLogRow.loop_id).where(CardLogRow.event == "reserve_drawn")
        if since is not None:
            stmt = stmt.where(col(CardLogRow.occurred_at) >= since)
        out: dict[str, int] = {}
        for loop_id in session.exec(stmt):
            out[loop_id or ""] = out.get(loop_id or "", 0) + 1
        return out
