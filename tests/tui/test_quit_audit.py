"""A quit from the screen is a log row maintenance can find (issue 15, known gap after stop 21):
who closed the terminal and when, through the card log like every other audited action."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.services import quit_audit
from kanban_terminal.services.log_query import parse_query, read_page
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import BadgeScreen
from tests.support.andon import T0, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.floor import press, settle
from tests.tui.test_floor_keys import badge_and_pin


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


def rows(terminal: Terminal, *events: str) -> list[CardLogRow]:
    with terminal.db.reading() as session:
        query = select(CardLogRow).where(col(CardLogRow.event).in_(events)).order_by(col(CardLogRow.id))
        return list(session.exec(query))


async def test_a_kiosk_quit_leaves_a_row_naming_the_team_lead(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        await badge_and_pin(app, pilot)
        assert app._exit
    [row] = rows(terminal, "terminal_quit")
    assert (row.actor, row.source, row.occurred_at.replace(tzinfo=T0.tzinfo)) == (TEAM_LEAD, "keyboard", T0)
    assert "kiosk" in row.detail
    # Maintenance finds it with the log screen's filter (and `log` / export use the same query).
    page = read_page(terminal.db, parse_query("event:terminal_quit", T0), before=None, after=None, limit=10)
    assert [(e.event, e.actor) for e in page.entries] == [("terminal_quit", TEAM_LEAD)]


async def test_a_refused_kiosk_quit_leaves_a_row_with_the_reason(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        await badge_and_pin(app, pilot, pin="0000")
        assert not app._exit
        assert isinstance(app.screen, BadgeScreen)  # asked again, with the reason on it
        await pilot.press("escape")  # giving up at the prompt is no refusal: no second row
        await settle(app, pilot)
        assert not app._exit
    [row] = rows(terminal, "terminal_quit_refused")
    assert row.actor == TEAM_LEAD and "wrong" in row.detail.lower()
    assert rows(terminal, "terminal_quit") == []
    assert [r.event for r in rows(terminal, "auth_failure")] == ["auth_failure"]  # the login's own row


async def test_a_quit_outside_kiosk_mode_leaves_a_row_too(terminal: Terminal) -> None:
    app = KanbanApp(terminal, kiosk=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        assert app._exit
    [row] = rows(terminal, "terminal_quit")
    assert row.actor is None and "not a kiosk" in row.detail


async def test_a_quit_whose_row_cannot_be_saved_still_quits_and_says_so(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails must not lock a team lead into the terminal. (The failure is injected:
    as root, the test cannot make the database file unwritable.)"""

    def full(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(quit_audit, "record_quit", full)  # andon_app imports it where it runs
    app = KanbanApp(terminal, kiosk=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+q")
        assert app._exit
        said = " ".join(str(r) for r in app._exit_renderables)  # printed once the screen is gone
    assert "NOT logged" in said and "disk full" in said
    assert rows(terminal, "terminal_quit") == []
