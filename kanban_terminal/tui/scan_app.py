"""The App's scan outcomes, as a mixin so app.py keeps room: an outcome shown (recent scans, banner,
bell, the delivery confirmation) and the recent scans seeded from the log after a restart.

Split from tui/app.py, which keeps the scan field's `@on` handler (a mixin's `@on` is not collected:
Textual gathers decorated handlers from the App class's own namespace), `_record_scan` (the start
half's stub types it for the App alone) and the bus events that call `show_outcome`. Shows only:
the scan use case runs in the runtime (`Runtime.scan`) and comes back through the bus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kanban_terminal.config_keyboard import key_label
from kanban_terminal.domain.cards import FLOOR_WORDS, CardState
from kanban_terminal.domain.scans import OutcomeKind, Verdict
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.tui.outcome_note import said_on_top
from kanban_terminal.tui.screens.confirm import ConfirmDeliveryScreen, ConfirmResult
from kanban_terminal.tui.views import RecentRow

if TYPE_CHECKING:
    from textual.app import App

    from kanban_terminal.services.terminal import Terminal

    _Base = App[None]
else:
    _Base = object

_LOG_WORDS = {
    "registered": "Card registered",
    "bin_empty": "Bin empty",
    "request_raised": "Refill requested",
    "request_sent": "Request sent",
    "accepted": "Accepted upstream",
    "picked": "Being picked",
    "shipped": "On its way",
    "rejected_upstream": "Refused upstream",
    "delivered": "Delivered",
    "suspended": "Taken out of circulation",
    "resumed": "Back in circulation",
    "flagged_lost": "Flagged missing",
    "found": "Found",
    "retired": "Card retired",
    "delayed": "Delayed upstream",
    "at_risk": "At risk upstream",
    "re_routed": "Re-routed",
    "short_delivered": "Short: shortfall requested",
    "delivered_damaged": "Delivered damaged",
}

# Sources whose outcome belongs to the person at this screen (banner, bell, confirmation).
_OPERATOR_SOURCES = ("keyboard", "serial")

_HEADLINE_WORDS = {
    OutcomeKind.REQUEST_RAISED: FLOOR_WORDS[CardState.QUEUED],
    OutcomeKind.DELIVERED: "Delivered",
    OutcomeKind.FOUND: "Found, back in use",
    OutcomeKind.DEBOUNCED: "Repeat read ignored",
    OutcomeKind.ALREADY_REQUESTED: "Already requested",
    OutcomeKind.NEEDS_CONFIRMATION: "Waiting for confirmation",
    OutcomeKind.NOT_ALLOWED: "Not allowed",
    OutcomeKind.UNKNOWN_CARD: "Unknown card",
    OutcomeKind.MISREAD: "Not read",
    OutcomeKind.FAILED: "NOT SAVED",
}


class ScanAppMixin(_Base):
    terminal: Terminal
    last_outcome: ScanOutcome | None
    _recent: list[RecentRow]

    if TYPE_CHECKING:  # the App's (app.py) and the start half's (start_app.py)

        def refresh_screen(self) -> None: ...
        def submit_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> object: ...

    def _seed_recent(self) -> None:
        """After a restart, show what the log holds, including a scan committed but never shown."""
        from kanban_terminal.services.queries import recent_log

        for line in recent_log(self.terminal, self.terminal.config.terminal.recent_scans):
            if line.card_id is None or line.event == "registered":
                continue
            loop = self.terminal.card_loops.get(line.card_id)
            what = _LOG_WORDS.get(line.event, line.event)
            self._recent.append(
                (line.occurred_at, line.card_id, loop.part if loop else "", Verdict.ACCEPTED, what)
            )

    def show_outcome(self, outcome: ScanOutcome) -> None:
        what = _HEADLINE_WORDS.get(outcome.kind, outcome.kind.value)
        part = outcome.part_number or ""
        self._recent.insert(0, (outcome.at, outcome.card_id or outcome.code, part, outcome.verdict, what))
        del self._recent[self.terminal.config.terminal.recent_scans :]
        if not outcome.source.startswith(_OPERATOR_SOURCES):
            self.refresh_screen()
            return
        self.last_outcome = outcome
        if outcome.verdict is Verdict.REJECTED:
            self.bell()
        self.refresh_screen()
        if said_on_top(self.screen, outcome):  # a dialog covers the banner, or it holds one line
            ok = outcome.verdict is Verdict.ACCEPTED
            self.notify(outcome.message, title=f"Scan: {what}", severity="information" if ok else "warning")
        if outcome.kind is OutcomeKind.NEEDS_CONFIRMATION and outcome.card_id:
            card_id = outcome.card_id

            def answered(result: ConfirmResult | None) -> None:
                if result is None:
                    return
                if result.confirmed:
                    self.submit_scan(card_id, confirmed=True)
                elif result.other_code:
                    self.submit_scan(result.other_code)

            yes = key_label(self.terminal.config.keys.confirm_delivery)
            self.push_screen(ConfirmDeliveryScreen(card_id, outcome.message, yes), answered)

    def recent_rows(self) -> list[RecentRow]:
        return list(self._recent)
