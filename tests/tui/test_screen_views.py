"""Attributes down, messages up (issue 14), through Pilot: a screen shows the view it is given with
no KanbanApp around it; keys on a screen post commands that the App carries out; a screen that was
hidden gets the latest view when it comes back."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.message import Message
from textual.widgets import DataTable

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.queries import read_status
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from kanban_terminal.tui.screens.board import BoardScreen
from kanban_terminal.tui.screens.scan import ScanScreen
from kanban_terminal.tui.views import ScreenChrome, TerminalView
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.recent_scans import RecentScans
from kanban_terminal.tui.widgets.status_bar import LinkView, StatusBar
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal

CHROME = ScreenChrome("T-9", "Test line", "Scan something")
OFFLINE = LinkView("offline", None, 0, None)


class Host(App[None]):
    """A bare Textual app: whatever the screen shows came from `show(view)`, nothing else."""

    def __init__(self, screen: BoardScreen | AndonScreen) -> None:
        super().__init__()
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


async def test_a_screen_shows_the_view_it_is_given_without_the_kanban_app(tmp_path: Path) -> None:
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    try:
        card = next(iter(terminal.card_loops))
        outcome = record_scan(terminal, card, source="keyboard")
        state = login(terminal, TEAM_LEAD, PIN, source="cli")
        assert not isinstance(state, Rejection)
        stop = svc.raise_andon(
            terminal, AndonKind.STOP, "ST30", "SAFE", source="cli", auth=AuthSession(state)
        )
        assert stop.ok
        view = TerminalView(
            now=terminal.clock(),
            link=OFFLINE,
            last_outcome=outcome,
            status=read_status(terminal),
            andon_board=read_board(terminal),
        )
        screen = BoardScreen(CHROME)
        screen.show(view)  # before it is mounted: kept, drawn on mount
        async with Host(screen).run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert screen.query_one("#requests", DataTable).row_count == 1
            assert screen.query_one(Banner).has_class("-accepted")
            assert "T-9" in str(screen.query_one(StatusBar).render())
            assert screen.query_one(StopBanner).display
            screen.show(TerminalView(now=terminal.clock(), link=OFFLINE))  # no board yet: kept as drawn
            await pilot.pause()
            assert screen.query_one("#requests", DataTable).row_count == 1
            assert "Scan something" in str(screen.query_one(Banner).render())
            assert not screen.query_one(StopBanner).display
    finally:
        terminal.close()


async def test_andon_keys_post_commands_the_app_carries_out(tmp_path: Path) -> None:
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    messages: list[Message] = []
    try:
        svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli")
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
            await app.switch_mode("andon")
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
            await pilot.press("f7")
            await pilot.pause()
            [act] = [m for m in messages if isinstance(m, AndonScreen.Act)]
            assert (act.action, act.view.andon.station) == ("acknowledge", "ST20")
            assert isinstance(app.screen, BadgeScreen)  # the App asks for the responder's badge
            await pilot.press("escape")
            await pilot.pause()

            state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
            assert not isinstance(state, Rejection)
            app.auth.start(state)
            await pilot.press("ctrl+o")  # log out
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
            assert any(isinstance(m, AndonScreen.EndSession) for m in messages)
            assert app.auth.state is None
            assert "No team lead logged in" in str(app.screen.query_one("#andon-title").render())
    finally:
        terminal.close()


async def test_board_f7_asks_the_app_to_suspend_or_resume_a_card(tmp_path: Path) -> None:
    terminal = enrolled(open_terminal(tmp_path, FakeClock()))
    messages: list[Message] = []
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            await pilot.press("f7")
            await pilot.pause()
            assert any(isinstance(m, BoardScreen.SuspendOrResumeCard) for m in messages)
            assert isinstance(app.screen, BadgeScreen) and app.screen.need_pin
    finally:
        terminal.close()


async def test_a_screen_hidden_during_a_scan_shows_it_when_it_comes_back(tmp_path: Path) -> None:
    terminal: Terminal = open_terminal(tmp_path, FakeClock())
    messages: list[Message] = []
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            field = app.screen.query_one("#scan-field")
            field.value = next(iter(terminal.card_loops))  # type: ignore[attr-defined]
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("f12")  # the scan screen
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ScanScreen)
            assert any(isinstance(m, ScanScreen.Shown) and m.screen is screen for m in messages)
            assert screen.query_one(RecentScans).row_count == 1
            assert screen.query_one(Banner).has_class("-accepted")
    finally:
        terminal.close()
