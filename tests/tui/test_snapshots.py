"""Snapshots of every screen in the floor's main states, at 80x24 and 200x50 (issue 15).

pytest-textual-snapshot compares the rendered screen (SVG, text and colours) with the one accepted
before; `pytest --snapshot-update` writes new ones after a person has looked at the HTML report.
Snapshots catch what the behaviour tests do not name (a cut label, a colour back where it should
not be); the behaviour tests (test_floor_look.py) say what must hold and fail with a reason.

Deterministic by construction: a fixed clock (tests/support/floor.py), TZ=UTC, no cursor blink,
an App with no runtime jobs (nothing arrives from outside while the picture is taken).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import ResolveScreen
from kanban_terminal.tui.widgets.scan_field import ScanField
from tests.support.floor import SCREENS, STATES, enter_state, floor_terminal, settle

SIZES = {"80x24": (80, 24), "200x50": (200, 50)}

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The status bar and banner show local time: pin it, so the pictures match on any machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("mode", SCREENS)
def test_screen(snap_compare: SnapCompare, tmp_path: Path, mode: str, state: str, size: str) -> None:
    terminal = floor_terminal(tmp_path, state)
    try:

        async def run_before(pilot: Pilot[None]) -> None:
            await enter_state(pilot.app, pilot, state, mode)  # type: ignore[arg-type]

        assert snap_compare(KanbanApp(terminal), terminal_size=SIZES[size], run_before=run_before)
    finally:
        terminal.close()


async def _raise_call(pilot: Pilot[None]) -> None:
    await pilot.press("f4")


async def _stop_login(pilot: Pilot[None]) -> None:
    await pilot.press("f6")


async def _confirm_delivery(pilot: Pilot[None]) -> None:
    # B1001Z asked for its refill minutes ago: a delivery this soon asks to be confirmed.
    pilot.app.screen.query_one(ScanField).value = "B1001Z"
    await pilot.press("enter")


async def _resolve(pilot: Pilot[None]) -> None:
    await pilot.press("f3")
    # On a busy box the andon list may fill a moment after the switch: F8 before it would only say
    # "No andon selected" (a toast in the picture). Bounded poll, then F8, then wait for the dialog.
    for _ in range(50):
        await settle(pilot.app, pilot)  # type: ignore[arg-type]
        if pilot.app.screen.query_one("#andon-active", DataTable).row_count:
            break
    await pilot.press("f8")
    for _ in range(50):
        if isinstance(pilot.app.screen, ResolveScreen):
            break
        await pilot.pause(0.05)


DIALOGS = {
    "raise_call": ("normal", _raise_call),
    "stop_login": ("normal", _stop_login),
    "confirm_delivery": ("normal", _confirm_delivery),
    "resolve_call": ("call", _resolve),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dialog", DIALOGS)
def test_dialog(snap_compare: SnapCompare, tmp_path: Path, dialog: str, size: str) -> None:
    state, open_it = DIALOGS[dialog]
    terminal = floor_terminal(tmp_path, state)
    try:

        async def run_before(pilot: Pilot[None]) -> None:
            app = pilot.app
            assert isinstance(app, KanbanApp)
            await settle(app, pilot)
            await open_it(pilot)
            await settle(app, pilot)
            for field in app.screen.query(Input):  # the scan field and the dialogs' own fields
                field.cursor_blink = False
            await pilot.pause()

        assert snap_compare(KanbanApp(terminal), terminal_size=SIZES[size], run_before=run_before)
    finally:
        terminal.close()
