"""Messages a person reads at 80x24 are whole (issue floor80): every word on screen, in order, wrapped
between words, inside the widget that shows it, with nothing on top. Asserted on the rendered frame
(tests/support/screen_text.py), not on string lengths, through the real App and Pilot on a real
SQLite file.

- A scan's outcome on a screen whose banner holds one row (board, andon, log, metrics): the
  headline alone said "SCAN NOT READ" without why, or "REFILL REQUESTED" for a red card without
  "RESERVE drawn" and what to do with the card; the words now come in a note.
- Notes piled up during a stop: at Textual's 40 columns four of them did not fit in 24 rows and the
  oldest scrolled out of sight unread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets._toast import Toast

from kanban_terminal.services.reserve import RESERVE_DRAWN
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from tests.support.andon import OPERATOR, FakeClock, enrolled, open_terminal
from tests.support.floor import floor_terminal, settle
from tests.support.screen_text import reads, screen_lines
from tests.tui.test_andon_tui import badge_and_pin, pick

SHORT_SCREENS = ("board", "andon", "log", "metrics")
RED_CARD = "R10016"
RESERVE_WORDS = RESERVE_DRAWN.format(card=RED_CARD, loop="ST10-BOLT")
MISREAD_WORDS = "Misread: B1001X is not a valid card code. Scan again."


async def scan(app: KanbanApp, pilot, code: str) -> None:  # type: ignore[no-untyped-def]
    field = app.screen.query_one(ScanField)
    field.value = code
    field.focus()
    await pilot.press("enter")
    await settle(app, pilot)
    await pilot.pause()  # the note's toast is mounted one turn after `notify`


def read_in_a_note(app: KanbanApp, message: str) -> bool:
    return any(reads(app, message, toast) for toast in app.screen.query(Toast))


def frame(app: KanbanApp) -> str:
    return "\n".join(screen_lines(app))


@pytest.mark.parametrize("mode", SHORT_SCREENS)
@pytest.mark.parametrize(("code", "message"), [(RED_CARD, RESERVE_WORDS), ("B1001X", MISREAD_WORDS)])
async def test_a_scan_on_a_screen_with_a_one_row_banner_still_says_why_and_what_to_do(
    tmp_path: Path, mode: str, code: str, message: str
) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await app.switch_mode(mode)
            await settle(app, pilot)
            await scan(app, pilot, code)
            banner = app.screen.query_one(Banner)
            assert not reads(app, message, banner), "the one-row banner cannot hold it (premise)"
            assert read_in_a_note(app, message), frame(app)
    finally:
        terminal.close()


async def test_a_routine_refill_on_the_board_adds_no_note(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await app.switch_mode("board")
            await settle(app, pilot)
            await scan(app, pilot, "B1002X")
            assert "REFILL REQUESTED" in frame(app)
            assert not [n for n in app._notifications if n.title.startswith("Scan")]
    finally:
        terminal.close()


@pytest.mark.parametrize(("code", "message"), [(RED_CARD, RESERVE_WORDS), ("B1001X", MISREAD_WORDS)])
async def test_on_the_scan_screen_the_banner_holds_the_whole_outcome(
    tmp_path: Path, code: str, message: str
) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await scan(app, pilot, code)
            assert reads(app, message, app.screen.query_one(Banner)), frame(app)
            assert not app.screen.query(Toast), "the banner says it: no note on top of it"
    finally:
        terminal.close()


async def test_four_notes_of_a_quality_stop_are_all_read_whole_at_80x24(tmp_path: Path) -> None:
    """An operator pulls the cord for quality (note 1), the shift's handover is due (note 2), the
    operator's badge cannot confirm the stop (note 3, 100 characters) nor cancel it (note 4)."""
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("f6")
            await pilot.pause()
            await pick(app, pilot, "ST30", "QUAL")
            await app.switch_mode("andon")
            await settle(app, pilot)
            await pilot.press("f7")
            await pilot.pause()
            await badge_and_pin(app, pilot, OPERATOR, None)
            await pilot.press("f9")
            await settle(app, pilot)
            await pilot.pause()
            notes = [str(n.message) for n in app._notifications]
            assert len(notes) == 4 and any("quality stop is confirmed by a team lead" in n for n in notes)
            for note in notes:
                assert read_in_a_note(app, note), f"{note!r} not whole on screen:\n{frame(app)}"
    finally:
        terminal.close()
