"""The recorded downtime of resolved STOPs (the `downtime_s` fact of their resolve row in the card log).

A resolved stop's duration is what was recorded at its resolve, counted on the monotonic clock when
an anchor existed (services/andon_elapsed.py); re-deriving it from `resolved_at - raised_at` later
would bring back a wall-clock step during the stop. Reads only; decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from kanban_terminal.storage.tables import CardLogRow


def recorded_raw(raw: Any, andon_ids: Iterable[str]) -> dict[str, float]:
    """Seconds of downtime recorded at the resolve of each of `andon_ids` that has one, inside a raw
    snapshot (`Database.snapshot()`: no second ORM session for the andon screen's read)."""
    wanted = list(andon_ids)
    if not wanted:
        return {}
    rows = raw.execute(
        "SELECT andon_id, downtime_s FROM card_log WHERE event = 'andon_resolved' AND downtime_s IS NOT NULL "
        f"AND andon_id IN ({', '.join('?' * len(wanted))})",
        wanted,
    ).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def recorded_in(session: Session, andon_ids: Iterable[str]) -> dict[str, float]:
    """`recorded_raw` inside the caller's ORM transaction (uses ix_card_log_andon_id)."""
    wanted = list(andon_ids)
    if not wanted:
        return {}
    stmt = select(CardLogRow.andon_id, CardLogRow.downtime_s).where(
        col(CardLogRow.andon_id).in_(wanted),
        CardLogRow.event == "andon_resolved",
        col(CardLogRow.downtime_s).is_not(None),
    )
    return {a: float(d) for a, d in session.exec(stmt).all() if a is not None and d is not None}
