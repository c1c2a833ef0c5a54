"""Issue 18 on the screen, through Pilot: the board sorts loops by runway and colours only the loop at
risk (amber); a red card scanned at the scan field says the reserve is drawn; F6 lets an operator
stop the line for quality with no PIN, and a team lead confirms it from the andon screen."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets import DataTable

from kanban_terminal.domain.andon import AndonState
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.queries import read_status
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.palette import ATTENTION
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from kanban_terminal.tui.screens.board import BoardScreen
from kanban_terminal.tui.views import ScreenChrome, TerminalView
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import LinkView
from tests.support.andon import OPERATOR, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.tui.test_andon_tui import badge_and_pin, pick, settle

BOLT = "ST10-BOLT"


class Host(App[None]):
    def __init__(self, screen: BoardScreen) -> None:
        super().__init__()
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


async def test_board_sorts_by_runway_and_only_the_loop_at_risk_is_amber(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path, clock)
    try:
        cards = terminal.config.loop(BOLT).card_id_list()
        record_scan(terminal, cards[0], source="keyboard")
        clock.advance(minutes=10)
        record_scan(terminal, cards[1], source="keyboard")  # one bin left for a 4 h refill: at risk
        screen = BoardScreen(ScreenChrome("T", "L", ""))
        screen.show(
            TerminalView(now=clock(), link=LinkView("offline", None, 0, None), status=read_status(terminal))
        )
        async with Host(screen).run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            table = screen.query_one("#loops", DataTable)
            first = table.get_row_at(0)
            assert str(first[0]) == BOLT and "RES 1/1" in str(first[1])
            assert str(first[0].style) == ATTENTION  # amber: the floor palette's attention colour
            styled = [table.get_row_at(i)[0].style for i in range(1, table.row_count)]
            assert all(not s for s in styled), "loops not at risk stay uncoloured (ISA-101)"
    finally:
        terminal.close()


async def test_operator_pulls_the_cord_for_quality_and_a_team_lead_confirms(tmp_path: Path) -> None:
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f6")
            await pilot.pause()
            await pick(app, pilot, "ST30", "QUAL")  # no badge, no PIN asked
            [stop] = read_board(terminal).line.active
            assert read_board(terminal).line.stopped and stop.andon.state is AndonState.RAISED
            await app.switch_mode("andon")
            await settle(app, pilot)
            assert isinstance(app.screen, AndonScreen)
            await pilot.press("f7")
            await pilot.pause()
            await badge_and_pin(app, pilot, OPERATOR, None)  # an operator's badge does not confirm it
            assert read_board(terminal).line.active[0].andon.acknowledged_by is None
            await pilot.press("f7")
            await pilot.pause()
            assert isinstance(app.screen, BadgeScreen)
            await badge_and_pin(app, pilot, TEAM_LEAD, None)
            assert read_board(terminal).line.active[0].andon.acknowledged_by == TEAM_LEAD
    finally:
        terminal.close()


async def test_a_red_card_scanned_at_the_screen_says_the_reserve_is_drawn(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path, clock)
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            field = app.screen.query_one(ScanField)
            field.value = "R10016"
            field.focus()
            await pilot.press("enter")
            await settle(app, pilot)
            assert "RESERVE drawn" in str(app.screen.query_one(Banner).render())
    finally:
        terminal.close()
