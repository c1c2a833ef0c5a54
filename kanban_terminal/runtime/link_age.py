"""How long the upstream link has been in its state, on the monotonic clock (branch `onemono`).

The link (adapters/mqtt_client.py) stamps each state change with the wall clock, and the status
bar showed "Upstream: offline N min" as now minus that stamp: an NTP step of +1 h while the link was
down two minutes read "1 h" (a step back: "0 s" for as long as the step). `LinkAge` notes the
monotonic reading when it first sees a state (the status bar asks every second, so within a second
of the change) and from then on counts elapsed time. It hands back a `since` re-based on the present
wall clock (now minus the elapsed time), so a reader of `LinkStatus.since` (the status bar, the one
today; the health message carries only the state) gets the elapsed age and no shape changes.

A second `LinkAge` re-bases `LinkStatus.oldest_at`, the raise of the oldest queued request, for the
bar's "Queued N (oldest X)" (branch `callclock`). Its first sighting is not within a second of the
raise: it counts the wall age at that sighting (a start with a backlog, or when the oldest before it
was answered) and elapsed time from there, so a step while the same request stays the oldest bends
nothing, and one before its first sighting is what the wall clock says. The request's own anchor
(`request:<id>`, services/escalation.py) would be exact across restarts, but only loops with
material andons keep one, and only until the request's material call is raised, which is when a
queued request is oldest: an age from it would cover least where the bar matters most.

The health message's `oldest_age_s` reads the same `LinkAge` (branch `healthclock`), so the bar and
a plant view subscribed to health agree. Its oldest is the oldest request the broker has not
acknowledged, the bar's the oldest upstream has not answered: once the broker acknowledges the
bar's oldest they are two requests, asked about in turn, so this one keeps the last few it was
asked about (`keep`) instead of one, or each would reset the other's count every minute. In
`serve` (no bar) the first sighting is the health read's, once a minute and at each reconnect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta


class LinkAge:
    """Re-bases a link state's wall-clock `since` on elapsed time. Safe from any thread: a lock
    holds each look-up and its update together (the screen's bar and the health thread ask the same
    one; replacing the tuple whole without it let one thread's new record overwrite the other's,
    which was then seen again at its wall age)."""

    def __init__(
        self, clock: Callable[[], datetime], monotonic: Callable[[], float], *, keep: int = 1
    ) -> None:
        """`keep`: how many (state, stamp) pairs are remembered, newest first sighting kept."""
        self._clock = clock
        self._monotonic = monotonic
        self._keep = keep
        self._lock = threading.Lock()
        self._seen: tuple[tuple[str, datetime, float, float], ...] = ()
        """(state, since as stamped, elapsed seconds when first seen, monotonic reading then), the
        most recently asked first."""

    def since(self, state: str, stamped: datetime) -> datetime:
        """When the state began, as the present wall clock counts back its elapsed time."""
        now, elapsed = self._elapsed(state, stamped)
        return now - timedelta(seconds=elapsed)

    def age_s(self, state: str, stamped: datetime) -> float:
        """The elapsed seconds since the state began: `since`'s figure as a number (the health
        message's `oldest_age_s`)."""
        return self._elapsed(state, stamped)[1]

    def _elapsed(self, state: str, stamped: datetime) -> tuple[datetime, float]:
        with self._lock:
            return self._elapsed_locked(state, stamped)

    def _elapsed_locked(self, state: str, stamped: datetime) -> tuple[datetime, float]:
        now, mono = self._clock(), self._monotonic()
        seen = self._seen
        mine = next((s for s in seen if s[:2] == (state, stamped)), None)
        if mine is None:
            # First seen within a second of the change: the wall difference is still good here.
            mine = (state, stamped, max(0.0, (now - stamped).total_seconds()), mono)
        if not seen or seen[0] is not mine:
            self._seen = (mine, *(s for s in seen if s is not mine))[: self._keep]
        return now, mine[2] + max(0.0, mono - mine[3])
