"""What the runtime's runway job runs on each step: a full pass, or only the loops whose cards changed.

Every bin signal changes a card, and the job used to answer each change (at most every 2 s) with a
full pass: every loop's facts read and assessed, 16-34 ms of CPU on a 200-loop line with 0-3,000
requests open and 20,000 older bin-empty rows, a quarter of `serve`'s busy samples at 5 signals/s
(py-spy, issue 19). A pass over one changed loop costs 0.16-0.24 ms (bench/runway_tick.py, same
run); `serve` at 5/s on that line spends 16-18 % less CPU a signal (docs/BENCHMARKS.md, runwayinc).

The full pass stays where only it can see what happened: on the timer (`[runway] check_seconds`;
runways shrink with the clock on loops nobody touches), at start-up, after a supplier warning (not
about one card) and after a change to a card the config does not map to a loop. Under a steady
stream of changes the timer never runs out (every change wakes the job), so a step also runs full
once `check_seconds` have passed since the last full pass began.

When most of the line changed since the last step, one full pass costs no more than a pass over
those loops and sees the rest too: a pass over N of 200 loops cost, against the full pass, 0.54-0.79
for N = 100, 0.84-1.18 for 150 and 1.09-1.61 for 200, with 6,000 to 0 requests open (the more open,
the dearer the full pass's read of them; bench/runway_tick.py, runwayhist). From three quarters of
the loops (`FULL_SHARE`) the step runs full: at most ~20 % dearer than the narrowed pass either way.

The changed loops are collected from the bus's threads and taken by the job's thread under a lock:
a change noted while a pass runs is kept for the next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from kanban_terminal.config import Loop
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.supplier_trouble import SupplierWarned

GAP_S = 5.0
"""Least time between two steps however many cards change (the runtime's `Periodic` gap): a change
on a quiet line is looked at at once, on a busy one with what came in the next `GAP_S`. Each step
over the changed loops pays a fixed cost cold (its reads find SQLite's page cache dropped by the
writer's commits: ~1.2-1.4 ms for one loop), so fewer steps do the same work for less. The runway
job's CPU a signal at 5 signals/s, 1,000 signals on the 20,000-card line, one run
(`bench/runway_job.py --gap 2 --gap 5 --gap 10`, load ~1.6): 239 / 163 / 109 us for a 2 / 5 / 10 s
gap with each step's signals in one or two loops; 249 / 198 / 158 us with each signal in another
loop (`--spread`). 5 s, not 10: a warning raised by a signal on a busy line comes at most `GAP_S`
later, against runways and margins of hours (a loop's lead time), and escalation's busy tick is 5 s
too (services/escalation_due.py `BUSY_GAP_S`)."""

FULL_SHARE = 0.75
"""A step over at least this share of the config's loops runs as a full pass (the module's figures)."""


class RunwayJob:
    """The runway job's step and what wakes it; `note` from any thread, `step` from the job's."""

    def __init__(
        self,
        monitor: RunwayMonitor,
        card_loops: Mapping[str, Loop],
        full_every_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """Args:
        monitor: raises and clears the warnings.
        card_loops: card id -> its loop (the terminal's map, kept current by a lost card's swap).
        full_every_s: the most time between two full passes (`[runway] check_seconds`).
        monotonic: the clock the full passes are timed by.
        """
        self.monitor = monitor
        self._card_loops = card_loops
        self._full_every_s = full_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._full = True  # the first step (start-up) knows every runway
        self._last_full: float | None = None
        self.passes = {"full": 0, "loops": 0}
        """How many passes of each kind ran (for tests and the bench)."""

    def note(self, event: object) -> bool:
        """Remember what `event` changed; True when the job should wake for it."""
        if isinstance(event, CardsChanged):
            loops = [self._card_loops.get(card) for card in event.card_ids]
            with self._lock:
                if any(lp is None for lp in loops):
                    self._full = True  # a card the config does not place: look at every loop
                else:
                    self._changed.update(lp.id for lp in loops if lp is not None)
            return True
        if isinstance(event, SupplierWarned):
            with self._lock:
                self._full = True
            return True
        return False

    def step(self) -> list[str]:
        """One pass: full when asked for, due or most loops changed, else over the loops changed
        since the last step."""
        with self._lock:
            changed, full = self._changed, self._full
            self._changed, self._full = set(), False
        began = self._monotonic()
        due = self._last_full is None or began - self._last_full >= self._full_every_s
        most = len(changed) >= FULL_SHARE * len(self.monitor.terminal.config.loops)
        try:
            if full or due or (changed and most):
                done = self.monitor.tick()
                self._last_full = began
                self.passes["full"] += 1
                return done
            if not changed:
                # A wake whose changes the previous step already took. (The timer running out is
                # always due: it waits `full_every_s` after the last step ended.)
                return []
            done = self.monitor.tick_loops(changed)
            self.passes["loops"] += 1
            return done
        except BaseException:
            with self._lock:  # what was taken is not lost: the next step looks at every loop
                self._full = True
            raise
