"""Dialogs of issues 17 and 18: what was short or damaged in a delivery, and which loop to re-route.

The delivery dialog opens on the card just delivered with the short field focused: the number and
Enter record it (Tab to the damaged field first for damage), so a short delivery costs the operator
F8, a number and Enter. Each dialog returns a typed result, or None on Esc.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from kanban_terminal.tui.screens.andon_dialogs import AndonDialog


@dataclass(frozen=True)
class DeliveryIssueEntry:
    short: int
    damaged: int


@dataclass(frozen=True)
class RerouteChoice:
    loop_id: str


class DeliveryIssueScreen(AndonDialog[DeliveryIssueEntry]):
    """Short and damaged parts of the last delivery: a number in one or both fields, Enter records."""

    AUTO_FOCUS = "#short-field"

    def __init__(self, card_id: str, quantity: int) -> None:
        super().__init__()
        self.card_id = card_id
        self.quantity = quantity

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            yield Static(f"DELIVERY NOT IN FULL: card {self.card_id}", classes="andon-title")
            yield Static(
                f"A full bin holds {self.quantity}. How many were missing, how many damaged? "
                "Enter records; Tab moves; Esc cancels."
            )
            yield Static("", classes="andon-error", id="issue-error")
            yield Input(placeholder="Short: parts missing", id="short-field", max_length=7, type="integer")
            yield Input(
                placeholder="Damaged: parts damaged", id="damaged-field", max_length=7, type="integer"
            )
        yield Footer()

    @on(Input.Submitted)
    def _entered(self, event: Input.Submitted) -> None:
        event.stop()
        values = []
        for field in ("#short-field", "#damaged-field"):
            text = self.query_one(field, Input).value.strip()
            values.append(int(text) if text.isdigit() else 0)
        short, damaged = values
        if short + damaged == 0:
            self.query_one("#issue-error", Static).update("Type how many were short or damaged.")
            return
        if short + damaged > self.quantity:
            self.query_one("#issue-error", Static).update(f"At most {self.quantity} parts in all.")
            return
        self.dismiss(DeliveryIssueEntry(short, damaged))


class RerouteScreen(AndonDialog[RerouteChoice]):
    """The loops that name a second source, with where each goes if re-routed; Enter re-routes."""

    AUTO_FOCUS = "#reroute-list"

    def __init__(self, who: str, loops: tuple[tuple[str, str, str], ...]) -> None:
        """Args:
        loops: (loop id, source now, source after the re-route) for each loop with a second source.
        """
        super().__init__()
        self.who = who
        self.loops = loops

    def compose(self) -> ComposeResult:
        with Vertical(classes="andon-box"):
            yield Static("RE-ROUTE A LOOP", classes="andon-title")
            yield Static(
                f"{self.who}. Its open requests are cancelled at the source it uses now and raised "
                "again at the other, with the same cards. Up/Down picks, Enter re-routes, Esc cancels."
            )
            yield OptionList(
                *(Option(f"{loop}: {now} -> {then}", id=loop) for loop, now, then in self.loops),
                id="reroute-list",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#reroute-list", OptionList).highlighted = 0

    @on(OptionList.OptionSelected, "#reroute-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(RerouteChoice(str(event.option.id)))
