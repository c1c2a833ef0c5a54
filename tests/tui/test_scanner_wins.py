"""A scanner read wins on every screen and in every dialog (issue 15, finding 1), through Pilot.

Pilot's `press` waits for the app to go idle after every key (tens of ms a key): that is typing
speed. A scanner's read is fed here the way the terminal's input thread delivers one: a batch of
key events posted at once, each stamped with the time it was read, a few ms apart. Typing at a
person's speed is fed the same way with 150 ms between keys, to show the dialogs still work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlmodel import col, select
from textual import events
from textual._time import get_time
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import login
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import AndonRow, CardLogRow, RejectedInputRow
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import (
    BadgeScreen,
    CardActionScreen,
    RaiseAndonScreen,
    ResolveScreen,
    ShelveScreen,
)
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.screens.confirm import ConfirmDeliveryScreen
from kanban_terminal.tui.screens.log import LogScreen
from kanban_terminal.tui.widgets.banner import Banner
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.tui.test_andon_tui import pick

CARD = "B1001Z"
SCANNER_GAP = 0.004  # a wedge scanner: a few ms a key
TYPING_GAP = 0.150  # a person


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, FakeClock()))
    yield t
    t.close()


def keys(app: KanbanApp, text: str, *, gap: float, end: str = "enter") -> None:
    """Post `text` then `end` as the input thread would, stamped `gap` seconds apart."""
    at = get_time()
    for ch in text:
        event = events.Key(ch if ch.isalnum() else _character_to_key(ch), ch)
        event.time = at
        app.post_message(event)
        at += gap
    event = events.Key(end, "\r" if end == "enter" else "\t" if end == "tab" else None)
    event.time = at
    app.post_message(event)


async def settle(app: KanbanApp, pilot: Pilot[None]) -> None:
    for _ in range(4):
        await app.workers.wait_for_complete()
        await pilot.pause()


def log_events(terminal: Terminal, card: str) -> list[str]:
    with terminal.db.reading() as session:
        rows = session.exec(select(CardLogRow).where(CardLogRow.card_id == card).order_by(col(CardLogRow.id)))
        return [r.event for r in rows]


def andon_count(terminal: Terminal) -> int:
    with terminal.db.reading() as session:
        return len(session.exec(select(AndonRow)).all())


async def open_call_picker(app: KanbanApp, pilot: Pilot[None]) -> None:
    await pilot.press("f4")
    await settle(app, pilot)
    assert isinstance(app.screen, RaiseAndonScreen)


async def open_stop_picker_logged_in(app: KanbanApp, pilot: Pilot[None]) -> None:
    state = login(app.terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Exception) and hasattr(state, "badge")
    app.auth.start(state)  # type: ignore[arg-type]
    await pilot.press("f6")
    await settle(app, pilot)
    assert isinstance(app.screen, RaiseAndonScreen)


async def open_badge(app: KanbanApp, pilot: Pilot[None]) -> None:
    await pilot.press("f6")  # station and reason first, then (nobody logged in) badge and PIN
    await settle(app, pilot)
    await pick(app, pilot, "ST30", "SAFE")  # a safety stop needs a team lead (issue 18)
    await settle(app, pilot)
    assert isinstance(app.screen, BadgeScreen) and app.focused is not None
    assert app.focused.id == "badge-field"


async def open_pin(app: KanbanApp, pilot: Pilot[None]) -> None:
    await open_badge(app, pilot)
    keys(app, TEAM_LEAD, gap=SCANNER_GAP)  # the badge is scanned: it stays in the badge dialog
    await settle(app, pilot)
    assert app.focused is not None and app.focused.id == "pin-field"


async def open_resolve(app: KanbanApp, pilot: Pilot[None]) -> None:
    await open_call_picker(app, pilot)
    await pilot.press("enter")  # a person picks the first reason: a CALL is raised
    await settle(app, pilot)
    await app.switch_mode("andon")
    await settle(app, pilot)
    await pilot.press("f8")
    await settle(app, pilot)
    assert isinstance(app.screen, ResolveScreen)


async def open_log_filter(app: KanbanApp, pilot: Pilot[None]) -> None:
    await app.switch_mode("log")
    await settle(app, pilot)
    assert isinstance(app.screen, LogScreen)
    await pilot.press("ctrl+f")
    await settle(app, pilot)
    assert app.focused is not None and app.focused.id == "log-filter"


async def open_card_note(app: KanbanApp, pilot: Pilot[None]) -> None:
    app.push_screen(CardActionScreen("Team lead Kim Osei"))
    await settle(app, pilot)
    app.screen.query_one("#card-note", Input).focus()
    await settle(app, pilot)


async def open_shelve(app: KanbanApp, pilot: Pilot[None]) -> None:
    app.push_screen(ShelveScreen("BTN1", "Team lead Kim Osei", 60))
    await settle(app, pilot)
    assert app.focused is not None and app.focused.id == "shelve-minutes"


OPENERS: dict[str, Callable[[KanbanApp, Pilot[None]], Awaitable[None]]] = {
    "F4 call picker": open_call_picker,
    "F6 stop picker, team lead logged in": open_stop_picker_logged_in,
    "badge field": open_badge,
    "PIN field": open_pin,
    "resolve note": open_resolve,
    "log filter": open_log_filter,
    "card-action note": open_card_note,
    "shelve minutes": open_shelve,
}


@pytest.mark.parametrize("where", list(OPENERS))
async def test_a_scanner_read_goes_to_the_scan_path_whatever_has_the_focus(
    terminal: Terminal, where: str
) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await OPENERS[where](app, pilot)
        screen, focused = app.screen, app.focused
        andons = andon_count(terminal)
        highlighted = focused.highlighted if isinstance(focused, OptionList) else None
        if isinstance(focused, Input):
            keys(app, "12", gap=TYPING_GAP, end="right")  # a person had started typing here
            await settle(app, pilot)
            before = focused.value
        keys(app, CARD, gap=SCANNER_GAP)
        await settle(app, pilot)

        assert log_events(terminal, CARD)[-2:] == ["bin_empty", "request_raised"]  # recorded
        assert andon_count(terminal) == andons  # nothing raised, resolved or cancelled
        assert app.screen is screen and app.focused is focused  # nothing selected, submitted, closed
        if isinstance(focused, OptionList):
            assert focused.highlighted == highlighted
        if isinstance(focused, Input):
            assert focused.value == before  # the person's text is back, without the read
        if isinstance(screen, TerminalScreen):  # the banner says what the scan did
            assert "REFILL REQUESTED" in str(screen.query_one(Banner).render())
        else:  # a dialog covers the banner: a note on top says it
            assert any("Refill" in n.title for n in app._notifications)


async def test_in_the_picker_typing_still_picks(terminal: Terminal) -> None:
    """At a person's speed, Enter in the picker raises the call as before."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_call_picker(app, pilot)
        keys(app, "abcd", gap=TYPING_GAP)
        await settle(app, pilot)
        assert len(read_board(terminal).line.active) == 1
        assert log_events(terminal, CARD)[-1:] == ["registered"]


async def test_a_badge_scanned_into_the_badge_field_stays_a_badge(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_pin(app, pilot)  # asserts the badge moved the focus to the PIN field
        keys(app, PIN, gap=TYPING_GAP)
        await settle(app, pilot)
        assert app.auth.state is not None and app.auth.state.badge == TEAM_LEAD
        # Station and reason were picked before the badge (issue 18): the login raises the stop.
        assert read_board(terminal).line.stopped


def rejected_inputs(terminal: Terminal) -> list[str]:
    with terminal.db.reading() as session:
        return [r.input for r in session.exec(select(RejectedInputRow))]


async def test_a_pin_typed_at_scanner_speed_is_a_pin_never_a_scan(terminal: Terminal) -> None:
    """A keypad or a practised hand types the PIN as fast as a scanner: it logs the lead in. On the
    scan path it was refused as a misread, shown on screen and kept in the rejected-input log."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_pin(app, pilot)
        keys(app, PIN, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert app.last_outcome is None  # nothing went to the scan path
        assert app.auth.state is not None and app.auth.state.badge == TEAM_LEAD
        assert read_board(terminal).line.stopped
        assert not [r for r in rejected_inputs(terminal) if PIN in r]


async def test_a_badge_scanned_while_the_pin_field_has_focus_is_named_a_badge(terminal: Terminal) -> None:
    """Not a PIN attempt (no lockout count), not "not a valid card code": the scan path says it is a
    badge, and the PIN field is as it was."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_pin(app, pilot)
        screen, focused = app.screen, app.focused
        keys(app, TEAM_LEAD, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert app.last_outcome is not None and app.last_outcome.kind is OutcomeKind.UNKNOWN_CARD
        assert app.last_outcome.message == f"{TEAM_LEAD} is a badge, not a kanban card: no refill requested."
        assert app.screen is screen and app.focused is focused and isinstance(focused, Input)
        assert focused.value == "" and app.auth.state is None


async def test_a_read_into_half_typed_scan_field_text_is_scanned_alone(terminal: Terminal) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys(app, "B1", gap=TYPING_GAP, end="right")
        await settle(app, pilot)
        keys(app, CARD, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert log_events(terminal, CARD)[-1] == "request_raised"
        assert app.focused is not None and app.focused.id == "scan-field"
        assert isinstance(app.focused, Input) and app.focused.value == "B1"


async def test_the_confirmation_dialog_takes_its_own_scan(terminal: Terminal) -> None:
    """A card scan into the delivery confirmation is what that dialog is for: it answers it."""
    app = KanbanApp(terminal)
    answers: list[object] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.push_screen(ConfirmDeliveryScreen(CARD, "Delivered after 5 s?"), answers.append)
        await settle(app, pilot)
        keys(app, CARD, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert [getattr(a, "confirmed", None) for a in answers] == [True]


async def test_the_card_of_suspend_or_resume_takes_its_own_scan(terminal: Terminal) -> None:
    """The team lead's "suspend or resume a card" dialog asks for a card: a read there answers it
    (the focus moves on to the note) and is not recorded as a bin-empty scan."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.push_screen(CardActionScreen("Team lead Kim Osei"))
        await settle(app, pilot)
        assert app.focused is not None and app.focused.id == "card-field"
        keys(app, CARD, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert app.focused is not None and app.focused.id == "card-note"
        assert log_events(terminal, CARD) == ["registered"]


GARBLED = "B1001X"  # card B1001Z with the wrong check character: the scan path says "Misread"


DIALOG_FIELDS = [
    "badge field",
    "PIN field",
    "resolve note",
    "log filter",
    "card-action note",
    "shelve minutes",
]


@pytest.mark.parametrize("where", DIALOG_FIELDS)
async def test_a_garbled_card_read_is_refused_on_the_scan_path_not_in_the_dialog(
    terminal: Terminal, where: str
) -> None:
    """A garbled card read in a dialog field is a misread scan (the scan screen's words), never an
    "unknown badge", and the dialog stays as it was (issue 15, known gap after stop 21)."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await OPENERS[where](app, pilot)
        screen, focused = app.screen, app.focused
        assert isinstance(focused, Input)
        before = focused.value
        andons = andon_count(terminal)
        keys(app, GARBLED, gap=SCANNER_GAP)
        await settle(app, pilot)

        assert app.last_outcome is not None and app.last_outcome.kind is OutcomeKind.MISREAD
        assert "not a valid card code" in app.last_outcome.message
        assert app.screen is screen and app.focused is focused and focused.value == before
        assert andon_count(terminal) == andons
        if isinstance(screen, BadgeScreen):
            assert not screen.query("#badge-error")  # no "unknown badge" put on the dialog
            assert app.auth.state is None


@pytest.mark.parametrize("code", ["E2001", "E9999"])
async def test_a_badge_read_in_the_badge_field_stays_a_badge(terminal: Terminal, code: str) -> None:
    """A listed badge, and an unknown code that looks like no card of this line, stay badges."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_badge(app, pilot)
        keys(app, code, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert app.last_outcome is None  # nothing went to the scan path
        assert app.focused is not None and app.focused.id == "pin-field"


async def test_two_reads_queued_at_once_are_two_scans(terminal: Terminal) -> None:
    """The App was busy while two cards were read (both reads in its queue at once): each is
    recorded on its own. Without the hold the second read's characters reached the scan field before
    it had taken the first (Textual's Submitted waits behind them): one misread "B1001ZB1101T"."""
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys(app, CARD, gap=SCANNER_GAP)
        keys(app, "B1101T", gap=SCANNER_GAP)
        await settle(app, pilot)
        assert log_events(terminal, CARD)[-1] == "request_raised"
        assert log_events(terminal, "B1101T")[-1] == "request_raised"
        assert app.last_outcome is not None and app.last_outcome.code == "B1101T"


async def test_a_read_into_the_screens_scan_field_goes_straight_to_the_scan_path(terminal: Terminal) -> None:
    """The scan screen's own field: a scanner's read goes to the scan path when its Enter comes in,
    not after the field has worked through the keys and posted Scanned (issue 15, scan to banner).
    Typed at a person's pace the field still submits it itself; either way the field ends empty."""
    from kanban_terminal.tui.widgets.scan_field import ScanField

    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        field = app.screen.query_one(ScanField)
        posted: list[object] = []
        real_post = field.post_message
        field.post_message = lambda m: (posted.append(m), real_post(m))[1]  # type: ignore[method-assign]
        keys(app, CARD, gap=SCANNER_GAP)
        await settle(app, pilot)
        assert log_events(terminal, CARD)[-1] == "request_raised"
        assert "B1001Z" in str(app.screen.query_one(Banner).render())
        assert not [m for m in posted if isinstance(m, ScanField.Scanned)] and field.value == ""
        keys(app, "B1101T", gap=TYPING_GAP)
        await settle(app, pilot)
        assert [m.code for m in posted if isinstance(m, ScanField.Scanned)] == ["B1101T"]
        assert log_events(terminal, "B1101T")[-1] == "request_raised" and field.value == ""
