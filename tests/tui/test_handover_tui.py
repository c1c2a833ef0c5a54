"""Shift handover on the screen (issue 18, last point): the sheet is offered once the shift has
changed, Ctrl+T shows it in the badge + PIN dialog, and the incoming team lead takes it over; the
card log has one `handover_acknowledged` row with the sheet's summary."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select
from textual.widgets import Static

from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.tui.test_andon_tui import badge_and_pin, settle


async def test_the_incoming_team_lead_takes_the_shift_over_on_the_screen(tmp_path: Path) -> None:
    terminal: Terminal = enrolled(open_terminal(tmp_path, FakeClock()))  # 06:00 UTC: shift 1 begins
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.handover_tick()  # what the App's one-second tick does (the first of each minute)
            await settle(app, pilot)
            offered = [str(n.message) for n in app._notifications]
            assert any("Shift handover due: shift 1 of 2026-03-02" in m for m in offered), offered
            await pilot.press("ctrl+t")
            await settle(app, pilot)
            dialog = app.screen
            assert isinstance(dialog, BadgeScreen)
            sheet = str(dialog.query(Static).first().render())
            assert "Handover, shift 1 of 2026-03-02 (from 06:00 UTC)" in sheet and "Lost cards: none" in sheet
            await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
            assert not isinstance(app.screen, BadgeScreen)
            assert any(f"{TEAM_LEAD} took over shift 1" in str(n.message) for n in app._notifications)
        with terminal.db.reading() as s:
            rows = s.exec(select(CardLogRow).where(col(CardLogRow.event) == "handover_acknowledged")).all()
        assert [(r.actor, r.source) for r in rows] == [(TEAM_LEAD, "keyboard")]
        assert rows[0].detail.startswith("shift 1 of 2026-03-02 (from 06:00 UTC): 0 open andons")
    finally:
        terminal.close()


async def test_the_offer_waits_while_a_dialog_is_open(tmp_path: Path) -> None:
    """At 80x24 the offer's toast covers the right half of the badge, PIN and resolve dialogs: it is
    not put up while one is open, and comes at the next check after the dialog has closed."""
    terminal: Terminal = enrolled(open_terminal(tmp_path, FakeClock()))  # 06:00 UTC: shift 1 begins
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            app.push_screen(BadgeScreen("Call help", need_pin=True))
            await settle(app, pilot)
            app.handover_tick()
            await settle(app, pilot)
            assert not [n for n in app._notifications if "Shift handover due" in str(n.message)]
            app.pop_screen()
            await settle(app, pilot)
            app._handover_ticks = 0  # the next minute's check
            app.handover_tick()
            await settle(app, pilot)
            offered = [n for n in app._notifications if "Shift handover due" in str(n.message)]
            assert len(offered) == 1 and offered[0].timeout == 15
    finally:
        terminal.close()


async def test_a_tick_while_the_app_closes_is_no_crash(tmp_path: Path) -> None:
    """The one-second timer can tick after the last screen has gone (seen once in CI: "No screens on
    stack" from the dialog check): the check then does nothing."""
    terminal: Terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
        assert not app.screen_stack  # closed: what the late tick finds
        app._handover_ticks = 0  # the first tick of a minute: the one that checks
        app.handover_tick()
    finally:
        terminal.close()
