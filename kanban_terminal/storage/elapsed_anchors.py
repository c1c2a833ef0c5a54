"""Stored elapsed anchors (table `elapsed_anchor`): read in a snapshot, written in a unit of work.

Maps rows to the domain's `ElapsedAnchor` and back; decides nothing (domain/clocks.py does) and
never commits (the unit of work does).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, delete, select

from kanban_terminal.domain.clocks import ElapsedAnchor
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import ElapsedAnchorRow


def load(db: Database, keys: Iterable[str]) -> dict[str, ElapsedAnchor]:
    """The stored anchors of `keys` (missing keys are simply absent)."""
    wanted = list(keys)
    if not wanted:
        return {}
    with db.reading() as s:
        return load_in(s, wanted)


def load_in(session: Session, keys: Iterable[str]) -> dict[str, ElapsedAnchor]:
    """`load` inside the caller's transaction (a resolve reads its stop's anchor where it writes)."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = session.exec(select(ElapsedAnchorRow).where(col(ElapsedAnchorRow.key).in_(wanted))).all()
    return {r.key: ElapsedAnchor(r.key, r.boot_id, r.mono_s, r.elapsed_s, r.saved_at) for r in rows}


def save(session: Session, anchors: Iterable[ElapsedAnchor]) -> None:
    """Insert or replace each anchor, inside the caller's transaction."""
    for a in anchors:
        session.merge(ElapsedAnchorRow(key=a.key, boot_id=a.boot_id, mono_s=a.mono_s,
                                       elapsed_s=a.elapsed_s, saved_at=a.saved_at))  # fmt: skip


def drop_except(session: Session, prefix: str, keep: Iterable[str]) -> None:
    """Delete the anchors under `prefix` whose key is not in `keep` (timers that ended)."""
    kept = list(keep)
    stmt = delete(ElapsedAnchorRow).where(col(ElapsedAnchorRow.key).startswith(prefix))
    if kept:
        stmt = stmt.where(col(ElapsedAnchorRow.key).notin_(kept))
    session.exec(stmt)
