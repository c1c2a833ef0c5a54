"""Andon reads in a snapshot of their own: the board, what escalation looks at, material calls.

Each function takes the `Database` and reads in one snapshot (`Database.reading()`) through
`AndonRows` or plain ORM queries, returning domain andons or table rows. It must never write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from kanban_terminal.domain.andon import Andon
from kanban_terminal.storage.andon_rows import AndonRows
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import AndonRow, RequestRow


@dataclass(frozen=True)
class AndonBoardRows:
    attention: list[Andon]
    history: list[Andon]
    fired: dict[str, tuple[int, ...]]


def board(db: Database, history: int) -> AndonBoardRows:
    """Andons needing attention, the `history` most recent closed ones, and their fired tiers."""
    with db.reading() as session:
        rows = AndonRows(session)
        attention, closed = rows.attention(), rows.history(history)
        fired = rows.fired_tiers([a.id for a in attention + closed])
    return AndonBoardRows(attention, closed, fired)


def escalation_candidates(db: Database) -> tuple[list[Andon], dict[str, tuple[int, ...]]]:
    """Unacknowledged, uncancelled andons and their fired tiers (one snapshot)."""
    with db.reading() as session:
        rows = AndonRows(session)
        andons = rows.unacknowledged()
        return andons, rows.fired_tiers([a.id for a in andons])


def overdue_uncalled_requests(db: Database, now: datetime) -> list[RequestRow]:
    """Open requests past their due time that no andon is linked to yet."""
    with db.reading() as session:
        called = select(AndonRow.request_id).where(col(AndonRow.request_id).is_not(None))
        stmt = select(RequestRow).where(
            col(RequestRow.closed_at).is_(None),
            col(RequestRow.due_at) <= now,
            col(RequestRow.id).not_in(called),
        )
        return list(session.exec(stmt).all())


def supplied_material_andons(db: Database) -> list[str]:
    """Ids of unresolved, uncancelled andons whose linked request has closed."""
    with db.reading() as session:
        stmt = (
            select(AndonRow.id)
            .join(RequestRow, col(RequestRow.id) == col(AndonRow.request_id))
            .where(
                col(AndonRow.resolved_at).is_(None),
                col(AndonRow.cancelled_at).is_(None),
                col(RequestRow.closed_at).is_not(None),
            )
        )
        return list(session.exec(stmt).all())
