"""The App's supply half (issues 17, 18), as a mixin so app.py only gains a few lines: record a short
or damaged delivery (scan screen, F8) and re-route a loop to its second source (board, F9).

Use cases run in worker threads; what they committed comes back through the bus (`CardsChanged`,
`RequestRaised`, `AndonChanged`) like every other change, and the words through `notify`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

from kanban_terminal.config_keyboard import key_label
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.tui.screens.board import BoardScreen
from kanban_terminal.tui.screens.scan import ScanScreen
from kanban_terminal.tui.screens.supply_dialogs import (
    DeliveryIssueEntry,
    DeliveryIssueScreen,
    RerouteChoice,
    RerouteScreen,
)

if TYPE_CHECKING:
    # The use cases are imported where they run: they bring the storage stack, which the first
    # screen must not wait for (issue 15, tui/boot.py).
    from kanban_terminal.services.auth import AuthSession
    from kanban_terminal.services.queries import Status
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.tui.andon_app import AndonAppMixin

    # For the type checker only: `login_then` is the andon half's, which comes after this mixin in
    # the App's bases (a stub of it here would shadow it at run time, and copied its signature).
    _Base = AndonAppMixin
else:
    _Base = object

SOURCE = "keyboard"
NO_SECOND_SOURCE = (
    "No loop of this line has a second source to re-route to. Maintenance sets one up in the "
    "terminal's configuration."
)


class SupplyAppMixin(_Base):
    terminal: Terminal
    auth: AuthSession
    last_outcome: ScanOutcome | None
    status: Status | None

    def on_scan_screen_delivery_issue(self, message: ScanScreen.DeliveryIssue) -> None:
        outcome = self.last_outcome
        if outcome is None or outcome.kind is not OutcomeKind.DELIVERED or not outcome.card_id:
            key = key_label(self.terminal.config.keys.delivery_issue)  # `[keys]` may remap it
            self.notify(f"Scan the delivered card first, then {key}.", title="Delivery", severity="warning")
            return
        card_id = outcome.card_id
        loop = self.terminal.card_loops[card_id]

        def entered(entry: DeliveryIssueEntry | None) -> None:
            if entry is not None:
                self._record_issue(card_id, entry)

        self.push_screen(DeliveryIssueScreen(card_id, loop.container_quantity), entered)

    @work(thread=True, group="supply", description="record a short or damaged delivery")
    def _record_issue(self, card_id: str, entry: DeliveryIssueEntry) -> None:
        from kanban_terminal.services.delivery_issue import record_delivery_issue
        from kanban_terminal.storage.errors import STORAGE_ERRORS, storage_reason

        actor = self.auth.state.badge if self.auth.state else None
        try:
            done = record_delivery_issue(
                self.terminal, card_id, short=entry.short, damaged=entry.damaged, source=SOURCE, actor=actor
            )
        except STORAGE_ERRORS as exc:  # nothing was saved: say so in red, never "recorded"
            key = key_label(self.terminal.config.keys.delivery_issue)
            message = f"NOT recorded: the terminal could not save ({storage_reason(exc)}). Try {key} again."
            self.call_from_thread(self.notify, message, title="Delivery", severity="error")
            return
        severity = "information" if done.ok else "error"
        self.call_from_thread(self.notify, done.message, title="Delivery", severity=severity)

    def on_board_screen_reroute_loop(self, message: BoardScreen.RerouteLoop) -> None:
        if self.auth.state is None:
            self.login_then(self._ask_loop, "RE-ROUTE A LOOP: team lead badge and PIN")
        else:
            self._ask_loop()

    def _ask_loop(self) -> None:
        cfg = self.terminal.config
        now = {s.loop_id: s.source for s in self.status.loops} if self.status else {}
        loops = []
        for second in cfg.second_sources:
            primary = cfg.loop(second.loop).source
            current = now.get(second.loop, primary)
            loops.append((second.loop, current, primary if current == second.source else second.source))
        if not loops:
            # In floor words: the config table's name meant nothing to a team lead (issue floor80).
            self.notify(NO_SECOND_SOURCE, title="Not done", severity="warning")
            return

        def chosen(choice: RerouteChoice | None) -> None:
            if choice is not None:
                self._reroute(choice.loop_id)

        who = f"Team lead {self.auth.state.name}" if self.auth.state else "No team lead logged in"
        self.push_screen(RerouteScreen(who, tuple(loops)), chosen)

    @work(thread=True, group="supply", description="re-route a loop")
    def _reroute(self, loop_id: str) -> None:
        from kanban_terminal.services.reroute import reroute_loop

        done = reroute_loop(self.terminal, loop_id, source=SOURCE, auth=self.auth)
        severity = "information" if done.ok else "error"
        self.call_from_thread(self.notify, done.message, title="Re-route", severity=severity)
