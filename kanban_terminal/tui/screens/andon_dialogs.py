"""Andon dialogs: pick a reason and station, scan a badge (with a PIN for a team lead), add a note.

Badges are scanned into a `ScanField` like cards; the PIN field is the only field in the terminal
that takes typed keystrokes away from a scan field, and it is `password=True` so the PIN never
shows. Each dialog returns a typed result, or None on Esc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from kanban_terminal.config import AndonReason, Station
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.tui.widgets.scan_field import ScanField


@dataclass(frozen=True)
class RaiseChoice:
    station: str
    reason: str


@dataclass(frozen=True)
class BadgeEntry:
    badge: str
    pin: str | None = None


@dataclass(frozen=True)
class CardActionEntry:
    card: str
    note: str


@dataclass(frozen=True)
class ShelveEntry:
    minutes: float


@dataclass(frozen=True)
class ResolveEntry:
    badge: str | None
    note: str


T = TypeVar("T")


class AndonDialog(ModalScreen[T | None], Generic[T]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="andon.dialog.cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


class RaiseAndonScreen(AndonDialog[RaiseChoice]):
    """Station on the left, reason on the right; Enter on a reason raises."""

    AUTO_FOCUS = "#reason-list"
    BINDINGS = [Binding("tab", "switch_list", "Station / reason", id="andon.raise.switch")]

    def __init__(
        self, kind: AndonKind, stations: tuple[Station, ...], reasons: tuple[AndonReason, ...], station: str
    ) -> None:
        super().__init__()
        self.kind = kind
        self.stations = stations
        self.reasons = tuple(r for r in reasons if kind.value in r.kinds)
        self.station = station

    def compose(self) -> ComposeResult:
        title = "STOP THE LINE" if self.kind is AndonKind.STOP else "CALL FOR HELP"
        with Vertical(classes="andon-box" + (" -stop" if self.kind is AndonKind.STOP else "")):
            yield Static(title, classes="andon-title")
            yield Static("Up/Down pick, Tab: station or reason, Enter raises, Esc cancels.")
            with Horizontal():
                stations = OptionList(
                    *(Option(f"{s.id} {s.name}", id=s.id) for s in self.stations), id="station-list"
                )
                yield stations
                yield OptionList(*(Option(r.label, id=r.code) for r in self.reasons), id="reason-list")
        yield Footer()

    def on_mount(self) -> None:
        stations = self.query_one("#station-list", OptionList)
        ids = [s.id for s in self.stations]
        stations.highlighted = ids.index(self.station) if self.station in ids else 0
        self.query_one("#reason-list", OptionList).highlighted = 0

    def action_switch_list(self) -> None:
        self.focus_next(OptionList)

    @on(OptionList.OptionSelected, "#station-list")
    def _station_chosen(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#reason-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#reason-list")
    def _reason_chosen(self, event: OptionList.OptionSelected) -> None:
        stations = self.query_one("#station-list", OptionList)
        index = stations.highlighted or 0
        self.dismiss(RaiseChoice(self.stations[index].id, str(event.option.id)))


class BadgeScreen(AndonDialog[BadgeEntry]):
    """Scan a badge; for team-lead authority, then type the PIN (hidden). A `sheet` to read first
    (the shift handover) sits above, in a box of its own that PgUp / PgDn scroll: at 80x24 a busy
    shift's sheet as the title pushed the badge and PIN fields off the screen (issue floor80)."""

    AUTO_FOCUS = "#badge-field"
    BINDINGS = [
        Binding("pagedown", "sheet(1)", "Sheet down", show=False, id="andon.badge.sheet_down"),
        Binding("pageup", "sheet(-1)", "Sheet up", show=False, id="andon.badge.sheet_up"),
    ]

    def __init__(self, title: str, *, need_pin: bool, error: str = "", sheet: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.need_pin = need_pin
        self.error = error
        self.sheet = sheet
        self._badge = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            if self.sheet:
                with VerticalScroll(id="badge-sheet", can_focus=False):
                    yield Static(self.sheet)
                yield Static("More of the sheet: PgDn", id="badge-sheet-more")
            yield Static(self.title_text, classes="andon-title")
            if self.error:
                yield Static(self.error, classes="andon-error", id="badge-error")
            yield ScanField(placeholder="Scan your badge", id="badge-field")
            if self.need_pin:
                yield Input(placeholder="PIN, then Enter", password=True, id="pin-field", max_length=12)
        yield Footer()

    def on_mount(self) -> None:
        if self.sheet:
            self.call_after_refresh(self._say_if_more)

    def _say_if_more(self, y: float | None = None) -> None:
        """The hint shows only when the sheet does not fit its box, and says which way the rest is
        (`y`: where the box is scrolling to; None: where it is)."""
        box = self.query_one("#badge-sheet", VerticalScroll)
        hint = self.query_one("#badge-sheet-more", Static)
        hint.display = box.max_scroll_y > 0
        at = box.scroll_y if y is None else y
        hint.update("More of the sheet: PgDn" if at < box.max_scroll_y else "Start of the sheet: PgUp")

    def action_sheet(self, pages: int) -> None:
        if self.sheet:
            box = self.query_one("#badge-sheet", VerticalScroll)
            y = min(max(0, box.scroll_y + pages * max(1, box.size.height - 1)), box.max_scroll_y)
            box.scroll_to(y=y, animate=False)
            self._say_if_more(y)

    @on(ScanField.Scanned)
    def _badge_scanned(self, event: ScanField.Scanned) -> None:
        event.stop()
        self._badge = event.code.strip().upper()
        if self.need_pin:
            self.query_one("#pin-field", Input).focus()
        else:
            self.dismiss(BadgeEntry(self._badge))

    @on(Input.Submitted, "#pin-field")
    def _pin_entered(self, event: Input.Submitted) -> None:
        event.stop()
        pin = event.value
        event.input.value = ""
        if not self._badge:
            self.notify("Scan your badge first, then type the PIN.", title="Not done", severity="warning")
            self.query_one("#badge-field", ScanField).focus()
            return
        if not pin:  # Enter on the empty field: nothing to check, and nothing counts (services/auth)
            self.notify("Type your PIN, then Enter.", title="Not done", severity="warning")
            return
        self.dismiss(BadgeEntry(self._badge, pin))


class ResolveScreen(AndonDialog[ResolveEntry]):
    """What was done (required), and who did it (badge; prefilled for a logged-in team lead)."""

    AUTO_FOCUS = "#note-field"

    def __init__(self, what: str, badge: str | None) -> None:
        super().__init__()
        self.what = what
        self.badge = badge

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            yield Static(f"RESOLVE: {self.what}", classes="andon-title")
            yield Static("", classes="andon-error", id="resolve-error")
            yield Input(
                placeholder="What was done? (required) Enter to resolve", id="note-field", max_length=200
            )
            if self.badge is None:
                yield ScanField(placeholder="Scan your badge (optional)", id="resolver-field")
            else:
                yield Static(f"Resolved by {self.badge}")
        yield Footer()

    @on(ScanField.Scanned)
    def _badge(self, event: ScanField.Scanned) -> None:
        event.stop()
        self.badge = event.code.strip().upper()
        self.query_one("#note-field", Input).focus()

    @on(Input.Submitted, "#note-field")
    def _note(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.query_one("#resolve-error", Static).update("Not resolved: write what was done, then Enter.")
            return
        self.dismiss(ResolveEntry(self.badge, event.value.strip()))


class CardActionScreen(AndonDialog[CardActionEntry]):
    """A team lead takes a card out of circulation, or puts a suspended one back: scan the card,
    then say why (optional). Which of the two follows from the card's state."""

    AUTO_FOCUS = "#card-field"

    def __init__(self, who: str) -> None:
        super().__init__()
        self.who = who
        self._card = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            yield Static("SUSPEND OR RESUME A CARD", classes="andon-title")
            yield Static(f"{self.who}. A suspended card is not refilled; its open request is cancelled.")
            yield ScanField(placeholder="Scan the card", id="card-field")
            yield Input(placeholder="Why? (optional) Enter to do it", id="card-note", max_length=200)
        yield Footer()

    @on(ScanField.Scanned)
    def _card_scanned(self, event: ScanField.Scanned) -> None:
        event.stop()
        self._card = event.code.strip().upper()
        self.query_one("#card-note", Input).focus()

    @on(Input.Submitted, "#card-note")
    def _note(self, event: Input.Submitted) -> None:
        event.stop()
        if not self._card:
            self.notify("Scan the card first, then say why.", title="Not done", severity="warning")
            self.query_one("#card-field", ScanField).focus()
            return
        self.dismiss(CardActionEntry(self._card, event.value.strip()))


class ShelveScreen(AndonDialog[ShelveEntry]):
    """How long to shelve a chattering device: a number of minutes, at most the configured maximum."""

    AUTO_FOCUS = "#shelve-minutes"

    def __init__(self, device: str, who: str, max_minutes: float) -> None:
        super().__init__()
        self.device = device
        self.who = who
        self.max_minutes = max_minutes

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            yield Static(f"SHELVE DEVICE {self.device}", classes="andon-title")
            yield Static(
                f"{self.who}. Its signals are still logged but raise nothing until the time is up "
                f"(at most {self.max_minutes:g} minutes)."
            )
            yield Static("", classes="andon-error", id="shelve-error")
            yield Input(
                value=f"{min(30, self.max_minutes):g}",
                placeholder="Minutes, then Enter",
                id="shelve-minutes",
                max_length=5,
            )
        yield Footer()

    @on(Input.Submitted, "#shelve-minutes")
    def _minutes(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            minutes = float(event.value.strip())
        except ValueError:
            minutes = 0.0
        if not 0 < minutes <= self.max_minutes:
            self.query_one("#shelve-error", Static).update(
                f"Type a number of minutes from 1 to {self.max_minutes:g}."
            )
            return
        self.dismiss(ShelveEntry(minutes))
