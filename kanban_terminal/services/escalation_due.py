"""When the escalation tick has to read the database, so an idle terminal reads nothing each second.

The tick (services/escalation.py) used to read every unacknowledged andon, every open request and
every supplied material call once a second whether anything could be due or not: 1.3-1.5 ms of CPU
a second on an idle `serve` (py-spy; bench/idle_wakeups.py), ~0.3 ms a signal at 5 signals/s
(issue 19). What can make a read worth doing is known:

* a tier or a material timer reaches its delay: each full read leaves the soonest such moment
  behind, on the monotonic clock (`due_in`), so a wall-clock step moves none of them;
* an andon changed or a request was raised or closed in this process: the bus says so. An andon
  event asks for a read at the next tick; a card or request event (one per bin signal) at most once
  every `BUSY_GAP_S`, so a paced line pays one read per few seconds, not one per second;
* another process wrote the file (the CLI raising an andon beside a running `serve`, a scan):
  seen as a change of the WAL file's size or time (one `stat` a tick; our own commits change it
  too, so it counts as a card event, not an andon one);
* the wall clock stepped (the caller's `ClockWatch`, which reads no table).

And at least every `REFRESH_S` anyway, so a case missed above costs a minute at most, and running
timers get their anchors saved (services/clock_watch.py, SAVE_EVERY_S) as before.

It holds no lock and reads no table: the runner calls it under its own lock.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from kanban_terminal.services.andon import AndonChanged, LineStateChanged
from kanban_terminal.services.events import CardsChanged, RequestRaised, ScanRecorded

REFRESH_S = 60.0
"""A full read at least this often, whatever the events said (the same as the anchors' save)."""

BUSY_GAP_S = 5.0
"""Least time between two reads asked for by card or request events or a WAL change. Material
andons are due after a loop's planned lead time (minutes at least), and a delivery resolving one a
few seconds later changes nothing on the floor. An andon raised by another process gets its tier 0
this much later at most while signals flow, within a tick when the line is quiet."""


class EscalationDue:
    """The bookkeeping of when to read next. Times are the runner's monotonic clock, in seconds."""

    def __init__(self, wal: Path | None) -> None:
        self._wal = wal
        self._wal_seen: tuple[int, int, int] | None = self._wal_stat()
        self._read_at = -math.inf
        self._next_due = -math.inf  # the first tick reads
        self._now = False
        self._soon = False

    def on_event(self, event: object) -> None:
        """A bus event (any thread): ask for a read if it can change what escalates."""
        if isinstance(event, AndonChanged | LineStateChanged):
            self._now = True
        elif isinstance(event, RequestRaised | CardsChanged | ScanRecorded):
            self._soon = True

    def wake(self) -> None:
        """Read at the next tick (a wall-clock step)."""
        self._now = True

    def should_read(self, mono: float) -> bool:
        """Whether the tick at `mono` must read the database."""
        wal = self._wal_stat()
        if wal != self._wal_seen:
            self._wal_seen = wal
            self._soon = True
        return (
            self._now
            or mono >= self._next_due
            or mono >= self._read_at + REFRESH_S
            or (self._soon and mono >= self._read_at + BUSY_GAP_S)
        )

    def reading(self, mono: float) -> None:
        """A full read starts now: what asked for it is answered (events from here on ask again)."""
        self._now = self._soon = False
        self._read_at = mono
        self._next_due = math.inf

    def due_in(self, mono: float, wait_s: float) -> None:
        """A timer seen in the read reaches its next delay `wait_s` seconds after `mono`."""
        self._next_due = min(self._next_due, mono + max(0.0, wait_s))

    def _wal_stat(self) -> tuple[int, int, int] | None:
        if self._wal is None:
            return None
        try:
            st = os.stat(self._wal)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)
