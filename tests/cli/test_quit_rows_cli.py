"""A kiosk quit found by maintenance through the CLI door (issue floor80: the quit tests called the
log query directly). The real App in kiosk mode quits after a refused PIN; `export --event` through
main() then lists both rows, with the team lead's badge, as a person at a shell would find them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from tests.support.andon import TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.floor import press, settle
from tests.tui.test_floor_keys import badge_and_pin


async def test_a_kiosk_quit_and_the_refused_try_before_it_are_found_with_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    try:
        app = KanbanApp(terminal, kiosk=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await press(app, pilot, "ctrl+q")
            await badge_and_pin(app, pilot, pin="0000")
            assert isinstance(app.screen, BadgeScreen) and not app._exit  # asked again
            await badge_and_pin(app, pilot)
            assert app._exit
    finally:
        terminal.close()
    args = ["export", "--event", "terminal_quit", "--event", "terminal_quit_refused", "--out", "-"]
    assert main([*args, "--config", str(demo_config_path()), "--data-dir", str(tmp_path)]) == 0
    found = sorted(csv.DictReader(io.StringIO(capsys.readouterr().out)), key=lambda r: int(r["id"]))
    assert [(r["event"], r["actor"], r["source"]) for r in found] == [
        ("terminal_quit_refused", TEAM_LEAD, "keyboard"),
        ("terminal_quit", TEAM_LEAD, "keyboard"),
    ], found
    assert "wrong" in found[0]["detail"].lower() and "kiosk" in found[1]["detail"]
