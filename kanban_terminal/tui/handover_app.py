"""The App's shift handover, as a mixin so app.py only gains a few lines (issue 18, last point).

Ctrl+T shows the handover sheet of the shift running now (services/handover.py) and lets the
incoming team lead take it over with badge + PIN (the andon half's login). About once a minute the
App checks whether the shift has changed and nobody took it over yet; then it offers the sheet once
per shift, as a notice that stays 60 s. Reads and writes run in worker threads; nothing decides here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

from kanban_terminal.domain.handover import HandoverSheet
from kanban_terminal.services.auth import AuthSession
from kanban_terminal.services.handover import acknowledge_handover, acknowledged_by, read_sheet
from kanban_terminal.services.terminal import Terminal

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App

    _Base = App[None]
else:
    _Base = object

CHECK_EVERY_TICKS = 60
"""The App ticks once a second; a shift change noticed within a minute is soon enough."""


class HandoverAppMixin(_Base):
    terminal: Terminal
    auth: AuthSession
    login_then: Callable[..., None]

    _handover_ticks = 0
    _handover_offered: tuple[object, ...] | None = None

    def action_handover(self) -> None:
        self._read_handover(offer_only=False)

    def handover_tick(self) -> None:
        self._handover_ticks += 1
        if self._handover_ticks % CHECK_EVERY_TICKS == 1:
            self._read_handover(offer_only=True)

    @work(thread=True, group="handover", exclusive=True, description="read the handover sheet")
    def _read_handover(self, offer_only: bool) -> None:
        sheet = read_sheet(self.terminal)
        taken = acknowledged_by(self.terminal, sheet)
        self.call_from_thread(self._show_handover, sheet, taken, offer_only)

    def _show_handover(self, sheet: HandoverSheet, taken: str | None, offer_only: bool) -> None:
        if offer_only:
            key = (sheet.day, sheet.shift)
            if taken is None and self._handover_offered != key:
                self._handover_offered = key
                self.notify(f"Shift handover due: {sheet.shift_label}. Ctrl+T shows the sheet.", timeout=60)
            return
        text = "\n".join(sheet.lines())
        if taken is not None:
            self.notify(f"{text}\nTaken over by {taken}.", timeout=20)
            return
        if self.auth.state is not None:
            self._take_handover()
            return
        self.login_then(self._take_handover, f"{text}\n\nINCOMING TEAM LEAD: scan your badge, then the PIN")

    @work(thread=True, group="handover", exclusive=False, description="take the shift over")
    def _take_handover(self) -> None:
        outcome = acknowledge_handover(self.terminal, auth=self.auth, source="keyboard")
        severity = "information" if outcome.ok else "warning"
        self.call_from_thread(self.notify, outcome.message, severity=severity, timeout=20)
