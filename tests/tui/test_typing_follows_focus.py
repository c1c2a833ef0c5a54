"""A person's keys after opening a field go to that field (issue 15, known gap after stop 21).

Textual moves the focus with a callback queued behind the keys the terminal has already delivered,
and a pushed dialog takes its focus only when it resumes. On a busy box the keys a person typed
right after Ctrl+F, F8 or a badge scan are already queued when that happens: they landed in the scan
field (or nowhere). Here the keys are posted all at once, stamped at a person's speed, which is what
the App sees when its loop is busy: the order of the queue, not the clock, decides.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen, ResolveScreen
from kanban_terminal.tui.screens.log import LogScreen
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.keys import post, typed
from tests.tui.test_andon_tui import pick
from tests.tui.test_scanner_wins import SCANNER_GAP, TYPING_GAP, open_call_picker, settle

CARD = "B1001Z"


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


def field(app: KanbanApp, selector: str) -> Input:
    return app.screen.query_one(selector, Input)


async def test_text_typed_right_after_ctrl_f_goes_into_the_filter(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await app.switch_mode("log")
        await settle(app, pilot)
        assert isinstance(app.screen, LogScreen)
        post(app, ("ctrl+f", None), *typed("ST20"), gap=TYPING_GAP)
        await settle(app, pilot)
        assert field(app, "#log-filter").value == "ST20"
        assert field(app, "#scan-field").value == ""
        assert app.focused is field(app, "#log-filter")


async def test_a_note_typed_right_after_f8_goes_into_the_resolve_note(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_call_picker(app, pilot)
        await pilot.press("enter")  # a CALL is raised
        await settle(app, pilot)
        await app.switch_mode("andon")
        await settle(app, pilot)
        post(app, ("f8", None), *typed("fuse"), gap=TYPING_GAP)
        await settle(app, pilot)
        assert isinstance(app.screen, ResolveScreen)
        assert field(app, "#note-field").value == "fuse"


async def test_a_pin_typed_right_after_the_badge_scan_goes_into_the_pin_field(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await settle(app, pilot)
        await pick(app, pilot, "ST30", "SAFE")
        await settle(app, pilot)
        assert isinstance(app.screen, BadgeScreen)
        # The badge at a scanner's speed, then the PIN at a person's, all queued at once.
        post(app, *typed(TEAM_LEAD), ("enter", "\r"), gap=SCANNER_GAP)
        post(app, *typed("47"), gap=TYPING_GAP)
        await settle(app, pilot)
        assert isinstance(app.screen, BadgeScreen)
        assert field(app, "#pin-field").value == "47"
        assert field(app, "#badge-field").value == ""
        assert app.focused is field(app, "#pin-field")
        assert PIN.startswith("47")
