"""A terminal in one of the floor's main states, for the screen tests and snapshots (issue 15).

normal: a few cards scanned, the line running; misread: the same, then a 561-character garbage
read at the screen; call: an open help CALL; stop: a line STOP raised by the team lead. The clock is
fixed (FakeClock), so the snapshots are the same on every run.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.handover import acknowledge_handover
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.scan_field import ScanField
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal

STATES = ("normal", "misread", "call", "stop")
SCREENS = ("scan", "board", "andon", "log", "metrics")
GARBAGE = "ZX9" * 187
"""561 characters: a scanner that read a wall of text (issue 15 widened the Card column with one)."""


def floor_terminal(data_dir: Path, state: str, clock: FakeClock | None = None) -> Terminal:
    """A terminal on a real SQLite file in `state` (see STATES)."""
    clock = clock or FakeClock()
    terminal = enrolled(open_terminal(data_dir, clock))
    # The shift's handover taken first: a due handover is offered by a notice at the App's first
    # clock tick, which a snapshot may or may not catch (one CI run did, 47 others did not).
    lead = login(terminal, TEAM_LEAD, PIN, source="cli")
    assert not isinstance(lead, svc.Rejection)
    assert acknowledge_handover(terminal, auth=AuthSession(lead), source="cli").ok
    for card in ("B1001Z", "B1101T", "B1201L"):
        assert record_scan(terminal, card, source="keyboard").accepted
        clock.advance(seconds=40)
    if state == "call":
        assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
    elif state == "stop":
        session = login(terminal, TEAM_LEAD, PIN, source="cli")
        assert not isinstance(session, svc.Rejection)
        assert svc.raise_andon(
            terminal, AndonKind.STOP, "ST30", "SAFE", source="cli", auth=AuthSession(session)
        ).ok
    clock.advance(seconds=75)
    return terminal


async def settle(app: KanbanApp, pilot: Pilot[None]) -> None:
    for _ in range(3):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            # Quitting cancels the workers still running, among them the quit's own worker while
            # it waits in `call_from_thread(exit)` (its row already committed): CI caught that race
            # once in ~50 runs. A cancel with no quit under way is still a failure.
            if not app._exit:
                raise
        await pilot.pause()


async def press(app: KanbanApp, pilot: Pilot[None], *keys: str) -> None:
    """Press `keys`, then let the app settle (what the screen does with them is done)."""
    await pilot.press(*keys)
    await settle(app, pilot)


async def enter_state(app: KanbanApp, pilot: Pilot[None], state: str, mode: str) -> None:
    """Bring the running app to `state` on screen `mode` (a misread is read at the screen)."""
    await settle(app, pilot)
    if state == "misread":
        field = app.screen.query_one(ScanField)
        field.value = GARBAGE
        await pilot.press("enter")
        await settle(app, pilot)
    if mode != "scan":
        await app.switch_mode(mode)
    await settle(app, pilot)
    for field in app.screen.query(Input):
        field.cursor_blink = False  # a snapshot must not catch the cursor half-way
    await pilot.pause()
