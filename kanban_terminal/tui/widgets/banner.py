"""The result banner: large, high-contrast, readable from a step away with a scanner in hand."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from kanban_terminal.domain.scans import OutcomeKind, Verdict
from kanban_terminal.services.events import ScanOutcome

_HEADLINES = {
    OutcomeKind.REQUEST_RAISED: "REFILL REQUESTED",
    OutcomeKind.DELIVERED: "DELIVERED",
    OutcomeKind.FOUND: "CARD FOUND",
    OutcomeKind.DEBOUNCED: "ALREADY SCANNED",
    OutcomeKind.ALREADY_REQUESTED: "ALREADY REQUESTED",
    OutcomeKind.NEEDS_CONFIRMATION: "CONFIRM DELIVERY",
    OutcomeKind.NOT_ALLOWED: "NOT ALLOWED",
    OutcomeKind.UNKNOWN_CARD: "UNKNOWN CARD",
    OutcomeKind.MISREAD: "SCAN NOT READ",
    OutcomeKind.FAILED: "NOT SAVED",
}


class Banner(Static):
    """Shows the outcome of the last scan in green, amber or red."""

    def __init__(self, idle_text: str, *, id: str = "banner") -> None:
        # Idle text from the start, not set on mount: the screen may show an outcome first.
        super().__init__(Text(idle_text, justify="center"), id=id)
        self.idle_text = idle_text

    def show(self, outcome: ScanOutcome | None) -> None:
        self.remove_class("-accepted", "-warning", "-rejected")
        if outcome is None:
            self.update(Text(self.idle_text, justify="center"))
            return
        self.add_class(f"-{outcome.verdict.value}")
        text = Text(justify="center")
        mark = {Verdict.ACCEPTED: "OK", Verdict.WARNING: "!", Verdict.REJECTED: "X"}[outcome.verdict]
        text.append(f"{mark}  {_HEADLINES[outcome.kind]}\n", style="bold")
        if outcome.card_id and outcome.part_description:
            text.append(
                f"Card {outcome.card_id} - {outcome.part_number} {outcome.part_description} - "
                f"{outcome.point_of_use}\n"
            )
        text.append(outcome.message)
        self.update(text)
