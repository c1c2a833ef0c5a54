"""Mirroring the configured parts, loops and cards into the database.

The config file is the source of truth for what exists; the database keeps each card's state and its
history. New cards start in use; cards dropped from the config are retired, never deleted, so their
log stays readable. Lost cards replaced by new ids (issue 6, services/lost_cards.py) stay retired,
and their replacements take their place in the card -> loop map.

It knows the config and the database, not the `Terminal` that opens them (`Terminal.open` calls it),
so it imports nothing of services.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from kanban_terminal.config import Loop, TerminalConfig
from kanban_terminal.domain.cards import CardState
from kanban_terminal.storage import catalog_rows
from kanban_terminal.storage.catalog_rows import Replacement
from kanban_terminal.storage.db import Database


def sync_catalog(db: Database, config: TerminalConfig, card_loops: dict[str, Loop], now: datetime) -> int:
    """Write config changes to the database, and swap replaced card ids in `card_loops` for their
    replacements (in place); returns how many rows changed."""
    with db.unit_of_work() as uow:
        parts = {p.number: (p.description, p.unit) for p in config.parts}
        changed = catalog_rows.sync_parts(uow, parts)
        loops: dict[str, dict[str, Any]] = {
            loop.id: {
                "part_number": loop.part,
                "station": loop.station,
                "point_of_use": loop.point_of_use,
                "source": loop.source,
                "container_quantity": loop.container_quantity,
                "card_count": len(loop.card_id_list()),
                "lead_time_s": loop.lead_time_minutes * 60,
                "safety_factor": loop.safety_factor,
            }
            for loop in config.loops
        }
        changed += catalog_rows.sync_loops(uow, loops)
        apply_replacements(config, card_loops, catalog_rows.replacements(uow))
        changed += catalog_rows.sync_cards(uow, _LoopIds(card_loops), CardState.IN_USE.value, now)
    return changed


class _LoopIds(Mapping[str, str]):
    """Card id -> its loop's id, read through `card_loops`: a dict made for the sync was 20,000
    entries (1.3 MB at once) at every start of a 20,000-card line (issue 19, RSS when ready)."""

    __slots__ = ("_card_loops",)

    def __init__(self, card_loops: Mapping[str, Loop]):
        self._card_loops = card_loops

    def __getitem__(self, card: str) -> str:
        return self._card_loops[card].id

    def __contains__(self, card: object) -> bool:
        return card in self._card_loops

    def __iter__(self) -> Iterator[str]:
        return iter(self._card_loops)

    def __len__(self) -> int:
        return len(self._card_loops)


def apply_replacements(
    config: TerminalConfig, card_loops: dict[str, Loop], replacements: list[Replacement]
) -> None:
    """Swap replaced ids for their replacements in `card_loops`, oldest replacement first (a
    replacement may itself have been replaced)."""
    by_loop = {lp.id: lp for lp in config.loops}
    for r in sorted(replacements, key=lambda r: r.replaced_at):
        loop = card_loops.pop(r.old_id, None) or by_loop.get(r.loop_id)
        if loop is not None:
            card_loops[r.new_id] = loop
