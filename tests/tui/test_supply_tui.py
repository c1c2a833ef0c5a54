"""Issues 17 and 18 on the screen, through Pilot at 80x24 on the demo line: F8 records a short
delivery after the delivery scan, F9 on the board re-routes a loop (team lead badge + PIN), and the
board shows upstream's warning on the request and the route on the loop."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.palette import ATTENTION
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from kanban_terminal.tui.screens.supply_dialogs import DeliveryIssueScreen, RerouteScreen
from kanban_terminal.tui.widgets.scan_field import ScanField
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.floor import press, settle

CARD = "B1001Z"  # loop ST10-BOLT, 500 a bin, source SUP-BOLT, second source WH


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, clock))
    yield t
    t.close()


def q(terminal: Terminal, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def scan(app: KanbanApp, pilot: Pilot[None], code: str) -> None:
    field = app.screen.query_one(ScanField)
    assert field.has_focus
    field.value = code
    await press(app, pilot, "enter")


async def test_f8_after_a_delivery_records_the_shortfall(terminal: Terminal, clock: FakeClock) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f8")  # nothing delivered yet: a warning, no dialog
        await settle(app, pilot)
        assert not isinstance(app.screen, DeliveryIssueScreen)
        await scan(app, pilot, CARD)
        clock.advance(hours=2)
        await scan(app, pilot, CARD)  # delivered (2 h > the plausible minimum)
        await press(app, pilot, "f8")
        dialog = app.screen
        assert isinstance(dialog, DeliveryIssueScreen) and dialog.card_id == CARD
        assert app.focused is dialog.query_one("#short-field", Input)
        await pilot.press("1", "2", "0", "enter")  # a keystroke or two, and the quantity
        await settle(app, pilot)
        assert not isinstance(app.screen, DeliveryIssueScreen)
    assert q(terminal, "SELECT short_qty FROM replenishment_request WHERE status = 'delivered'") == [(120,)]
    assert q(
        terminal, "SELECT quantity, status FROM replenishment_request WHERE shortfall_of IS NOT NULL"
    ) == [(120, "queued")]
    assert q(terminal, f"SELECT state FROM card WHERE id = '{CARD}'") == [("queued",)]


async def test_the_board_shows_the_warning_and_f9_reroutes_with_the_team_leads_pin(
    terminal: Terminal, clock: FakeClock
) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await scan(app, pilot, CARD)
        (request_id,) = q(terminal, "SELECT id FROM replenishment_request")[0]
        eta = clock() + timedelta(hours=6)
        delayed = UpstreamStatus("w1", str(request_id), "delayed", clock(), eta=eta, reason="fog")
        assert apply_upstream_status(terminal, delayed).moved
        await press(app, pilot, "f2")
        requests = app.screen.query_one("#requests", DataTable)
        state = requests.get_row_at(0)[3]
        assert isinstance(state, Text) and state.plain.startswith("Delayed, ETA") and "fog" in state.plain
        assert state.style == ATTENTION  # amber: attention (ISA-101)

        clock.advance(seconds=10)  # past the first scan's debounce window
        await press(app, pilot, "f9")
        assert isinstance(app.screen, BadgeScreen)
        app.screen.query_one("#badge-field", ScanField).value = TEAM_LEAD
        await pilot.press("enter")
        await pilot.pause()
        app.screen.query_one("#pin-field", Input).value = PIN
        await press(app, pilot, "enter")
        dialog = app.screen
        assert isinstance(dialog, RerouteScreen)
        assert dialog.loops == (("ST10-BOLT", "SUP-BOLT", "WH"),)
        dialog.query_one("#reroute-list", OptionList).focus()
        await press(app, pilot, "enter")
        loops = app.screen.query_one("#loops", DataTable)
        cells = [loops.get_row_at(i)[0] for i in range(loops.row_count)]
        assert any(isinstance(c, Text) and c.plain == "ST10-BOLT via WH" for c in cells)
    assert q(terminal, f"SELECT status FROM replenishment_request WHERE id = '{request_id}'") == [
        ("rerouted",)
    ]
    assert q(terminal, "SELECT source FROM replenishment_request WHERE closed_at IS NULL") == [("WH",)]
    assert q(terminal, "SELECT actor FROM card_log WHERE event = 're_routed'") == [(TEAM_LEAD,)]
    # A re-route is no scan: the card's next scan, right after it, is not taken for a repeat read.
    assert record_scan(terminal, CARD, source="test").kind is OutcomeKind.NEEDS_CONFIRMATION
