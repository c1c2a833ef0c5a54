"""When the relay thread reads the outbox and marks PUBACKs on its own (services/relay.py).

At a paced line (5 signals/s) the inbound worker does the relay's work itself: it publishes the
requests its group raised (`publish_fresh`) and marks the PUBACKs that came in meanwhile inside its
next group (`join_group`). The relay thread is the safety net for what the worker cannot see. It
used to read the outbox on every 1 s sweep while anything was in memory and to mark, in a write
turn of its own, whatever PUBACK it found unmarked, which at 5/s is nearly always one (the PUBACK
comes ~1 ms after the publish, the next group ~200 ms later). Each such mark is a commit whose
`CardsChanged` also woke the runway, escalation and anchor jobs. Measured at 5 signals/s, 20,000
cards, same run, box shared (bench/idle_wakeups.py, schedstat, 50 s, two runs): the relay thread
0.25-0.28 ms of CPU and 0.34-0.46 wake-ups a second on main, 0.12-0.14 and 0.18 with what follows.

Now, in a sweep:
* while the worker's groups mark (one took PUBACKs within `MARK_WITHIN_S`), the relay leaves the
  PUBACKs to the next group, unless one has waited `MARK_WITHIN_S` (the line went quiet), a
  window's worth waits, or a read was capped (the mark is what says "read again", relay.py
  `_released`); with no group marking (a drain) it marks them at once, as before;
* while the worker's groups are marking (one took PUBACKs since the relay thread last woke), the
  thread sleeps until its next read instead of waking each second to look: the worker will take
  the next PUBACK too. So on a line that just went quiet its last card leaves `queued` up to
  `read_period` + `MARK_WITHIN_S` after its PUBACK; before, the thread's own mark emptied the window
  at 5/s and it then slept `IDLE_SWEEP_S` (5 s) the same way (bench/idle_wakeups.py: 0.32 wake-ups
  a second; waking each second to look instead: 1.38 and no CPU saved);
* the outbox is read when something says a row may be due (an event, a reconnect, a refusal, a
  freed slot a capped read wanted: `Relay._due`), when a held row's pause ends or an unanswered
  publish counts as lost (`InflightWindow.next_deadline`), and otherwise every `read_period` (5 s,
  at most a twelfth of `republish_after`): rows another process wrote and stale rows (republished
  `republish_after` after their last publish) go out up to that much later, as on an idle terminal.

Not thread-safe: the relay calls it under its lock; `wait` and the worker's `taken` may race on
`worker_marked`, which costs one sleep to the next read (5 s) or one extra wake, never a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from kanban_terminal.services.relay_window import IDLE_SWEEP_S, InflightWindow

SWEEP_S = 1.0
"""The relay thread wakes this often while anything is in memory (in flight, PUBACKed not marked,
held) to take the broker's answers off the queue; a wake that finds nothing due reads no table."""

MARK_WITHIN_S = 1.0
"""A PUBACK no group of the inbound worker marked within this long is marked by the relay thread:
the same bound as the old 1 s sweep gave a card to leave `queued`."""


class Sweep:
    """The relay thread's clock for its reads and its own marks. Times: the relay's monotonic timer."""

    def __init__(self, republish_after_s: float) -> None:
        self.republish_after_s = republish_after_s
        self.read_period = max(SWEEP_S, min(IDLE_SWEEP_S, republish_after_s / 12))
        self.acked_since: float | None = None
        """When the oldest PUBACK not yet taken for a mark came in (None: none waiting)."""
        self.next_read = 0.0
        self.worker_marked = False
        """A group of the inbound worker took PUBACKs since the relay thread's last step."""
        self.worker_took_at = -math.inf
        """When a group of the inbound worker last took PUBACKs to mark."""

    def acked(self, at: float) -> None:
        """A PUBACK answered at `at` waits for its mark."""
        if self.acked_since is None or at < self.acked_since:
            self.acked_since = at

    def taken(self, *, by_worker_at: float | None = None) -> None:
        """Every waiting PUBACK was taken for a mark (by a group at `by_worker_at`, or by the relay
        thread)."""
        self.acked_since = None
        if by_worker_at is not None:
            self.worker_marked = True
            self.worker_took_at = by_worker_at

    def handed_back(self) -> None:
        """A mark was rolled back: its PUBACKs are marked by the relay thread's next step."""
        self.acked_since = -math.inf

    def read_due(self, now: float, window: InflightWindow, wall: Callable[[], datetime]) -> bool:
        """Whether the sweep at `now` must read the outbox (besides what `Relay._due` says)."""
        if now >= self.next_read:
            self.next_read = now + self.read_period
            return True
        deadline = window.next_deadline(self.republish_after_s)
        return deadline is not None and wall() >= deadline

    def leave_marks(self, now: float) -> bool:
        """Whether the relay thread leaves the waiting PUBACKs to the worker's next group: one took
        PUBACKs within `MARK_WITHIN_S` and none has waited that long. Else (a drain with no signal
        groups, a line gone quiet) it marks them at once, as it always did: a drain that left them
        waited for the deadline ran at 2,500 instead of 6,100-6,800 req/s (bench/relay_drain.py)."""
        if now - self.worker_took_at >= MARK_WITHIN_S:
            return False
        return self.acked_since is None or now - self.acked_since < MARK_WITHIN_S

    def wait(self, now: float, in_memory: bool) -> float:
        """Seconds the relay thread may sleep unless woken."""
        wait = self.next_read - now
        if self.worker_marked:  # the groups mark: look again at the next read
            self.worker_marked = False
            return max(0.0, wait)
        if in_memory:
            wait = min(wait, SWEEP_S)
        if self.acked_since is not None:
            left = self.acked_since + MARK_WITHIN_S - now
            if left > 0:  # passed: marked, or held by a busy worker (then the 1 s wake as before)
                wait = min(wait, left)
        return max(0.0, wait)
