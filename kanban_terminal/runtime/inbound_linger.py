"""Group-commit linger for the signals applied on paho's thread (issue 19; PostgreSQL's commit_delay,
Kafka's linger.ms).

At 500 signals/s a signal comes every 2 ms and a one-signal group commits in ~1 ms, so each group
held one signal and paid the whole fixed cost of a group alone: the commit and its fsync, the relay's
hand-off and publish, a PUBACK write, paho's wake-ups (docs/BENCHMARKS.md: 1,193 us of CPU a signal
against 276 in a burst, where groups are large). While signals come fast, a group that is ready
waits up to `LINGER_S` for the next ones and is then committed with them.

paho's thread is never put to sleep for it: the wait is the select() of paho's next pass, its
timeout shortened to the linger's deadline (adapters/mqtt_wakeups.py `end_passes_by`), so the link
keeps reading, pinging and sending throughout. A signal read meanwhile joins the group; the group is
applied at the first pass that ends past the deadline, or as soon as it holds `group_max` messages.
Its messages are still acknowledged only after its commit: a crash or a lost link while it waits
loses nothing (the broker redelivers what it holds unacknowledged, the dedupe keys drop repeats).

A quiet line never waits: the wait starts only while the mean of the last `FAST_GAPS` gaps between
arrivals is under `FAST_GAP_S`, so at 5 or 50 signals/s (gaps of 200 and 20 ms) a signal is applied
at the first drain as before. Its time comes in as arguments (no clock read here).
"""

from __future__ import annotations

from collections import deque

LINGER_S = 0.003
"""The longest a ready group waits for more (measured, docs/BENCHMARKS.md "linger")."""
FAST_GAP_S = 0.005
"""A group waits only while signals come closer than this on average (above 200 signals/s)."""
FAST_GAPS = 4
"""Gaps averaged: one close pair on a 50/s line (14% of gaps under 3 ms if arrivals are random)
must not make the next group wait; four in a row under 5 ms at 50/s is ~1e-5."""


class Linger:
    """When a group that is ready should wait for more (paho's thread only)."""

    def __init__(self, linger_s: float = LINGER_S, fast_gap_s: float = FAST_GAP_S, gaps: int = FAST_GAPS):
        self.linger_s = linger_s
        self.fast_gap_s = fast_gap_s
        self._gaps: deque[float] = deque(maxlen=gaps)
        self._last: float | None = None
        self.deadline: float | None = None
        """When the waiting group is applied at the latest (None: no group waits)."""
        self.waits = 0
        """Groups that waited (the tests read it: a lone signal on a quiet line never does)."""
        self.applied_at_once = 0
        """Groups applied at their first drain, without waiting."""

    def arrived(self, now: float) -> None:
        """A message was read at `now` (monotonic seconds)."""
        if self._last is not None:
            self._gaps.append(now - self._last)
        self._last = now

    @property
    def fast(self) -> bool:
        """The last gaps between arrivals were short on average (a wait is likely to catch more)."""
        gaps = self._gaps
        return len(gaps) == gaps.maxlen and sum(gaps) < self.fast_gap_s * len(gaps)

    def hold(self, now: float, pending: int, size_bound: int, *, can_wait: bool = True) -> bool:
        """Whether the `pending` messages, ready to apply at `now`, wait (for a later pass) instead.

        `can_wait` False (the link is down, or the group goes to the worker thread anyway) ends a
        wait at once: nothing is held back for a link that cannot deliver more."""
        if self.deadline is not None:
            if now < self.deadline and pending < size_bound and can_wait:
                return True
            self.deadline = None
            return False
        if self.linger_s <= 0 or pending >= size_bound or not can_wait or not self.fast:
            self.applied_at_once += 1
            return False
        self.deadline = now + self.linger_s
        self.waits += 1
        return True
