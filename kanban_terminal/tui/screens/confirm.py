"""Asking the operator to confirm a delivery that came implausibly soon after its request.

Enter is NOT the confirm key: a scanner ends every read with Enter, so the next card scanned would
confirm this one. Scanning the same card again, or Ctrl+Y (`[keys] confirm_delivery`; no longer F5,
which means "Log" everywhere else), confirms; any other card cancels and is handled as a scan of its
own.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from kanban_terminal.domain.codes import normalise_code
from kanban_terminal.tui.widgets.scan_field import ScanField


@dataclass(frozen=True)
class ConfirmResult:
    confirmed: bool
    other_code: str | None = None
    """A different code scanned while asking: handle it as a new scan."""


class ConfirmDeliveryScreen(ModalScreen[ConfirmResult]):
    AUTO_FOCUS = "#confirm-scan"
    BINDINGS = [
        Binding("ctrl+y", "confirm", "Yes, delivered", id="confirm.yes"),
        Binding("escape", "cancel", "No", id="confirm.no"),
    ]

    def __init__(self, card_id: str, message: str, yes_key: str = "Ctrl+Y") -> None:
        super().__init__()
        self.card_id = card_id
        self.message = message
        self.yes_key = yes_key

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text("CONFIRM DELIVERY", style="bold"), id="confirm-title")
            yield Static(self.message, id="confirm-message")
            yield Static(
                f"Scan card {self.card_id} again or press {self.yes_key} if the full bin is here. Esc: no.",
                id="confirm-help",
            )
            yield ScanField(placeholder=f"Scan {self.card_id} again to confirm", id="confirm-scan")
        yield Footer()

    @on(ScanField.Scanned)
    def _scanned(self, event: ScanField.Scanned) -> None:
        event.stop()
        if normalise_code(event.code) == self.card_id:
            self.dismiss(ConfirmResult(True))
        else:
            self.dismiss(ConfirmResult(False, other_code=event.code))

    def action_confirm(self) -> None:
        self.dismiss(ConfirmResult(True))

    def action_cancel(self) -> None:
        self.dismiss(ConfirmResult(False))
