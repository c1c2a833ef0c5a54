"""The wall clock is watched against the monotonic clock; a step is written into the card log.

`ClockWatch.check()` runs at the start of every escalation tick (once a second, in the runtime): if
the wall clock moved more or less than the monotonic clock since the last check, it appends a
`clock_stepped` row saying by how much. So a reader of the log sees why `occurred_at` jumps, and a
row that runs backwards in time is never unexplained: the step row comes at most one tick (1 s)
after the first row written on the stepped clock. At start it compares the wall clock with the last
row of the log: a clock now behind it was set back while the terminal was down (a step forward while
down cannot be told from downtime, and needs no mark: time still runs forward in the log).

`ElapsedTimers` gives each running timer (an andon from its raise to its end, an open request's
lead time for the material andon) its elapsed time from a stored
anchor (domain/clocks.py, table `elapsed_anchor`), so neither a wall step nor a restart moves a tier.

Nothing here decides what is due (domain/andon.py does) or knows a screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from kanban_terminal.domain.clocks import (
    STEP_THRESHOLD_S,
    ClockReading,
    ElapsedAnchor,
    describe_step,
    elapsed_from,
    first_anchor,
    re_anchor,
    wall_step,
)
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log, elapsed_anchors
from kanban_terminal.storage.log_reads import last_recorded_at

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
CLOCK_STEPPED = "clock_stepped"
SAVE_EVERY_S = 60.0
"""How often a running timer's anchor is refreshed. Only a reboot needs it (on the same boot the
monotonic reading stored first is exact); a reboot then loses at most this much of a timer's count
if the wall clock was also wrong. One small UPDATE a minute per open andon."""


def read_boot_id() -> str:
    """The kernel's id of this boot (Linux); one fixed value elsewhere, where a reboot then falls
    back on... nothing: the monotonic origin would be trusted, so other systems say "unknown"."""
    try:
        return BOOT_ID.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


class ClockWatch:
    """Notices wall-clock steps by comparing both clocks; writes one `clock_stepped` row per step."""

    def __init__(self, terminal: Terminal, *, threshold_s: float = STEP_THRESHOLD_S) -> None:
        self.terminal = terminal
        self._monotonic = terminal.monotonic
        self._threshold_s = threshold_s
        self._last: ClockReading | None = None
        self.steps: list[float] = []
        """Steps seen by this process, in seconds (+ forward, - back)."""

    def check(self) -> float | None:
        """Compare the clocks with the last check; log a step. Returns the step in seconds or None."""
        now = ClockReading(self.terminal.clock(), self._monotonic())
        before, self._last = self._last, now
        if before is None:
            return self._check_against_log(now)
        step = wall_step(before, now, self._threshold_s)
        if step is not None:
            self._record(step, describe_step(step, before, now), now.wall)
        return step

    def _check_against_log(self, now: ClockReading) -> float | None:
        last = last_recorded_at(self.terminal.db)
        if last is None or (last - now.wall).total_seconds() < self._threshold_s:
            return None
        step = -(last - now.wall).total_seconds()
        detail = (
            f"wall clock is {-step:.1f} s behind the last record ({last:%Y-%m-%d %H:%M:%S} UTC): "
            "set back while the terminal was down"
        )
        self._record(step, detail, now.wall)
        return step

    def _record(self, step: float, detail: str, at: datetime) -> None:
        self.steps.append(step)
        log.warning("%s", detail)
        with self.terminal.db.unit_of_work() as uow:
            uow.log.append(
                card_log.LogEntry(occurred_at=at, recorded_at=at, event=CLOCK_STEPPED, source="system",
                                  detail=detail)
            )  # fmt: skip


class ElapsedTimers:
    """Elapsed time per running timer, from stored anchors: exact on one boot, also across restarts."""

    def __init__(
        self,
        terminal: Terminal,
        prefix: str,
        *,
        boot_id: Callable[[], str] = read_boot_id,
        formerly: str | None = None,
    ) -> None:
        """`formerly`: a prefix an older version stored the same timers under; a timer found only
        there is taken over (moved to `prefix` in the same transaction), so it keeps its count."""
        self.terminal = terminal
        self.prefix = prefix
        self.formerly = formerly
        self._monotonic = terminal.monotonic
        self._boot = boot_id()
        self._anchors: dict[str, ElapsedAnchor] = {}
        self._tidied = False

    @property
    def running(self) -> bool:
        """Timers this process counts, or anchors not yet tidied (before the first `elapsed`)."""
        return bool(self._anchors) or not self._tidied

    def elapsed(self, started: Iterable[tuple[str, datetime]], now: datetime) -> dict[str, timedelta]:
        """Elapsed time of each (id, start) timer; forgets and deletes anchors of timers not listed.

        A timer seen for the first time by this process takes its stored anchor (a restart), or else
        a new one from the wall time since its start (raised moments ago, maybe by the CLI).
        """
        mono = self._monotonic()
        timers = {f"{self.prefix}{tid}": (tid, at) for tid, at in started}
        unknown = [k for k in timers if k not in self._anchors]
        stored = elapsed_anchors.load(self.terminal.db, unknown + self._former(unknown))
        changed: list[ElapsedAnchor] = []
        taken_over: list[str] = []
        for key in unknown:
            anchor = stored.get(key)
            former = next(iter(self._former([key])), None)
            if anchor is None and former in stored:  # an older version's copy (andon_elapsed.py)
                anchor = replace(stored[former], key=key)
                taken_over.append(former)
            anchor = anchor or first_anchor(key, timers[key][1], self._boot, mono, now)
            if key not in stored or anchor.boot_id != self._boot:
                anchor = re_anchor(anchor, self._boot, mono, now)  # after a reboot: start counting here
                changed.append(anchor)
            self._anchors[key] = anchor
        removed = [key for key in self._anchors if key not in timers]
        for key in removed:
            del self._anchors[key]
        for key, anchor in self._anchors.items():
            if mono - anchor.mono_s >= SAVE_EVERY_S:
                self._anchors[key] = re_anchor(anchor, self._boot, mono, now)
                changed.append(self._anchors[key])
        # The first call also deletes anchors of timers that ended while this process was down.
        tidy, self._tidied = bool(removed) or not self._tidied, True
        if changed or tidy:  # a timer taken over is among the changed
            # Not fsynced: a new open request adds one anchor per scan, and an fsync each would double
            # the scan's disk writes. An anchor lost to a power cut is made again from the wall clock
            # at the next start (what every timer did before anchors); the next fsynced commit of the
            # terminal flushes it in order (WAL), so only the last moments can be lost.
            with self.terminal.db.unit_of_work(fsync=False) as uow:
                elapsed_anchors.save(uow.session, changed)
                elapsed_anchors.drop(uow.session, taken_over)
                if tidy:
                    elapsed_anchors.drop_except(uow.session, self.prefix, timers)
                    if self.formerly is not None:
                        elapsed_anchors.drop_except(uow.session, self.formerly, self._former(timers))
        return {tid: elapsed_from(self._anchors[k], self._boot, mono, now) for k, (tid, _) in timers.items()}

    def _former(self, keys: Iterable[str]) -> list[str]:
        """The keys an older version stored `keys`' timers under (none without `formerly`)."""
        if self.formerly is None:
            return []
        return [f"{self.formerly}{key.removeprefix(self.prefix)}" for key in keys]
