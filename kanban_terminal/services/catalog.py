"""Mirroring the configured parts, loops and cards into the database.

The config file is the source of truth for what exists; the database keeps each card's state and its
history. New cards start in use; cards dropped from the config are retired, never deleted, so their
log stays readable.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from kanban_terminal.domain.cards import CardState
from kanban_terminal.services.lost_cards import apply_replacements
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import CardLogRow, CardReplacementRow, CardRow, LoopRow, PartRow


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
        cards = {c.id: c for c in session.exec(select(CardRow))}
        for card_id, loop in terminal.card_loops.items():
            card = cards.get(card_id)
            if card is None:
                session.add(
                    CardRow(id=card_id, loop_id=loop.id, state=CardState.IN_USE.value, state_since=now)
                )
                card_log.append(
                    session,
                    CardLogRow(
                        occurred_at=now,
                        recorded_at=now,
                        event="registered",
                        card_id=card_id,
                        loop_id=loop.id,
                        to_state=CardState.IN_USE.value,
                        source="config",
                        detail=f"card registered in loop {loop.id}",
                    ),
                )
                changed += 1
            elif card.retired or card.loop_id != loop.id:
                card.retired, card.loop_id = False, loop.id
                changed += 1
        for card_id, card in cards.items():
            if card_id not in terminal.card_loops and not card.retired:
                card.retired = True
                changed += 1
    return changed
