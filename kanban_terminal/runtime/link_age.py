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
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta


class LinkAge:
    """Re-bases a link state's wall-clock `since` on elapsed time. Safe from any thread: its one
    record is replaced whole."""

    def __init__(self, clock: Callable[[], datetime], monotonic: Callable[[], float]) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._seen: tuple[str, datetime, float, float] | None = None
        """(state, since as stamped, elapsed seconds when first seen, monotonic reading then)."""

    def since(self, state: str, stamped: datetime) -> datetime:
        """When the state began, as the present wall clock counts back its elapsed time."""
        now, mono = self._clock(), self._monotonic()
        seen = self._seen
        if seen is None or seen[:2] != (state, stamped):
            # First seen within a second of the change: the wall difference is still good here.
            seen = (state, stamped, max(0.0, (now - stamped).total_seconds()), mono)
            self._seen = seen
        return now - timedelta(seconds=seen[2] + max(0.0, mono - seen[3]))
