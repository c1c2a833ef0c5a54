"""The escalation runner: a tick, driven by a timer, that fires due tiers and raises material andons.

Exactly once per (event, tier): a tier is written to `andon_escalation` (primary key andon_id + tier)
with its card-log row in one unit of work, and published only after that commit. Rows are read and
written through storage/andon_rows.py and andon_reads.py: no SQL here. A restart re-derives
what is due from the stored raise time and the stored tiers, so it escalates on time and never twice.

Elapsed time is measured on the monotonic clock from a stored anchor (services/clock_watch.py,
table `elapsed_anchor`): the wall-clock elapsed when this terminal first saw the event, at a
monotonic reading of this boot. A wall-clock step while running (NTP, a manual change, ±1 h, a DST
mistake) neither fires a tier early nor delays one, and neither does a step while `serve` was down:
the monotonic clock is one clock for every process of a boot. Only across a reboot does the wall
clock count, from the elapsed time last stored (reliability.md R12). Each tick first checks the
clocks against each other and logs a step (`clock_stepped`) before it fires anything.

Material andon: a replenishment request whose elapsed time (anchored like the tiers, key
`request:<id>`) reached its planned lead time with no delivery raises a CALL with
reason MAT linked to the card, once per request (a unique index on andon.request_id), if the loop
has `material_andon` on and a MAT reason is configured. When that request closes (delivered, or
cancelled with its suspended card) the call is resolved by the system with a note; if nobody had
acknowledged it, it stays "resolved, unacknowledged" until someone does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from kanban_terminal.domain.andon import tier_role, tiers_due
from kanban_terminal.services import quality_stop
from kanban_terminal.services.andon import (
    AndonChanged,
    material_call_allowed,
    raise_request_call,
    resolve_by_system,
)
from kanban_terminal.services.andon_log import log_andon
from kanban_terminal.services.andon_views import reason_rule, view_of
from kanban_terminal.services.clock_watch import ClockWatch, ElapsedTimers, read_boot_id
from kanban_terminal.services.escalation_due import EscalationDue
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads
from kanban_terminal.storage.tables import CardLogRow

log = logging.getLogger(__name__)


class EscalationRunner:
    """Call `tick_when_due()` about once a second (the runtime's timer); `tick()` always reads."""

    def __init__(self, terminal: Terminal, *, boot_id: Callable[[], str] = read_boot_id) -> None:
        """The monotonic clock is the terminal's (`Terminal.monotonic`): the one every door reads."""
        self.terminal = terminal
        self._monotonic = terminal.monotonic
        # An andon's timer runs from its raise until it ends (resolve or cancel), acknowledged or not:
        # its anchor is what the resolve records a stop's downtime from (services/andon_elapsed.py).
        # `andon-kept:` is where the version before kept it past the acknowledge; taken over here.
        self.timers = ElapsedTimers(terminal, "andon:", boot_id=boot_id, formerly="andon-kept:")
        self.request_timers = ElapsedTimers(terminal, "request:", boot_id=boot_id)
        self.clock_watch = ClockWatch(terminal)
        self._lock = threading.Lock()
        self.due = EscalationDue(Path(f"{terminal.db.path}-wal"))
        """When the next read is worth doing (services/escalation_due.py)."""
        self.reads = 0
        """Full reads done (tests, benchmarks)."""
        self._unsubscribe = terminal.bus.subscribe(self.due.on_event)

    def close(self) -> None:
        """Stop listening to the bus (the runtime's stop)."""
        self._unsubscribe()

    def tick(self) -> list[AndonChanged]:
        """Fire every due tier once and raise material andons; returns the escalations fired."""
        return self._tick(always=True)

    def tick_when_due(self) -> list[AndonChanged]:
        """`tick`, but the tables are read only when something can be due (escalation_due.py says
        what); the wall clock is checked against the monotonic one on every call all the same."""
        return self._tick(always=False)

    def _tick(self, *, always: bool) -> list[AndonChanged]:
        with self._lock:  # two timers must not race each other into the same tier
            step = self.clock_watch.check()  # a step is in the log before anything fires on the new clock
            if step is not None:
                self.due.wake()
                if step < 0:
                    self.lift_shelves(step)
            mono = self._monotonic()
            if not always and not self.due.should_read(mono):
                return []
            self.due.reading(mono)
            self.reads += 1
            self.raise_material_andons()
            if not self.timers.running and not andon_reads.attention_marks(self.terminal.db):
                # No andon open, whichever process raised it: nothing can escalate or be resolved as
                # supplied, and no timer is left to tidy. One small indexed read instead of the two
                # ORM reads (2.0 ms after 1 s idle, ~100 us a signal at 5 signals/s: branch idlerelay).
                return []
            self.resolve_supplied_material_andons()
            return self._escalate()

    def _escalate(self) -> list[AndonChanged]:
        terminal = self.terminal
        andons, fired, running = andon_reads.escalation_candidates(terminal.db)
        # The clock after the read: read before, an andon raised in between got a tier-0 row dated
        # before its own raise row (seen in test_clock_steps on the busy box, no clock step involved).
        now = terminal.clock()
        mono = self._monotonic()
        # Candidates (unacknowledged, maybe resolved) and every andon still active (acknowledged too).
        timed = dict(running) | {a.id: a.raised_at for a in andons}
        elapsed_of = self.timers.elapsed(timed.items(), now)
        changes: list[AndonChanged] = []
        for andon in andons:
            rule = reason_rule(terminal, andon.reason)
            if rule is None:
                continue
            elapsed = elapsed_of[andon.id]
            tiers = quality_stop.escalation_tiers(terminal.config, andon, rule.tiers)
            done = fired.get(andon.id, ())
            for i, delay in enumerate(tiers):
                if i not in done and delay > elapsed:
                    self.due.due_in(mono, (delay - elapsed).total_seconds())
            for tier in tiers_due(elapsed, False, tiers, done):
                change = self._fire(andon.id, tier, now, elapsed)
                if change is not None:
                    changes.append(change)
        return changes

    def _fire(self, andon_id: str, tier: int, now: datetime, elapsed: timedelta) -> AndonChanged | None:
        """Write and announce one tier; `elapsed` (the andon's time since the raise on its anchor, which
        the runner's timers always keep) goes in the row's `elapsed_s` and the message's, as the
        acknowledge's and the end's do: a tier fired 6 min after the raise says 6 min whatever the
        wall clock did in between (its `occurred_at` after a +1 h step says 1 h 06 min)."""
        terminal = self.terminal
        role = tier_role(tier)
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            andon = uow.andons.fire_tier(andon_id, tier, role, now)
            if andon is None:
                return None
            log_andon(
                uow, andon, "andon_escalated", actor=None, source="system", now=now, at=now,
                from_state=andon.state.value, detail=f"tier {tier}: {role} called", elapsed=elapsed,
            )  # fmt: skip
            fired = uow.andons.fired_tiers([andon_id]).get(andon_id, ())
            view = replace(view_of(terminal, andon, fired), step_elapsed=max(elapsed, timedelta(0)))
            change = AndonChanged("escalated", view, None, now, tier=tier, role=role)
            uow.collect(change)
        return change

    def raise_material_andons(self) -> list[str]:
        """Raise a MAT call for each overdue, undelivered request not yet called; returns andon ids."""
        terminal = self.terminal
        if not material_call_allowed(terminal):
            return []
        now = terminal.clock()
        watched = {lp.id for lp in terminal.config.loops if lp.material_andon}
        open_ = [r for r in andon_reads.uncalled_request_times(terminal.db) if r.loop_id in watched]
        # Overdue on elapsed time, like the tiers: a wall-clock step must not make a request late.
        elapsed = self.request_timers.elapsed(((r.id, r.raised_at) for r in open_), now)
        late = [r.id for r in open_ if elapsed[r.id] >= r.due_at - r.raised_at]
        mono = self._monotonic()
        for r in open_:
            if r.id not in late:
                self.due.due_in(mono, (r.due_at - r.raised_at - elapsed[r.id]).total_seconds())
        raised: list[str] = []
        for request in andon_reads.requests(terminal.db, late):
            andon = raise_request_call(
                terminal, request_id=request.id, card_id=request.card_id, station=request.station,
                source="system", now=now,
            )  # fmt: skip
            if andon is not None:
                raised.append(andon.id)
        return raised

    def resolve_supplied_material_andons(self) -> list[str]:
        """Resolve active material calls whose request has closed; returns andon ids."""
        terminal = self.terminal
        now = terminal.clock()
        candidates = andon_reads.supplied_material_andons(terminal.db)
        resolved: list[str] = []
        for andon_id in candidates:
            with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
                before = uow.andons.get(andon_id)
                request = uow.andons.request(before.request_id) if before and before.request_id else None
                if before is None or before.resolved_at is not None:
                    continue
                if request is None or request.closed_at is None:
                    continue
                note = f"request {request.status} at {request.closed_at:%H:%M} UTC"
                at = request.closed_at
                if resolve_by_system(terminal, uow, before, note, at=at, now=now, source="system") is None:
                    continue
            resolved.append(andon_id)
        return resolved

    def lift_shelves(self, step_s: float) -> list[str]:
        """After the wall clock stepped back, lift every shelve in force: its `until` is a wall time
        and would now silence the button for longer than was granted. Fails safe: the button works
        again; a team lead may shelve it anew. Returns the sources lifted."""
        now = self.terminal.clock()
        with self.terminal.db.unit_of_work() as uow:
            lifted = uow.andons.lift_shelves(now)
            for source_id in lifted:
                detail = (
                    f"source {source_id}: shelve lifted, the wall clock stepped back {-step_s:.0f} s "
                    "(a shelve must not outlast what was granted)"
                )
                uow.andons.log(CardLogRow(occurred_at=now, recorded_at=now, event="andon_shelve_lifted",
                                          source="system", detail=detail))  # fmt: skip
        return lifted

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until `stop` is set (headless use); a failing tick is logged and retried next time."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("escalation tick failed")
            stop.wait(interval)
