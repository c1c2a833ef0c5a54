"""A scanner read wins on every screen and in every dialog: the App's half of tui/scanner_input.py.

Every key passes through `scanner_read` before Textual hands it to the focused widget. Characters go
on as typed (a person's typing must not wait for a verdict), and the text each field held before a
run of fast keys started is remembered. When the detector says the run was a scanner's read, the
terminator is swallowed (the F4 / F6 picker never selects, the PIN or note is never submitted, no
dialog closes), every field the read typed into gets its earlier text back, and the code goes to
the scan path (`submit_scan`: the runtime's scan use case, as from the scan field).

A read stays with the focused field only where that field is *for* it: an empty scan field that
takes cards (the scan screen's own, the delivery confirmation, the card of "suspend or resume"), or
a badge field given something that is not one of this terminal's cards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import events
from textual.widget import Widget
from textual.widgets import Input

from kanban_terminal.config_keyboard import WedgeSettings
from kanban_terminal.tui.scanner_input import KeyKind, WedgeReadDetector, WedgeTiming
from kanban_terminal.tui.widgets.scan_field import ScanField

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[None]
else:
    _Base = object


# Scan fields by what they are for (ids: the widgets belong to screens that know nothing of this).
SCAN_FIELD = "scan-field"
CARD_FIELDS = frozenset({SCAN_FIELD, "confirm-scan", "card-field"})
BADGE_FIELDS = frozenset({"badge-field", "resolver-field"})


_Typed = dict[Input, tuple[str, int]]


class ScannerWinsMixin(_Base):
    """Mixed into the App before `App` (its `on_event` runs first)."""

    def scanner_wins_init(self, settings: WedgeSettings, is_card: Callable[[str], bool]) -> None:
        timing = WedgeTiming(
            max_gap=settings.max_gap_ms / 1000,
            min_length=settings.min_length,
            terminators=frozenset(k for keys in settings.terminators for k in keys.split(",")),
            aim_prefix=settings.aim_prefix,
        )
        self.wedge = WedgeReadDetector(timing)
        self._is_card = is_card
        self._typed_into: _Typed = {}
        """Each field the current run typed into, with its text and cursor from before."""

    def submit_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> object:
        """The scan path (the App's worker)."""
        raise NotImplementedError

    async def on_event(self, event: events.Event) -> None:
        # Only keys from the terminal (or Pilot): a key the App forwarded is on its way already.
        if isinstance(event, events.Key) and not event.is_forwarded and self.scanner_read(event):
            return
        await super().on_event(event)

    def scanner_read(self, event: events.Key) -> bool:
        """Feed `event` to the detector; True when it ended a read that went to the scan path
        (the key must then go no further)."""
        verdict = self.wedge.key(event.key, event.character, event.time)
        focused = self.focused
        if verdict.kind is KeyKind.CHARACTER:
            if verdict.started:
                self._typed_into = {}
            if isinstance(focused, Input) and focused not in self._typed_into:
                self._typed_into[focused] = (focused.value, focused.cursor_position)
            return False
        if verdict.kind is KeyKind.OTHER:
            self._typed_into = {}
            return False
        typed_into, self._typed_into = self._typed_into, {}
        code = verdict.code
        if self._stays_with(focused, typed_into, code):
            if not isinstance(focused, ScanField) or focused.id != SCAN_FIELD:
                return False  # a dialog's own field takes it: its Submitted handler decides
            # The screen's own scan field: straight to the scan path, as its Scanned message would
            # (cut to the field's length, as the field would), without waiting for the field to
            # work through the read's keys, its Enter binding and two message hops: loop -> submit
            # was 6-12 ms p50, 30 ms p99 in tmux (bench/scan_stages.py), the most before the scan.
            code = code[: focused.max_length] if focused.max_length else code
        for field, (value, cursor) in typed_into.items():
            # After the keys already queued for the field: they would otherwise land on top.
            field.call_later(_put_back, field, value, cursor)
        self.submit_scan(code)
        return True

    def _stays_with(self, focused: Widget | None, typed_into: _Typed, code: str) -> bool:
        if not isinstance(focused, ScanField) or set(typed_into) != {focused}:
            return False
        if typed_into[focused][0]:  # typed into text a person had started: put that back
            return False
        return focused.id in CARD_FIELDS or (focused.id in BADGE_FIELDS and not self._is_card(code))


def _put_back(field: Input, value: str, cursor: int) -> None:
    field.value = value
    field.cursor_position = cursor
