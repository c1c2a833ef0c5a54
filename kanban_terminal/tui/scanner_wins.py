"""A scanner read wins on every screen and in every dialog: the App's half of tui/scanner_input.py.

Every key passes through `scanner_read` before Textual hands it to the focused widget. Characters go
on as typed (a person's typing must not wait for a verdict), and the text each field held before a
run of fast keys started is remembered. When the detector says the run was a scanner's read, the
terminator is swallowed (the F4 / F6 picker never selects, the PIN or note is never submitted, no
dialog closes), every field the read typed into gets its earlier text back, and the code goes to
the scan path (`submit_scan`: the runtime's scan use case, as from the scan field).

A read stays with the focused field only where that field is *for* it: an empty scan field that
takes cards (the scan screen's own, the delivery confirmation, the card of "suspend or resume"), a
badge field given something that is neither one of this terminal's cards nor a garbled read of
one (tui/badge_reads.py: a garbled card read is refused on the scan path with the scan screen's
words, not as an "unknown badge"), or a PIN field given something that is neither a card nor a
badge (a PIN typed fast).

A person's keys after a key that opens or moves to a field go to that field. Textual moves the focus
later than the key that asked for it: `Widget.focus` queues a callback behind the keys already
delivered, a pushed dialog focuses its field only when it resumes, and a badge's Enter reaches the
dialog through three message queues before it moves to the PIN field. On a busy box the keys typed
meanwhile were already queued and landed in the old field (or nowhere). So after any key that can
move things (not a character typed into a field), later keys wait here until the screen's message
queues are empty, and are then passed on in order, with the times they were read (the detector is
not fooled by the wait). The wait is bounded (`_HOLD_MAX_S`): no key is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
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

# Longest wait for the screen to settle before held keys go on anyway: far above the few ms a focus
# move takes (one to four message-queue hops), so it only bounds a pathological case.
_HOLD_MAX_S = 0.5
_HOLD_POLL_S = 0.002


class ScannerWinsMixin(_Base):
    """Mixed into the App before `App` (its `on_event` runs first)."""

    hold_keys = True
    """Hold keys while the focus may move (False only for bench/key_hold.py's baseline)."""

    def scanner_wins_init(
        self, settings: WedgeSettings, is_card: Callable[[str], bool], is_badge: Callable[[str], bool]
    ) -> None:
        timing = WedgeTiming(
            max_gap=settings.max_gap_ms / 1000,
            min_length=settings.min_length,
            terminators=frozenset(k for keys in settings.terminators for k in keys.split(",")),
            aim_prefix=settings.aim_prefix,
        )
        self.wedge = WedgeReadDetector(timing)
        self._is_card = is_card
        self._is_badge = is_badge
        self._typed_into: _Typed = {}
        """Each field the current run typed into, with its text and cursor from before."""
        self._held: list[events.Key] = []
        """Keys that arrived while the focus may still be moving, oldest first."""
        self._hold_since: float | None = None

    def submit_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> object:
        """The scan path (the App's worker)."""
        raise NotImplementedError

    async def on_event(self, event: events.Event) -> None:
        # Only keys from the terminal (or Pilot): a key the App forwarded is on its way already.
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._held.append(event)
            if self._hold_since is None:
                await self._pass_keys()
            return
        await super().on_event(event)

    async def _pass_keys(self) -> None:
        """Pass the held keys on in order, until one of them may move the focus."""
        while self._held and self._hold_since is None:
            key = self._held.pop(0)
            if self.scanner_read(key):
                continue
            typing = key.is_printable and isinstance(self.focused, Input)
            await super().on_event(key)
            if not typing and self.hold_keys:  # a binding, Enter, Esc...: the focus may be moving
                self._hold_since = monotonic()
                self.call_later(self._settle, False)

    async def _settle(self, seen_quiet: bool) -> None:
        """Release the held keys once the screen is quiet twice in a row, one App-queue round
        apart: a handler that ran just before the first look may have queued a focus callback on
        the App, which the second look comes after."""
        if self._hold_since is None:
            return
        quiet = _quiet(self)
        if not (quiet and seen_quiet) and monotonic() - self._hold_since < _HOLD_MAX_S:
            if quiet:
                self.call_later(self._settle, True)
            else:
                self.set_timer(_HOLD_POLL_S, lambda: self._settle(False))
            return
        self._hold_since = None
        await self._pass_keys()

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
        if isinstance(focused, Input) and focused.password and set(typed_into) == {focused}:
            # A PIN typed at scanner speed (a keypad, a practised hand) is a PIN: on the scan path it
            # was refused as a misread, shown on screen and kept in the rejected-input log in clear.
            # A card (whole or garbled) or a badge read there still goes to the scan path.
            return not self._is_card(code) and not self._is_badge(code)
        if not isinstance(focused, ScanField) or set(typed_into) != {focused}:
            return False
        if typed_into[focused][0]:  # typed into text a person had started: put that back
            return False
        return focused.id in CARD_FIELDS or (focused.id in BADGE_FIELDS and not self._is_card(code))


def _quiet(app: App[None]) -> bool:
    """No message waits in the shown screen or any of its widgets (a dialog being pushed has its
    compose, mount and resume queued)."""
    screen = app.screen
    return all(pump._message_queue.empty() for pump in (screen, *screen.walk_children()))


def _put_back(field: Input, value: str, cursor: int) -> None:
    field.value = value
    field.cursor_position = cursor
