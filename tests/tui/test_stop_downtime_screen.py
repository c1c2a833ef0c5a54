"""The screen shows a line stop's elapsed downtime, whatever the wall clock does (issue 17 follow-up).

The real App on a real SQLite file at 80x24: a STOP raised and anchored (the escalation runner's
tick, as `serve` does every second), the wall clock stepped +1 h (or -1 h) while 4 minutes pass on
the monotonic clock. The stop banner read "1 h 04 min" (or "0:00"), the andon screen's "For" column
the same; now both read 4:00, and resolving through F8 (badge, PIN, note) records 240 s, which the
screen's history then shows. Without the anchor the banner shows the wall difference, as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select
from textual.widgets import DataTable

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services import andon as svc
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import ResolveScreen
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.screen_text import reads, screen_lines
from tests.tui.test_andon_tui import badge_and_pin, settle


def raise_stop(terminal: Terminal) -> str:
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection)
    outcome = svc.raise_andon(
        terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=AuthSession(state)
    )
    assert outcome.andon is not None, outcome.message
    return outcome.andon.id


def downtime_logged(terminal: Terminal) -> list[float | None]:
    with terminal.db.reading() as s:
        return list(s.exec(select(CardLogRow.downtime_s).where(CardLogRow.event == "andon_resolved")).all())


async def show_andon_screen(app: KanbanApp, pilot) -> AndonScreen:  # type: ignore[no-untyped-def]
    await app.switch_mode("andon")
    app._tick()  # what the App's one-second clock timer does
    await settle(app, pilot)
    assert isinstance(app.screen, AndonScreen)
    return app.screen


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
async def test_the_banner_and_the_andon_screen_count_elapsed_time_and_f8_records_it(
    tmp_path: Path, hours: float
) -> None:
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path / "data", clock))
    andon_id = raise_stop(terminal)
    EscalationRunner(terminal).tick()  # anchors the stop, as `serve` would
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            clock.advance(minutes=2)
            clock.step_wall(hours=hours)
            clock.advance(minutes=2)
            app._tick()  # no database read: the banner counts on from the last read
            await settle(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "LINE STOPPED ST30 Safety 4:00", app.screen.query_one(StopBanner)), frame
            screen = await show_andon_screen(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "STOP ST30 Safety WAITING 4:00", screen), frame
            await pilot.press("f8")
            await pilot.pause()
            await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
            dialog = app.screen
            assert isinstance(dialog, ResolveScreen)
            dialog.query_one("#note-field").value = "guard refitted"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await settle(app, pilot)
            assert downtime_logged(terminal) == [240.0]
            clock.advance(minutes=10)  # the recorded figure stays: it no longer runs
            screen = await show_andon_screen(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "Fixed, not acknowledged 4:00", screen), frame
            assert andon_id in {str(k.value) for k in screen.query_one("#andon-active", DataTable).rows}
    finally:
        terminal.close()


async def test_without_an_anchor_the_banner_shows_the_wall_difference(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path / "data", clock))
    raise_stop(terminal)  # no runtime ran: nothing better than the wall clock exists
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            clock.advance(minutes=2)
            clock.step_wall(hours=1)
            clock.advance(minutes=2)
            app._tick()
            await settle(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "LINE STOPPED ST30 Safety 1 h 04 min", app.screen.query_one(StopBanner)), frame
    finally:
        terminal.close()


@pytest.mark.parametrize("anchored", [True, False], ids=["anchored", "no-runtime"])
async def test_the_board_marks_a_request_overdue_on_elapsed_time(tmp_path: Path, anchored: bool) -> None:
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path / "data", clock))
    loop = next(lp for lp in terminal.config.loops if lp.lead_time_minutes == 30 and lp.material_andon)
    assert record_scan(terminal, loop.card_id_list()[0], source="keyboard").accepted
    if anchored:
        EscalationRunner(terminal).tick()
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await app.switch_mode("board")
            await settle(app, pilot)
            clock.advance(minutes=10)
            clock.step_wall(hours=1)  # a 30-minute request, 10 minutes old
            app.refresh_status()  # the board's poll (every 2 s)
            await settle(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert ("OVERDUE" in frame) is not anchored, frame
            row = next(line for line in frame.splitlines() if "Refill requested" in line)
            assert (" 10 min " if anchored else " 1 h 10 min ") in row, frame
    finally:
        terminal.close()
