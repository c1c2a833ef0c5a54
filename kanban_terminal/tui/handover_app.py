"""The App's shift handover, as a mixin so app.py only gains a few lines (issue 18, last point).

Ctrl+T shows the handover sheet of the shift running now (services/handover.py) and lets the
incoming team lead take it over with badge + PIN (the andon half's login). About once a minute the
App checks whether the shift has changed (from the clock alone) and, once per new shift, whether
anybody took it over (one log read); if not, it offers the sheet as a notice of `OFFER_SECONDS`,
never while a dialog is open (at 80x24 a toast covers the right half of the badge, PIN and resolve
dialogs): the offer then waits for the next check after the dialog has closed.
Reads and writes run in worker threads; nothing decides here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ScreenStackError
from textual.screen import ModalScreen

from kanban_terminal.config_keyboard import key_label
from kanban_terminal.domain.handover import HandoverSheet

if TYPE_CHECKING:
    # The services are imported where they are used: they bring the storage stack, which the first
    # screen must not wait for (issue 15: the screen paints before the runtime opens, tui/boot.py).
    from collections.abc import Callable

    from textual.app import App

    from kanban_terminal.services.auth import AuthSession
    from kanban_terminal.services.handover import ShiftNow
    from kanban_terminal.services.terminal import Terminal

    _Base = App[None]
else:
    _Base = object

CHECK_EVERY_TICKS = 60
"""The App ticks once a second; a shift change noticed within a minute is soon enough."""

OFFER_SECONDS = 15
"""Long enough to read one line; it stayed 60 s and hid the dialogs and recent scans at 80x24."""


class HandoverAppMixin(_Base):
    terminal: Terminal
    auth: AuthSession
    login_then: Callable[..., None]

    _handover_ticks = 0
    _handover_offered: tuple[object, ...] | None = None

    def action_handover(self) -> None:
        self._read_handover()

    def handover_tick(self) -> None:
        """Once a minute: a new shift not offered yet? Only then one log read (is it taken?); the
        whole sheet (board, runways, card reads) is built when someone asks for it with Ctrl+T."""
        self._handover_ticks += 1
        if self._handover_ticks % CHECK_EVERY_TICKS != 1:
            return
        from kanban_terminal.services.handover import shift_now

        try:
            top = self.screen
        except ScreenStackError:
            return  # the App is closing: its timer ticked after the last screen went
        if isinstance(top, ModalScreen):
            return  # a dialog is open: offer at the next check, not over it
        now = shift_now(self.terminal)
        if self._handover_offered != (now.day, now.shift):
            self._offer_handover(now)

    @work(thread=True, group="handover", exclusive=True, description="is the handover due")
    def _offer_handover(self, now: ShiftNow) -> None:
        from kanban_terminal.services.handover import taken_by

        taken = taken_by(self.terminal, now.start)
        self.call_from_thread(self._offer, now, taken)

    def _offer(self, now: ShiftNow, taken: str | None) -> None:
        self._handover_offered = (now.day, now.shift)  # once a shift, taken or not
        if taken is None:
            key = key_label(self.terminal.config.keys.handover)  # `[keys]` may remap it
            self.notify(f"Shift handover due: {now.label}. {key} shows the sheet.", timeout=OFFER_SECONDS)

    @work(thread=True, group="handover", exclusive=True, description="read the handover sheet")
    def _read_handover(self) -> None:
        from kanban_terminal.services.handover import acknowledged_by, read_sheet

        sheet = read_sheet(self.terminal)
        taken = acknowledged_by(self.terminal, sheet)
        self.call_from_thread(self._show_handover, sheet, taken)

    def _show_handover(self, sheet: HandoverSheet, taken: str | None) -> None:
        text = "\n".join(sheet.lines())
        if taken is not None:
            self.notify(f"{text}\nTaken over by {taken}.", timeout=20)
            return
        if self.auth.state is not None:
            self._take_handover()
            return
        self.login_then(self._take_handover, "INCOMING TEAM LEAD: scan your badge, then the PIN", sheet=text)

    @work(thread=True, group="handover", exclusive=False, description="take the shift over")
    def _take_handover(self) -> None:
        from kanban_terminal.services.handover import acknowledge_handover

        outcome = acknowledge_handover(self.terminal, auth=self.auth, source="keyboard")
        severity = "information" if outcome.ok else "warning"
        self.call_from_thread(self.notify, outcome.message, severity=severity, timeout=20)
