"""The escalation runner: a tick, driven by a timer, that fires due tiers and raises material andons.

Exactly once per (event, tier): a tier is written to `andon_escalation` (primary key andon_id + tier)
with its card-log row in one unit of work, and published only after that commit. Rows are read and
written through storage/andon_rows.py and andon_reads.py: no SQL here. A restart re-derives
what is due from the stored raise time and the stored tiers, so it escalates on time and never twice.

Elapsed time is measured on the monotonic clock from the moment this process first saw an event,
added to the wall-clock elapsed at that moment: a wall-clock step while running (NTP, a manual
change, ±1 h) neither fires a tier early nor delays one. Only across a restart does the wall clock
decide, because nothing else survives it (reliability.md R12).

Material andon: a replenishment request past its due time with no delivery raises a CALL with
reason MAT linked to the card, once per request (a unique index on andon.request_id), if the loop
has `material_andon` on and a MAT reason is configured. When that request closes (delivered, or
cancelled with its suspended card) the call is resolved by the system with a note; if nobody had
acknowledged it, it stays "resolved, unacknowledged" until someone does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import AndonKind, tier_role, tiers_due
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services import quality_stop
from kanban_terminal.services.andon import AndonChanged, LineStateChanged, raise_in
from kanban_terminal.services.andon_log import log_andon
from kanban_terminal.services.andon_views import line_state, reason_rule, view_of
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads
from kanban_terminal.storage.andon_rows import DuplicateAndon

log = logging.getLogger(__name__)

MATERIAL_REASON = "MAT"


class EscalationRunner:
    """Call `tick()` about once a second (the TUI's timer, or `run` in a headless thread)."""

    def __init__(self, terminal: Terminal, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.terminal = terminal
        self._monotonic = monotonic
        self._anchors: dict[str, tuple[float, timedelta]] = {}
        self._lock = threading.Lock()

    def elapsed(self, andon_id: str, raised_at: datetime, now: datetime) -> timedelta:
        """Time since the raise, immune to wall-clock steps while this process runs."""
        mono = self._monotonic()
        anchor = self._anchors.get(andon_id)
        if anchor is None:
            anchor = (mono, max(timedelta(0), now - raised_at))
            self._anchors[andon_id] = anchor
        return anchor[1] + timedelta(seconds=max(0.0, mono - anchor[0]))

    def tick(self) -> list[AndonChanged]:
        """Fire every due tier once and raise material andons; returns the escalations fired."""
        with self._lock:  # two timers must not race each other into the same tier
            self.raise_material_andons()
            self.resolve_supplied_material_andons()
            return self._escalate()

    def _escalate(self) -> list[AndonChanged]:
        terminal = self.terminal
        now = terminal.clock()
        andons, fired = andon_reads.escalation_candidates(terminal.db)
        live = {a.id for a in andons}
        for gone in set(self._anchors) - live:
            del self._anchors[gone]
        changes: list[AndonChanged] = []
        for andon in andons:
            rule = reason_rule(terminal, andon.reason)
            if rule is None:
                continue
            elapsed = self.elapsed(andon.id, andon.raised_at, now)
            tiers = quality_stop.escalation_tiers(terminal.config, andon, rule.tiers)
            for tier in tiers_due(elapsed, False, tiers, fired.get(andon.id, ())):
                change = self._fire(andon.id, tier, now)
                if change is not None:
                    changes.append(change)
        return changes

    def _fire(self, andon_id: str, tier: int, now: datetime) -> AndonChanged | None:
        terminal = self.terminal
        role = tier_role(tier)
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            andon = uow.andons.fire_tier(andon_id, tier, role, now)
            if andon is None:
                return None
            log_andon(
                uow, andon, "andon_escalated", actor=None, source="system", now=now, at=now,
                from_state=andon.state.value, detail=f"tier {tier}: {role} called",
            )  # fmt: skip
            fired = uow.andons.fired_tiers([andon_id]).get(andon_id, ())
            change = AndonChanged(
                "escalated", view_of(terminal, andon, fired), None, now, tier=tier, role=role
            )
            uow.collect(change)
        return change

    def raise_material_andons(self) -> list[str]:
        """Raise a MAT call for each overdue, undelivered request not yet called; returns andon ids."""
        terminal = self.terminal
        rule = reason_rule(terminal, MATERIAL_REASON)
        if rule is None or AndonKind.CALL.value not in rule.kinds:
            return []  # not configured as a call: refusing it every tick would only flood the log
        now = terminal.clock()
        overdue = andon_reads.overdue_uncalled_requests(terminal.db, now)
        raised: list[str] = []
        for request in overdue:
            loop = next((lp for lp in terminal.config.loops if lp.id == request.loop_id), None)
            if loop is None or not loop.material_andon:
                continue
            try:
                with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
                    current = uow.andons.request(request.id)
                    if current is None or current.closed_at is not None:
                        continue
                    result = raise_in(
                        terminal, uow, kind=AndonKind.CALL, station=request.station,
                        reason=MATERIAL_REASON, source="system", actor=None, authorised=False,
                        now=now, at=now, card_id=request.card_id, request_id=request.id,
                    )  # fmt: skip
                    if isinstance(result, Rejection):
                        # e.g. a MAT call already active at that station: logged as refused.
                        continue
                    uow.collect(AndonChanged("raised", view_of(terminal, result), None, now))
                    uow.collect(LineStateChanged(line_state(terminal, uow, now)))
            except DuplicateAndon:
                continue  # another process raised it first: the unique index kept it to one
            raised.append(result.id)
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
                result = rules.resolve(before, None, note, request.closed_at, authorised=True)
                if isinstance(result, Rejection):
                    continue
                uow.andons.store(result)
                log_andon(
                    uow, result, "andon_resolved", actor=None, source="system", now=now,
                    at=result.resolved_at or now, from_state=before.state.value, detail=f"note: {note}",
                )  # fmt: skip
                uow.collect(AndonChanged("resolved", view_of(terminal, result), None, now))
                uow.collect(LineStateChanged(line_state(terminal, uow, now)))
            resolved.append(andon_id)
        return resolved

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until `stop` is set (headless use); a failing tick is logged and retried next time."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("escalation tick failed")
            stop.wait(interval)
