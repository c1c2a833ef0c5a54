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

from contextlib import ExitStack
from pathlib import Path

import pytest
from textual.widgets._toast import Toast

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.runtime import Runtime
from kanban_terminal.services import andon as svc
from kanban_terminal.services.handover import read_sheet, shift_now, taken_by
from kanban_terminal.services.reserve import RESERVE_DRAWN
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.boot import UNNAMED_FAILURE, RuntimeBoot
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from kanban_terminal.tui.supply_app import NO_SECOND_SOURCE
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import LinkView, StatusBar
from tests.support.andon import OPERATOR, PIN, TEAM_LEAD, FakeClock, demo_config, enrolled, open_terminal
from tests.support.floor import floor_terminal, settle
from tests.support.screen_text import reads, screen_lines, text_in, words
from tests.tui.test_andon_tui import badge_and_pin, pick
from tests.tui.test_launch import _until

SHORT_SCREENS = ("board", "andon", "log", "metrics")
RED_CARD = "R10016"
RESERVE_WORDS = RESERVE_DRAWN.format(card=RED_CARD, loop="ST10-BOLT")
MISREAD_WORDS = "Misread: B1001X is not a valid card code. Scan again."


@pytest.fixture(autouse=True)
def notes_outlive_a_slow_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notes expire on the wall clock (5 s by default): on a loaded box a test must not lose one."""
    monkeypatch.setattr(KanbanApp, "NOTIFICATION_TIMEOUT", 60)


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
@pytest.mark.parametrize(
    ("code", "message"), [(RED_CARD, RESERVE_WORDS), ("B1001X", MISREAD_WORDS)], ids=["red-card", "misread"]
)
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


@pytest.mark.parametrize(
    ("code", "message"), [(RED_CARD, RESERVE_WORDS), ("B1001X", MISREAD_WORDS)], ids=["red-card", "misread"]
)
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
            app.handover_tick()  # the offer, now rather than at the App's first tick (or both: once)
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


async def test_a_busy_shifts_handover_sheet_keeps_the_badge_and_pin_fields_on_screen(tmp_path: Path) -> None:
    """Two open calls, eight loops at risk and a reserve draw: 17 lines of sheet. Shown as the badge
    dialog's title they pushed the badge and PIN fields off a 24-row screen. Now the sheet scrolls
    with PgDn, the prompt and both fields stay, and every line of the sheet is read at some point."""
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path, clock))
    try:
        for loop in terminal.config.loops[:8]:
            for card in loop.card_id_list()[:2]:
                assert record_scan(terminal, card, source="keyboard").accepted
        for station in ("ST10", "ST20"):
            assert svc.raise_andon(terminal, AndonKind.CALL, station, "QUAL", source="cli").ok
        assert record_scan(terminal, RED_CARD, source="keyboard").accepted
        clock.advance(minutes=5)
        sheet = read_sheet(terminal).lines()
        assert len(sheet) >= 17
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await pilot.press("ctrl+t")
            await settle(app, pilot)
            dialog = app.screen
            assert isinstance(dialog, BadgeScreen)
            seen = ""
            for _ in range(4):
                assert reads(app, "INCOMING TEAM LEAD: scan your badge, then the PIN"), frame(app)
                for field in ("#badge-field", "#pin-field"):
                    region = dialog.query_one(field).region
                    assert region.height == 3 and region.bottom <= 24, frame(app)
                assert reads(app, "Scan your badge") and reads(app, "PIN, then Enter"), frame(app)
                seen += " " + text_in(app, dialog.query_one("#badge-sheet").region)
                await pilot.press("pagedown")
                await pilot.pause()
            for line in sheet:
                assert words(line) in seen, f"{line!r} never shown:\n{frame(app)}"
            assert reads(app, "Start of the sheet: PgUp"), frame(app)  # at its end, the hint says so
            await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
            assert not isinstance(app.screen, BadgeScreen)
            # The take-over commits on a worker thread: on a loaded box it could still be running
            # when the app was torn down (failed once, 2 failed of 1,254 with a helper's -n 3 beside).
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert taken_by(terminal, shift_now(terminal).start) == TEAM_LEAD
    finally:
        terminal.close()


async def test_a_start_failure_with_no_words_of_its_own_says_who_can_act_on_it(tmp_path: Path) -> None:
    """A bare `RuntimeError()` while opening: the screen said 'RuntimeError' before a review, then a
    sentence naming no file. It names who to call and where the details are, whole at 80x24."""

    def opener(stack: ExitStack) -> Runtime:
        raise RuntimeError()

    boot = RuntimeBoot(demo_config(), opener)
    app = KanbanApp(boot=boot)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await _until(pilot, lambda: bool(app.boot_failed), "the failure shown")
        await pilot.pause()
        await pilot.pause()
        assert read_in_a_note(app, f"The terminal could not start {UNNAMED_FAILURE}"), frame(app)
        assert "RuntimeError" not in frame(app)
    with pytest.raises(RuntimeError):
        boot.close()


async def test_f9_on_a_line_with_no_second_source_says_so_in_floor_words(tmp_path: Path) -> None:
    """The team lead's note named the config table `[[second_sources]]`; it says who sets one up."""
    config = demo_config().model_copy(update={"second_sources": ()})
    terminal = enrolled(open_terminal(tmp_path, FakeClock(), config))
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(app, pilot)
            await app.switch_mode("board")
            await settle(app, pilot)
            await pilot.press("f9")
            await settle(app, pilot)
            await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
            await pilot.pause()
            assert read_in_a_note(app, f"Not done {NO_SECOND_SOURCE}"), frame(app)
            assert "[[" not in frame(app) and "second_sources" not in frame(app)
    finally:
        terminal.close()


@pytest.mark.parametrize("state", ["normal", "stop"])
async def test_an_unplugged_scanner_is_on_the_80_column_status_bar_whatever_the_link_says(
    tmp_path: Path, state: str
) -> None:
    """It came last, after 'Upstream: offline (no upstream link)  Queued 4 (oldest 3 min)  Unsent 2'
    and the broker's refusal, and was cut off: the operator's own scanner, never said."""
    clock = FakeClock()
    terminal = floor_terminal(tmp_path, state, clock)
    busy = LinkView("offline (no upstream link)", None, 4, clock(), unsent=2, last_error="not authorised")
    app = KanbanApp(terminal, link_view=lambda _status: busy)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.scanner_states["ST10"] = False
            app.refresh_screen()
            await settle(app, pilot)
            bar = app.screen.query_one(StatusBar)
            line = "LINE STOPPED" if state == "stop" else "Line running"
            assert reads(app, f"{clock.now.astimezone():%H:%M:%S} {line} ST10 UNPLUGGED", bar), frame(app)
    finally:
        terminal.close()
