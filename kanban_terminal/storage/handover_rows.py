"""Who took a shift over: the `handover_acknowledged` card-log row since the shift's start, read
inside the caller's transaction (so two take-overs at once cannot both see "not yet"). Decides nothing."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from kanban_terminal.storage.tables import CardLogRow

EVENT = "handover_acknowledged"


def taken_by(session: Session, since: datetime) -> str | None:
    """The actor of the first take-over row at or after `since`, None when there is none."""
    row = session.exec(
        select(CardLogRow.actor)
        .where(col(CardLogRow.event) == EVENT, col(CardLogRow.occurred_at) >= since)
        .order_by(col(CardLogRow.id))
        .limit(1)
    ).first()
    return None if row is None else (row or "someone")
