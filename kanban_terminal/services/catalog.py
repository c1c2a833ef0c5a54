"""Mirroring the configured parts, loops and cards into the database.

The config file is the source of truth for what exists; the database keeps each card's state and its
history. New cards start in use; cards dropped from the config are retired, never deleted, so their
log stays readable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlmodel import select

from kanban_terminal.domain.cards import CardState
from kanban_terminal.services.lost_cards import apply_replacements
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.scan_repo import driver
from kanban_terminal.storage.tables import CardReplacementRow, LoopRow, PartRow
from kanban_terminal.storage.types import to_text


def sync_catalog(terminal: Terminal) -> int:
    """Write config changes to the database; returns how many rows changed."""
    cfg = terminal.config
    now = terminal.clock()
    changed = 0
    with terminal.db.transaction() as session:
        parts = {p.number: p for p in session.exec(select(PartRow))}
        for part in cfg.parts:
            row = parts.get(part.number)
            if row is None:
                session.add(PartRow(number=part.number, description=part.description, unit=part.unit))
                changed += 1
            elif (row.description, row.unit) != (part.description, part.unit):
                row.description, row.unit = part.description, part.unit
                changed += 1
        session.flush()
        loops = {lp.id: lp for lp in session.exec(select(LoopRow))}
        for loop in cfg.loops:
            values: dict[str, Any] = {
                "part_number": loop.part,
                "station": loop.station,
                "point_of_use": loop.point_of_use,
                "source": loop.source,
                "container_quantity": loop.container_quantity,
                "card_count": len(loop.card_id_list()),
                "lead_time_s": loop.lead_time_minutes * 60,
                "safety_factor": loop.safety_factor,
            }
            loop_row = loops.get(loop.id)
            if loop_row is None:
                session.add(LoopRow(id=loop.id, **values))
                changed += 1
            elif any(getattr(loop_row, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(loop_row, key, value)
                changed += 1
        session.flush()
        # Lost cards replaced by new ids (issue 6): the old id stays retired, the new one is active.
        apply_replacements(terminal, session.exec(select(CardReplacementRow)).all())
        session.flush()
        changed += _sync_cards(terminal, session.connection(), to_text(now))
    return changed


def _sync_cards(terminal: Terminal, conn: Connection, now_text: str) -> int:
    """Register new cards, re-activate or move configured ones, retire dropped ones, in plain SQL.

    Why not the ORM: a new data dir for a 20,000-card line built 20,000 card and 20,000 log ORM
    objects in one session, and `serve` peaked at 217-225 MB before its first signal (bench), and
    every later start loaded every card as an ORM object just to compare three columns.
    """
    db = driver(conn)
    stored = {card_id: (loop_id, bool(retired)) for card_id, loop_id, retired in db.execute(
        "SELECT id, loop_id, retired FROM card"
    )}  # fmt: skip
    new_cards: list[tuple[str, str, str, str]] = []
    log_rows: list[tuple[object, ...]] = []
    moved: list[tuple[str, str]] = []
    tail = db.execute("SELECT hash FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
    prev: str = tail[0] if tail else card_log.GENESIS
    in_use = CardState.IN_USE.value
    for card_id, loop in terminal.card_loops.items():
        known = stored.get(card_id)
        if known is None:
            new_cards.append((card_id, loop.id, in_use, now_text))
            values = (  # card_log.FIELDS, in order
                "registered", card_id, loop.id, None, in_use, None, None, "config",
                f"card registered in loop {loop.id}", None,
            )  # fmt: skip
            prev = card_log.chain_hash(prev, now_text, now_text, values)
            log_rows.append((now_text, now_text, *values, prev))
        elif known[1] or known[0] != loop.id:
            moved.append((loop.id, card_id))
    retired = [
        (card_id,) for card_id, (_, gone) in stored.items() if card_id not in terminal.card_loops and not gone
    ]
    db.executemany(
        "INSERT INTO card (id, loop_id, state, state_since, retired) VALUES (?, ?, ?, ?, 0)", new_cards
    )
    card_log.insert_many(db, log_rows)
    db.executemany("UPDATE card SET retired = 0, loop_id = ? WHERE id = ?", moved)
    db.executemany("UPDATE card SET retired = 1 WHERE id = ?", retired)
    return len(new_cards) + len(moved) + len(retired)
