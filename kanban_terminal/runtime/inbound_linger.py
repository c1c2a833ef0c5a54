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

A group waits only while the next signal is expected before its deadline: while the mean of the
last `FAST_GAPS` gaps between arrivals is under `LINGER_S` when it is ready, and, once it waits,
until the next signal (one mean gap after the last) is expected after the deadline.
At 500 signals/s (2 ms gaps) a group of 2 is applied when its second signal is read, not 3 ms after
the first; at 5 or 50 signals/s (gaps of 200 and 20 ms) a signal is applied at the first drain as
before. Its time comes in as arguments (no clock read here).
"""

from __future__ import annotations

from collections import deque

LINGER_S = 0.003
"""The longest a ready group waits for more (measured, docs/BENCHMARKS.md "linger"); signals
that come more than this apart on average never wait (below ~330 signals/s)."""
FAST_GAPS = 4
"""Gaps averaged: one close pair on a 50/s line (14% of gaps under 3 ms if arrivals are random)
must not make the next group wait; four gaps that sum under 12 ms at 50/s is ~1e-4."""


class Linger:
    """When a group that is ready should wait for more (paho's thread only)."""

    def __init__(self, linger_s: float = LINGER_S, gaps: int = FAST_GAPS):
        self.linger_s = linger_s
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
    def next_in(self) -> float | None:
        """When the next signal is expected, seconds after the last one: the mean of the last gaps
        (None until `FAST_GAPS` of them are known)."""
        gaps = self._gaps
        return sum(gaps) / len(gaps) if len(gaps) == gaps.maxlen else None

    def hold(self, now: float, pending: int, size_bound: int, *, can_wait: bool = True) -> bool:
        """Whether the `pending` messages, ready to apply at `now`, wait (for a later pass) instead.

        `can_wait` False (the link is down, or the group goes to the worker thread anyway) ends a
        wait at once: nothing is held back for a link that cannot deliver more."""
        next_in = self.next_in
        expected = None if next_in is None or self._last is None else self._last + next_in
        if self.deadline is not None:
            # Wait on only while the next signal can still come in time: no pass waits for nothing.
            in_time = expected is not None and expected < self.deadline
            if now < self.deadline and in_time and pending < size_bound and can_wait:
                return True
            self.deadline = None
            return False
        late = expected is None or expected >= now + self.linger_s or self.linger_s <= 0
        if pending >= size_bound or not can_wait or late:
            self.applied_at_once += 1
            return False
        self.deadline = now + self.linger_s
        self.waits += 1
        return True
