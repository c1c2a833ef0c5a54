"""Telling a keyboard-wedge scanner's read from a person typing, key by key.

A wedge scanner is a keyboard: the screen gets its read as keys, exactly like typing. What tells
them apart is timing (a scanner types a read at 1-10 ms a key and ends it with Enter or Tab; people
type at 120-240 ms a key) and, where the scanners send one, the AIM symbology prefix (`]` + 2
characters) that nobody types by hand. The App feeds every key here *before* the focused widget
sees it; when a read is complete, the App sends it to the scan path whatever has the focus (a
picker, the PIN field, a note, the log filter), swallows the terminator so it selects, submits or
cancels nothing, and puts back the text the read typed into a field.

Pure logic: no Textual, no clock. Each key comes with the time it was read (Textual stamps
`events.Key.time` in its input thread, when the bytes arrive, so a busy event loop does not make a
scanner look slow). Settings come from `[wedge]` (config_keyboard.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")


@dataclass(frozen=True)
class WedgeTiming:
    """How a read looks; from `WedgeSettings` (times in seconds here)."""

    max_gap: float = 0.050
    min_length: int = 4
    terminators: frozenset[str] = frozenset({"enter", "tab"})
    aim_prefix: bool = False


class KeyKind(Enum):
    CHARACTER = "character"
    """A printable character: it goes on to the focused widget, and may be part of a read."""
    READ = "read"
    """The terminator of a read: the App sends `code` to the scan path and swallows this key."""
    OTHER = "other"
    """Anything else (a function key, a terminator after typing): handled as it always was."""


@dataclass(frozen=True)
class KeyVerdict:
    kind: KeyKind
    started: bool = False
    """This character began a new run: what the focused field holds now is what to put back."""
    code: str = ""
    """The read (READ only), exactly as typed: the scan path strips a terminator or AIM prefix."""


class WedgeReadDetector:
    """Fed every key with its time; says when the keys so far were a scanner's read."""

    def __init__(self, timing: WedgeTiming) -> None:
        self.timing = timing
        self._run: list[str] = []
        self._last_at: float | None = None

    def key(self, key: str, character: str | None, at: float) -> KeyVerdict:
        """Args:
            key: Textual's key name ("B", "enter", "f4", "right_square_bracket").
            character: the character it types, if any.
            at: when it was read, in seconds (any monotonic clock).

        Returns:
            What the key is: a character of a possible read, the end of a read, or anything else.
        """
        if key in self.timing.terminators:
            verdict = self._end(at)
            self._reset()
            return verdict
        if character is None or len(character) != 1 or not character.isprintable():
            self._reset()
            return KeyVerdict(KeyKind.OTHER)
        started = not self._run or (self._too_slow(at) and not self._aim_run())
        if started:
            self._run = []
        self._run.append(character)
        self._last_at = at
        return KeyVerdict(KeyKind.CHARACTER, started=started)

    def _end(self, at: float) -> KeyVerdict:
        if not self._run:
            return KeyVerdict(KeyKind.OTHER)
        code = "".join(self._run)
        if self._aim_run():
            return KeyVerdict(KeyKind.READ, code=code) if len(code) > 3 else KeyVerdict(KeyKind.OTHER)
        if self._too_slow(at) or len(code) < self.timing.min_length:
            return KeyVerdict(KeyKind.OTHER)
        return KeyVerdict(KeyKind.READ, code=code)

    def _too_slow(self, at: float) -> bool:
        return self._last_at is not None and at - self._last_at > self.timing.max_gap

    def _aim_run(self) -> bool:
        """The run so far starts with an AIM prefix and the scanners are said to send one."""
        if not self.timing.aim_prefix or not self._run or self._run[0] != "]":
            return False
        head = "".join(self._run[:3])
        return len(head) < 3 and (len(head) == 1 or head[1].isalpha()) or bool(_AIM_PREFIX.match(head))

    def _reset(self) -> None:
        self._run = []
        self._last_at = None
