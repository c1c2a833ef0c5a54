"""The andon screens through Pilot at 80x24: raise a CALL from any screen, stop the line as a team
lead (badge + PIN), the red banner on every screen, acknowledge and resolve from the andon screen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select
from textual.widgets import DataTable, Input, OptionList

from kanban_terminal.domain.andon import AndonKind, AndonState, LineCondition
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow, CardRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import (
    BadgeScreen,
    CardActionScreen,
    RaiseAndonScreen,
    ResolveScreen,
)
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


async def settle(app: KanbanApp, pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def pick(app: KanbanApp, pilot, station: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    """In the raise dialog: highlight the station, then choose the reason with Enter."""
    dialog = app.screen
    assert isinstance(dialog, RaiseAndonScreen)
    stations = dialog.query_one("#station-list", OptionList)
    stations.highlighted = [s.id for s in dialog.stations].index(station)
    reasons = dialog.query_one("#reason-list", OptionList)
    reasons.highlighted = [r.code for r in dialog.reasons].index(reason)
    reasons.focus()
    await pilot.press("enter")
    await settle(app, pilot)


async def badge_and_pin(app: KanbanApp, pilot, badge: str, pin: str | None) -> None:  # type: ignore[no-untyped-def]
    dialog = app.screen
    assert isinstance(dialog, BadgeScreen)
    field = dialog.query_one("#badge-field", ScanField)
    field.value = badge
    field.focus()
    await pilot.press("enter")
    await pilot.pause()
    if pin is not None:
        pin_field = dialog.query_one("#pin-field", Input)
        assert pin_field.password and app.focused is pin_field
        pin_field.value = pin
        await pilot.press("enter")
    await settle(app, pilot)


async def test_call_from_the_scan_screen_shows_on_the_andon_screen(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen.focused, ScanField)  # the scan field owns the keys
        await pilot.press("f4")
        await pilot.pause()
        await pick(app, pilot, "ST20", "QUAL")
        board = read_board(terminal)
        assert board.line.condition is LineCondition.CALL
        [view] = board.line.active
        assert (view.andon.station, view.andon.reason, view.andon.source) == ("ST20", "QUAL", "keyboard")
        assert not app.screen.query_one(StopBanner).display  # a CALL does not stop the line
        await pilot.press("f3")
        await settle(app, pilot)
        assert isinstance(app.screen, AndonScreen)
        table = app.screen.query_one("#andon-active", DataTable)
        assert table.row_count == 1
        assert "WAITING" in str(table.get_row_at(0)[3])

        await pilot.press("f7")  # acknowledge: the responder scans a badge, no PIN
        await pilot.pause()
        await badge_and_pin(app, pilot, "e3001", None)
        [view] = read_board(terminal).line.active
        assert view.andon.state is AndonState.ACKNOWLEDGED and view.andon.acknowledged_by == "E3001"


async def test_team_lead_stops_the_line_banner_everywhere_then_resolves(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await pilot.pause()
        # Station and reason first (anyone may stop for quality, issue 18); SAFE asks for a team lead.
        await pick(app, pilot, "ST30", "SAFE")
        await badge_and_pin(app, pilot, TEAM_LEAD, "0000")  # wrong PIN: asked again, with the reason
        assert isinstance(app.screen, BadgeScreen) and "Wrong PIN" in str(app.screen.error)
        assert not read_board(terminal).line.stopped
        await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
        assert read_board(terminal).line.stopped
        for mode in ("scan", "board", "andon"):
            await app.switch_mode(mode)
            await settle(app, pilot)
            banner = app.screen.query_one(StopBanner)
            assert banner.display and "LINE STOPPED" in str(banner.render())
            # Visible, not collapsed off-screen: one red line per stop, no frame (issue 15: at
            # 80x24 the framed banner left the board and log 1-4 rows).
            assert banner.region.height >= 1

        assert isinstance(app.screen, AndonScreen)
        await pilot.press("f8")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ResolveScreen) and dialog.badge == TEAM_LEAD
        dialog.query_one("#note-field", Input).value = "guard refitted, checked"
        await pilot.press("enter")
        await settle(app, pilot)
        assert not read_board(terminal).line.stopped
        assert not app.screen.query_one(StopBanner).display


async def test_operator_cannot_resolve_a_stop_without_team_lead(terminal: Terminal) -> None:
    from kanban_terminal.services.auth import AuthSession, login

    state = login(terminal, TEAM_LEAD, PIN, source="cli")
    assert not isinstance(state, svc.Rejection)
    stop = svc.raise_andon(terminal, AndonKind.STOP, "ST10", "MACH", source="cli", auth=AuthSession(state))
    assert stop.ok
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("andon")
        await settle(app, pilot)
        await pilot.press("f8")  # nobody logged in at this terminal: badge + PIN first
        await pilot.pause()
        assert isinstance(app.screen, BadgeScreen) and app.screen.need_pin
        await pilot.press("escape")
        await pilot.pause()
        assert read_board(terminal).line.stopped
        await pilot.press("f9")  # a stop cannot be cancelled: refused, explained, logged
        await settle(app, pilot)
        assert read_board(terminal).line.stopped
        refusals = [n.message for n in app._notifications]
        assert any("cannot be cancelled" in m for m in refusals)


async def test_team_lead_session_ends_on_screen_after_idle_time(terminal: Terminal) -> None:
    from kanban_terminal.services.auth import login

    clock = terminal.clock
    assert isinstance(clock, FakeClock)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("andon")
        await settle(app, pilot)
        state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
        assert not isinstance(state, svc.Rejection)
        app.auth.start(state)
        app.refresh_andon()
        await settle(app, pilot)
        assert "Team lead: Kim Osei" in str(app.screen.query_one("#andon-title").render())
        clock.advance(minutes=5)
        app._andon_second()  # the 1 s timer's body, called directly: no waiting on wall time
        await settle(app, pilot)
        assert app.auth.state is None
        assert "No team lead logged in" in str(app.screen.query_one("#andon-title").render())


async def card_and_note(app: KanbanApp, pilot, card: str, note: str) -> None:  # type: ignore[no-untyped-def]
    dialog = app.screen
    assert isinstance(dialog, CardActionScreen)
    field = dialog.query_one("#card-field", ScanField)
    field.value = card
    field.focus()
    await pilot.press("enter")
    await pilot.pause()
    dialog.query_one("#card-note", Input).value = note
    await pilot.press("enter")
    await settle(app, pilot)


def card_state(terminal: Terminal, card: str) -> str:
    with terminal.db.reading() as session:
        row = session.get(CardRow, card)
        assert row is not None
        return row.state


async def test_a_team_lead_suspends_and_resumes_a_card_from_the_board(terminal: Terminal) -> None:
    card = next(iter(terminal.card_loops))
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        # A wrong PIN: refused and asked again, nothing done.
        await pilot.press("f7")
        await pilot.pause()
        await badge_and_pin(app, pilot, TEAM_LEAD, "0000")
        assert isinstance(app.screen, BadgeScreen) and card_state(terminal, card) == "in_use"
        await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
        await card_and_note(app, pilot, card, "bin cracked")
        assert card_state(terminal, card) == "suspended"
        # Logged in now: F7 goes straight to the card, and the same card comes back.
        await pilot.press("f7")
        await pilot.pause()
        await card_and_note(app, pilot, card, "new bin")
        assert card_state(terminal, card) == "in_use"
    events = [
        (e.event, e.actor, e.detail)
        for e in svc_log_rows(terminal, card)
        if e.event in ("suspended", "resumed")
    ]
    assert events == [("suspended", TEAM_LEAD, "bin cracked"), ("resumed", TEAM_LEAD, "new bin")]


def svc_log_rows(terminal: Terminal, card: str) -> list[CardLogRow]:
    with terminal.db.reading() as session:
        stmt = select(CardLogRow).where(CardLogRow.card_id == card).order_by(col(CardLogRow.id))
        return list(session.exec(stmt))


async def test_a_team_lead_shelves_the_chattering_device_that_raised_a_call(terminal: Terminal) -> None:
    from kanban_terminal.services.andon_views import shelved_until
    from kanban_terminal.tui.screens.andon_dialogs import ShelveScreen

    svc.raise_andon(terminal, AndonKind.CALL, "ST10", "HELP", source="keyboard")
    svc.raise_andon(terminal, AndonKind.CALL, "ST20", "MACH", source="mqtt:ANDON-ST20")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, AndonScreen)
        rows = [v.andon.station for v in app.andon_line.active] if app.andon_line else []
        # The call raised at a terminal: nothing to shelve, said so, no dialog.
        screen.query_one("#andon-active", DataTable).move_cursor(row=rows.index("ST10"))
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen
        # The one a device raised: team lead badge and PIN, then the minutes (too many first).
        screen.query_one("#andon-active", DataTable).move_cursor(row=rows.index("ST20"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
        dialog = app.screen
        assert isinstance(dialog, ShelveScreen) and dialog.device == "ANDON-ST20"
        minutes = dialog.query_one("#shelve-minutes", Input)
        minutes.value = "600"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog  # above [andon] shelve_max_minutes: asked again
        minutes.value = "15"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is screen
    now = terminal.clock()
    with terminal.db.reading() as session:
        assert shelved_until(session, "ANDON-ST20", now) == now + timedelta(minutes=15)
        assert shelved_until(session, "keyboard", now) is None
        shelved = session.exec(select(CardLogRow).where(CardLogRow.event == "andon_shelved")).all()
    assert [(e.actor, e.detail) for e in shelved] == [
        (TEAM_LEAD, "source ANDON-ST20 shelved until 06:15 UTC")
    ]


async def test_enter_on_an_empty_pin_field_asks_for_the_pin_and_counts_nothing(terminal: Terminal) -> None:
    """A gloved Enter on the empty PIN field, six times: the dialog stays and asks for the PIN, no
    failed attempt is logged, and the real PIN still stops the line (no lockout)."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await pilot.pause()
        await pick(app, pilot, "ST30", "SAFE")
        for _ in range(6):
            await badge_and_pin(app, pilot, TEAM_LEAD, "")
            assert isinstance(app.screen, BadgeScreen)
        assert "Type your PIN, then Enter." in [n.message for n in app._notifications]
        await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
        assert read_board(terminal).line.stopped
    with terminal.db.reading() as session:
        failures = session.exec(select(CardLogRow).where(CardLogRow.event == "auth_failure")).all()
    assert failures == []
