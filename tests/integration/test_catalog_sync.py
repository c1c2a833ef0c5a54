"""The catalog sync, which compares the stored cards as it reads them, still registers, moves and
retires exactly what the config changed (issue 19, RSS when ready)."""

from __future__ import annotations

from pathlib import Path

from kanban_terminal.config import parse_config
from kanban_terminal.services.catalog import sync_catalog
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import line_config


def test_the_catalog_sync_registers_moves_and_retires_only_what_the_config_changed(tmp_path: Path) -> None:
    def opened(loops: int, cards: int) -> tuple[Terminal, int]:
        terminal = Terminal.open(parse_config(line_config(loops=loops, cards=cards)), tmp_path / "data")
        again = sync_catalog(terminal.db, terminal.config, terminal.card_loops, terminal.clock())
        return terminal, again

    def cards(terminal: Terminal) -> dict[str, tuple[str, int]]:
        with terminal.db.snapshot() as sql:
            rows = sql.execute("SELECT id, loop_id, retired FROM card").fetchall()
            registered = sql.execute("SELECT count(*) FROM card_log WHERE event = 'registered'").fetchone()
        terminal.close()
        return {card: (loop, retired) for card, loop, retired in rows} | {"registered": registered}

    terminal, again = opened(loops=2, cards=3)
    assert again == 0, "a second sync of the same config changes nothing"
    first = cards(terminal)
    terminal, again = opened(loops=2, cards=3)  # a restart: every configured card is stored
    assert again == 0
    assert cards(terminal) == first
    terminal, again = opened(loops=3, cards=3)  # a new loop: only its cards are new
    assert again == 0
    third = cards(terminal)
    assert third == first | {f"C0000{i}": ("LP2", 0) for i in (7, 8, 9)} | {"registered": (9,)}
    terminal, again = opened(loops=1, cards=4)  # C00004 moves to LP0; LP1's others and LP2 retire
    assert cards(terminal) == {
        **{f"C0000{i}": ("LP0", 0) for i in (1, 2, 3, 4)},
        **{f"C0000{i}": ("LP1", 1) for i in (5, 6)},
        **{f"C0000{i}": ("LP2", 1) for i in (7, 8, 9)},
        "registered": (9,),
    }
