"""Keys a floor can live with (issue 15, finding 6), through Pilot at 80x24: kiosk mode (no command
palette; quitting and cancelling a call need a team lead), the keymap from the config, F5 meaning
only "Log", the PIN-lockout message fitting its line, an empty resolve note refused with a word."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, Static

from kanban_terminal.config import load_config
from kanban_terminal.domain.andon import AndonKind, AndonState
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen, ResolveScreen
from kanban_terminal.tui.screens.confirm import ConfirmDeliveryScreen, ConfirmResult
from kanban_terminal.tui.screens.metrics import MetricsScreen
from kanban_terminal.tui.widgets.scan_field import ScanField
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.floor import press, settle
from tests.tui.test_andon_tui import pick


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


async def badge_and_pin(app: KanbanApp, pilot: Pilot[None], pin: str = PIN) -> None:
    dialog = app.screen
    assert isinstance(dialog, BadgeScreen)
    field = dialog.query_one("#badge-field", ScanField)
    field.value = TEAM_LEAD
    field.focus()
    await pilot.press("enter")
    await pilot.pause()
    dialog.query_one("#pin-field", Input).value = pin
    await press(app, pilot, "enter")


def notes(app: KanbanApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_kiosk_quit_needs_a_team_lead_and_says_why(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        assert isinstance(app.screen, BadgeScreen) and "QUIT" in app.screen.title_text
        assert not app._exit
        await press(app, pilot, "escape")
        assert not app._exit
        assert any("only a team lead may quit" in m for m in notes(app))
        await press(app, pilot, "ctrl+q")
        await badge_and_pin(app, pilot)
        assert app._exit


async def test_outside_kiosk_mode_quit_is_at_once(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        assert app._exit


async def test_kiosk_has_no_command_palette(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+p")
        assert not CommandPalette.is_open(app)
        assert any("No command palette" in m for m in notes(app))


async def test_kiosk_cancelling_a_call_needs_a_team_lead(terminal: Terminal) -> None:
    raised = svc.raise_andon(terminal, AndonKind.CALL, "ST10", "MAT", source="keyboard", auth=None)
    assert raised.ok
    app = KanbanApp(terminal, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("andon")
        await settle(app, pilot)
        await press(app, pilot, "f9")
        assert isinstance(app.screen, BadgeScreen)
        await press(app, pilot, "escape")
        [view] = read_board(terminal).line.active
        assert view.andon.state is AndonState.RAISED  # still open
        assert any("only a team lead may cancel" in m for m in notes(app))
        await press(app, pilot, "f9")
        await badge_and_pin(app, pilot)
        assert read_board(terminal).line.active == ()
        assert read_board(terminal).history[0].andon.state is AndonState.CANCELLED


async def test_f5_is_the_log_and_never_confirms_a_delivery(terminal: Terminal) -> None:
    answers: list[ConfirmResult | None] = []
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.push_screen(ConfirmDeliveryScreen("B1001Z", "Delivered after 5 s?"), answers.append)
        await settle(app, pilot)
        await press(app, pilot, "f5")
        assert answers == [] and isinstance(app.screen, ConfirmDeliveryScreen)
        assert "Ctrl+Y" in str(app.screen.query_one("#confirm-help", Static).render())
        await press(app, pilot, "ctrl+y")
        assert answers == [ConfirmResult(True)]


async def test_the_keymap_comes_from_the_config(tmp_path: Path) -> None:
    from kanban_terminal.config import demo_config_path

    path = tmp_path / "line.toml"
    path.write_text(demo_config_path().read_text() + '\n[keys]\nmetrics = "ctrl+g"\n')
    t = open_terminal(tmp_path / "data", FakeClock(), load_config(path))
    try:
        app = KanbanApp(t)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await press(app, pilot, "ctrl+g")
            assert isinstance(app.screen, MetricsScreen)
    finally:
        t.close()


async def test_the_pin_lockout_message_fits_one_line_at_80_columns(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await press(app, pilot, "f6")
        await pick(app, pilot, "ST30", "SAFE")  # station and reason first; a SAFE stop needs a lead
        for _ in range(terminal.config.andon.pin_failures_before_lockout + 1):
            await badge_and_pin(app, pilot, pin="0000")
        error = app.screen.query_one("#badge-error", Static)
        text = str(error.render())
        assert "wait" in text and text.endswith("ask another team lead.")
        assert error.region.height == 1 and len(text) <= error.region.width


async def test_an_empty_resolve_note_is_refused_with_a_word(terminal: Terminal) -> None:
    assert svc.raise_andon(terminal, AndonKind.CALL, "ST10", "MAT", source="keyboard", auth=None).ok
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("andon")
        await settle(app, pilot)
        await press(app, pilot, "f8")
        assert isinstance(app.screen, ResolveScreen)
        await press(app, pilot, "enter")
        assert isinstance(app.screen, ResolveScreen)  # not resolved
        assert "write what was done" in str(app.screen.query_one("#resolve-error", Static).render())
        assert len(read_board(terminal).line.active) == 1


async def test_a_pin_before_the_badge_is_refused_with_a_word(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await press(app, pilot, "f6")
        await pick(app, pilot, "ST30", "SAFE")
        dialog = app.screen
        assert isinstance(dialog, BadgeScreen)
        dialog.query_one("#pin-field", Input).focus()
        await press(app, pilot, "1", "2", "enter")
        assert app.screen is dialog and app.focused is dialog.query_one("#badge-field")
        assert any("Scan your badge first" in m for m in notes(app))
