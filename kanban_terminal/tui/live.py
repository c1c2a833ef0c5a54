"""Following the bus on screens that read history (card log F5, metrics F11), throttled.

Issue 15: both screens were snapshots taken when they opened (F11 showed 2 andons and 10 cycles
while the CLI showed 3 and 13). The App counts the bus events that change what is stored
(`TerminalView.events_seen`); a screen that sees the count move reads again, at most once per
interval: the first change reads at once, changes during the interval are folded into one read at
its end. A burst of a hundred bin signals costs two reads, not a hundred.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget


class Throttle:
    """Calls `read` on `poke()`, at most once per `interval` seconds, never dropping the last poke."""

    def __init__(self, owner: Widget, interval: float, read: Callable[[], None]) -> None:
        self._owner = owner
        self._interval = interval
        self._read = read
        self._timer: Timer | None = None
        self._dirty = False

    def poke(self) -> None:
        if self._timer is not None:
            self._dirty = True
            return
        self._read()
        self._timer = self._owner.set_timer(self._interval, self._cooled, name="live-refresh")

    def _cooled(self) -> None:
        self._timer = None
        if self._dirty:
            self._dirty = False
            self.poke()
