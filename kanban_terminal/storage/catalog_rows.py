"""The catalog's rows: parts, loops and cards as the configuration says they are, and replacements.

services/catalog.py decides what the configuration means; this module writes it inside a unit of
work. Parts and loops are few and go through the ORM; cards are many and go in plain SQL: a new
data dir for a 20,000-card line built 20,000 card and 20,000 log ORM objects in one session, and
`serve` peaked at 217-225 MB before its first signal (bench), and every later start loaded every
card as an ORM object just to compare three columns. It must not commit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select

from kanban_terminal.storage import card_log
from kanban_terminal.storage.page_cache import walk_cache
from kanban_terminal.storage.tables import CardReplacementRow, LoopRow, PartRow
from kanban_terminal.storage.types import to_text
from kanban_terminal.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Replacement:
    """A lost card replaced by a new id (services/lost_cards.py `replace_card`)."""

    old_id: str
    new_id: str
    loop_id: str
    replaced_at: datetime


def sync_parts(uow: UnitOfWork, parts: Mapping[str, tuple[str, str]]) -> int:
    """Make the part table say `parts` (number -> (description, unit)); returns rows changed."""
    session = uow.session
    stored = {p.number: p for p in session.exec(select(PartRow))}
    changed = 0
    for number, (description, unit) in parts.items():
        row = stored.get(number)
        if row is None:
            session.add(PartRow(number=number, description=description, unit=unit))
            changed += 1
        elif (row.description, row.unit) != (description, unit):
            row.description, row.unit = description, unit
            changed += 1
    session.flush()
    return changed


def sync_loops(uow: UnitOfWork, loops: Mapping[str, Mapping[str, Any]]) -> int:
    """Make the loop table say `loops` (id -> column values); returns rows changed. A loop's
    `next_seq` is never touched: requests keep counting across a config change."""
    session = uow.session
    stored = {lp.id: lp for lp in session.exec(select(LoopRow))}
    changed = 0
    for loop_id, values in loops.items():
        row = stored.get(loop_id)
        if row is None:
            session.add(LoopRow(id=loop_id, **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed += 1
    session.flush()
    return changed


def replacements(uow: UnitOfWork) -> list[Replacement]:
    """Every card replacement, oldest first (a replacement may itself have been replaced)."""
    rows = uow.session.exec(select(CardReplacementRow)).all()
    found = [Replacement(r.old_id, r.new_id, r.loop_id, r.replaced_at) for r in rows]
    return sorted(found, key=lambda r: r.replaced_at)


def sync_cards(uow: UnitOfWork, card_loops: Mapping[str, str], initial_state: str, now: datetime) -> int:
    """Register new cards (in `initial_state`, with a chained "registered" log row), re-activate or
    move configured ones, retire dropped ones; `card_loops` is card id -> loop id. Returns rows changed.

    The stored cards are compared as they are read, not gathered first: a dict of every stored card
    was 4-5 MB of Python objects at each start of a 20,000-card line (issue 19, RSS when ready), and
    the read walks the card table with a small page cache (page_cache.py) so none of it is kept.
    Which configured cards are new is looked up only when some are (a first start, a new card in
    the config)."""
    uow.flush()  # the ORM's part and loop rows first: cards refer to loops
    db = uow.sql
    now_text = to_text(now)
    moved: list[tuple[str, str]] = []
    retired: list[tuple[str]] = []
    found = 0
    with walk_cache(db):
        for card_id, loop_id, gone in db.execute("SELECT id, loop_id, retired FROM card"):
            configured = card_loops.get(card_id)
            if configured is None:
                if not gone:
                    retired.append((card_id,))
                continue
            found += 1  # ids are the table's key: each configured card is found once at most
            if gone or configured != loop_id:
                moved.append((configured, card_id))
        stored: Collection[str] = ()
        if found < len(card_loops):
            stored = {card_id for (card_id,) in db.execute("SELECT id FROM card")}
    new_cards: list[tuple[str, str, str, str]] = []
    log_rows: list[tuple[object, ...]] = []
    tail = db.execute("SELECT hash FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
    prev: str = tail[0] if tail else card_log.GENESIS
    if found < len(card_loops):
        for card_id, loop_id in card_loops.items():
            if card_id not in stored:
                new_cards.append((card_id, loop_id, initial_state, now_text))
                values = (  # card_log.FIELDS, in order
                    "registered", card_id, loop_id, None, initial_state, None, None, "config",
                    f"card registered in loop {loop_id}", None,
                )  # fmt: skip
                prev = card_log.chain_hash(prev, now_text, now_text, values, key=uow.log_key)
                log_rows.append((now_text, now_text, *values, prev))
    db.executemany(
        "INSERT INTO card (id, loop_id, state, state_since, retired) VALUES (?, ?, ?, ?, 0)", new_cards
    )
    card_log.insert_many(db, log_rows)
    db.executemany("UPDATE card SET retired = 0, loop_id = ? WHERE id = ?", moved)
    db.executemany("UPDATE card SET retired = 1 WHERE id = ?", retired)
    return len(new_cards) + len(moved) + len(retired)
