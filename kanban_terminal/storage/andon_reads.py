"""Andon reads in a snapshot of their own: the board, what escalation looks at, material calls.

Each function takes the `Database` and reads in one snapshot (`Database.reading()`) through
`AndonRows` or plain ORM queries, returning domain andons or table rows. It must never write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from kanban_terminal.domain.andon import Andon
from kanban_terminal.storage.andon_rows import NEEDS_ATTENTION, AndonRows
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import AndonRow, RequestRow
from kanban_terminal.storage.types import from_text


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


def attention_marks(db: Database) -> tuple[tuple[str, str], ...]:
    """(id, state) of each andon needing attention, by id. It changes with every raise, acknowledge,
    resolve and cancel, whichever process made it: one small read on `ix_andon_state` for a screen
    that must see what another door (the CLI, another process) did to the line."""
    marks = ",".join("?" * len(NEEDS_ATTENTION))
    with db.snapshot() as raw:
        found = raw.execute(
            f"SELECT id, state FROM andon WHERE state IN ({marks}) ORDER BY id", NEEDS_ATTENTION
        ).fetchall()
    return tuple((str(andon_id), str(state)) for andon_id, state in found)


def escalation_candidates(
    db: Database,
) -> tuple[list[Andon], dict[str, tuple[int, ...]], list[tuple[str, datetime]]]:
    """Unacknowledged, uncancelled andons, their fired tiers, and (id, raised_at) of every andon
    still active, acknowledged or not, whose elapsed timer runs until it ends (one snapshot).

    One read of the andons needing attention on `ix_andon_state` (a superset of both), split here.
    Median CPU, demo line, 1 STOP acknowledged + 1 CALL open, alternating in one process on the busy
    box (branch onemono): the unacknowledged read alone 525-575 us (what it read before), plus a
    second select for the active ones 784 us, this one 603-669 us (300 closed andons: 500 -> 557).
    It runs only on full reads with an andon open (skipped with none: services/escalation.py)."""
    with db.reading() as session:
        rows = AndonRows(session)
        attention = rows.attention()
        andons = [a for a in attention if a.acknowledged_at is None and a.cancelled_at is None]
        running = [(a.id, a.raised_at) for a in attention if a.active]
        return andons, rows.fired_tiers([a.id for a in andons]), running


@dataclass(frozen=True)
class OpenRequestTimes:
    id: str
    loop_id: str
    raised_at: datetime
    due_at: datetime


def uncalled_request_times(db: Database) -> list[OpenRequestTimes]:
    """Every open request no andon is linked to yet, with only what its timer needs. Plain SQL: the
    escalation tick reads them every second, and 1,000 ORM rows took 29 ms a tick, these 2-3 ms."""
    with db.snapshot() as raw:
        rows = raw.execute(
            "SELECT id, loop_id, raised_at, due_at FROM replenishment_request WHERE closed_at IS NULL "
            "AND id NOT IN (SELECT request_id FROM andon WHERE request_id IS NOT NULL)"
        ).fetchall()
    return [OpenRequestTimes(r[0], r[1], from_text(r[2]), from_text(r[3])) for r in rows]


def requests(db: Database, ids: list[str]) -> list[RequestRow]:
    """These requests, in full."""
    if not ids:
        return []
    with db.reading() as session:
        return list(session.exec(select(RequestRow).where(col(RequestRow.id).in_(ids))).all())


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
