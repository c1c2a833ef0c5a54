"""The result banner: large, high-contrast, readable from a step away with a scanner in hand.

ISA-101 (tui/palette.py): an accepted scan is confirmed in grey, in words and a heavy frame; a
refused or doubtful read is amber with the time it was read, so an operator coming back to the
screen can tell an old misread from a new one. A refused read does not stay for ever: the App
clears it after `[display] misread_banner_seconds` (`outcome_expired`) or with the next good scan.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from kanban_terminal.domain.scans import OutcomeKind, Verdict
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.tui.palette import clip

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

# A garbage read can be hundreds of characters: the banner keeps its size (issue 15).
_MESSAGE_CHARS = 160
_READ_CHARS = 60


def outcome_expired(outcome: ScanOutcome | None, now: datetime, seconds: float) -> bool:
    """Whether the banner should stop showing `outcome`: a refused or doubtful read older than
    `seconds`. An accepted scan stays (it is grey and harmless); a scan that was NOT SAVED stays until
    the next scan, because nothing else on the screen says that the disk refused it."""
    if outcome is None or outcome.verdict is Verdict.ACCEPTED or outcome.kind is OutcomeKind.FAILED:
        return False
    return (now - outcome.at).total_seconds() >= seconds


_VERDICT_CLASSES = ("-accepted", "-warning", "-rejected")


class Banner(Static):
    """Shows the outcome of the last scan: grey when accepted, amber when refused or doubtful."""

    def __init__(self, idle_text: str, *, id: str = "banner") -> None:
        # Idle text from the start, not set on mount: the screen may show an outcome first.
        super().__init__(Text(idle_text, justify="center"), id=id)
        self.idle_text = idle_text

    def show(self, outcome: ScanOutcome | None) -> None:
        # Only the class that changes: removing and adding back "-accepted" on every good scan
        # restyled the banner each time (Textual re-applies the stylesheet to a node on any change).
        wanted = "" if outcome is None else f"-{outcome.verdict.value}"
        for name in _VERDICT_CLASSES:
            self.set_class(name == wanted, name)
        if outcome is None:
            self._put(Text(self.idle_text, justify="center"))
            return
        text = Text(justify="center")
        mark = {Verdict.ACCEPTED: "OK", Verdict.WARNING: "!", Verdict.REJECTED: "X"}[outcome.verdict]
        text.append(f"{mark}  {_HEADLINES[outcome.kind]}", style="bold")
        text.append(f"  at {outcome.at.astimezone():%H:%M:%S}\n")
        if outcome.card_id and outcome.part_description:
            text.append(
                f"Card {outcome.card_id} - {outcome.part_number} {outcome.part_description} - "
                f"{outcome.point_of_use}\n"
            )
        text.append(clip(outcome.message, _MESSAGE_CHARS))
        if outcome.verdict is Verdict.REJECTED and not outcome.card_id:
            # What was read, escaped and cut to one line at 80 columns: the operator sees which label
            # (or which garbage) it was; the recent-scans column is too narrow for that at 80x24.
            text.append(f"\nRead: {clip(outcome.code, _READ_CHARS)}")
        self._put(text)

    def _put(self, text: Text) -> None:
        """Show `text`; lay the screen out again only if the banner's height changes. `update`
        alone lays out the whole screen, and that reflow was in every scan's banner frame while
        scan after scan keeps the same three lines (bench/scan_stages.py)."""
        width = self.content_size.width
        before = self.get_content_height(self.size, self.size, width)  # of the text shown now
        self.update(text, layout=False)
        self.clear_cached_dimensions()
        if not width or self.get_content_height(self.size, self.size, width) != before:
            self.refresh(layout=True)
