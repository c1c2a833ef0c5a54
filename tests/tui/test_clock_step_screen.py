"""A wall-clock step while the screen runs (issue floor80: steps were tested through `serve` and the
escalation runner only). NTP or a person sets the line PC's clock back an hour, then two hours
forward, with the line stopped and requests open; the real App on a real SQLite file, at 80x24."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import func, select

from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.support.andon import FakeClock
from tests.support.floor import floor_terminal, settle
from tests.support.screen_text import reads, screen_lines

NEGATIVE = re.compile(r"(?<![\w-])-\d")
"""A minus sign before a figure, not inside an id such as 100-2231 or L1-T1."""


def log_rows(terminal: Terminal) -> int:
    with terminal.db.reading() as s:
        return int(s.exec(select(func.count()).select_from(CardLogRow)).one())


async def test_a_wall_clock_step_while_the_screen_runs_changes_no_record_and_shows_no_negative_time(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    terminal = floor_terminal(tmp_path, "stop", clock)
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await app.switch_mode("board")
            await settle(app, pilot)
            clock.advance(minutes=3)
            before = log_rows(terminal)
            for step in (-1, 2):
                clock.step_wall(hours=step)
                app._tick()  # what the App's one-second timer does
                app.refresh_status()
                await settle(app, pilot)
                frame = "\n".join(screen_lines(app))
                assert f"{clock.now.astimezone():%H:%M:%S}" in frame  # the status bar follows the clock
                assert reads(app, "LINE STOPPED ST30 Safety", app.screen.query_one(StopBanner)), frame
                assert not NEGATIVE.search(frame), frame  # the board read "-54 min" after the step back
                assert log_rows(terminal) == before, "a tick after a clock step wrote nothing"
                assert read_board(terminal).line.stopped
            field = app.screen.query_one(ScanField)
            field.value = "B1002X"
            field.focus()
            await pilot.press("enter")
            await settle(app, pilot)
            banner = app.screen.query_one(Banner)
            assert reads(app, f"REFILL REQUESTED at {clock.now.astimezone():%H:%M:%S}", banner)
            assert log_rows(terminal) > before
    finally:
        terminal.close()
