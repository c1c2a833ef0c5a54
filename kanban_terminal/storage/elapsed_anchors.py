"""Stored elapsed anchors (table `elapsed_anchor`): read in a snapshot, written in a unit of work.

Maps rows to the domain's `ElapsedAnchor` and back; decides nothing (domain/clocks.py does) and
never commits (the unit of work does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, delete, select

from kanban_terminal.domain.clocks import ElapsedAnchor
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import ElapsedAnchorRow
from kanban_terminal.storage.types import from_text


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


def load_raw(raw: Any, keys: Iterable[str]) -> dict[str, ElapsedAnchor]:
    """`load` inside a raw snapshot (`Database.snapshot()`): the screens' reads every 2 s. Through a
    second ORM session `read_status` took 1.56x the CPU (bench/elapsed_reads.py); here it rides in
    the snapshot the read already opens."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = raw.execute(
        f"SELECT key, boot_id, mono_s, elapsed_s, saved_at FROM elapsed_anchor "
        f"WHERE key IN ({', '.join('?' * len(wanted))})",
        wanted,
    ).fetchall()
    return {r[0]: ElapsedAnchor(r[0], r[1], float(r[2]), float(r[3]), from_text(r[4])) for r in rows}


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


def drop(session: Session, keys: Iterable[str]) -> None:
    """Delete the anchors of `keys` (a timer taken over under another key)."""
    wanted = list(keys)
    if wanted:
        session.exec(delete(ElapsedAnchorRow).where(col(ElapsedAnchorRow.key).in_(wanted)))
