"""Runway per loop and the material warning before run-out (issue 18); the reserve-draw warning.

`read_runways` computes every loop's runway (domain/runway.py) from one snapshot: the loop's cards
in use, its bin-empty rows over the window, its open requests' ETAs or due times. Red cards
(`[[reserves]]`) count neither as stock nor as consumption: the reserve is what the line falls back
on, not what the runway plans with.

`RunwayMonitor.tick` recomputes every loop's runway and acts on what it finds; `tick_loops` does the
same for some loops only. The runtime runs a full `tick` every `[runway] check_seconds` (it is what
finds a runway shrinking with the clock on a loop nobody touched), at start-up and after a supplier
warning, and `tick_loops` at once after cards change, for their loops only (runtime/runway_job.py):
on a 200-loop line with 20,000 older bin-empty rows, a full pass cost 7-25 ms of CPU with 0-3,000
requests open (16-34 ms before its read of the window was fixed), a pass over one loop 0.16-0.24 ms
(bench/runway_tick.py, same run), and cards change with every signal (issue 19). What it does:

- a loop whose runway dropped below its margin opens a warning episode (`runway_warning`, one open
  row per loop by a unique index) and, in the same transaction, raises a material CALL (reason MAT)
  at the loop's station, linked to the card to chase (the loop's oldest open request): the call
  escalates like any other. Exactly once per episode: a tick, a second process, a restart find the
  episode open and raise nothing.
- an episode whose runway is back above margin x (1 + deadband) closes, and its call, if still
  active, is resolved by the system with the runway in the note.
- a red card with an open request and no call yet (the reserve was drawn) raises a material CALL
  linked to that request; the escalation runner resolves it when the request is delivered, as it
  does for overdue calls (services/escalation.py). A pass over some loops sees their red cards.

The runway job and the screen's reads keep each loop's bin-empty times over the window between
reads (`read_facts`, domain/runway_window.py) and read only the log rows written since the last:
at a line's sized rate the window holds ~144,000 bin-empty rows (8 h at 5 signals/s), and reading
them again made each full pass ~220 ms of CPU (bench/runway_job.py --steady 144000: the job
1,666 -> 195 us a signal).

A pass over some loops leaves the others alone: a loop whose runway recovered or shrank with the
clock only is cleared or warned by the next full pass, at most `check_seconds` later, as it was
before passes were split. Exactly-once does not depend on which pass runs: the unique index on
open episodes is the guard.

It must not read a clock other than `terminal.clock` and holds no thread: the runtime does.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from kanban_terminal.config import Loop
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.runway import (
    LoopSupply,
    Runway,
    WarningStep,
    assess,
    describe,
    planned_rate_per_h,
    warning_step,
)
from kanban_terminal.domain.runway_window import EmptiesWindow
from kanban_terminal.services.andon import (
    MATERIAL_REASON,
    AndonChanged,
    LineStateChanged,
    material_call_allowed,
    raise_in,
    raise_request_call,
    resolve_by_system,
)
from kanban_terminal.services.andon_views import line_state, view_of
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import runway_rows
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.runway_rows import RunwayFacts, WarningAlreadyOpen
from kanban_terminal.storage.tables import CardLogRow, RunwayWarningRow
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SOURCE = "runway"


@dataclass(frozen=True)
class LoopRunway:
    """One loop's runway for the board and `kanban-terminal runway`."""

    loop: Loop
    runway: Runway
    warning_open: bool
    """A warning episode is open for the loop (raised, not yet recovered)."""
    reserve_full: int
    """Red cards of the loop whose reserve bin is on hand."""
    reserve_cards: int

    @property
    def sort_key(self) -> tuple[int, float, str]:
        """At risk first, then shortest runway; loops with no use in sight last."""
        hours = self.runway.hours
        return (0 if self.runway.at_risk else 1, hours if hours is not None else float("inf"), self.loop.id)


def supply_of(loop: Loop, facts: RunwayFacts) -> LoopSupply:
    """The runway's input for one loop, from the snapshot (red cards already left out)."""
    return LoopSupply(
        loop_id=loop.id,
        container_quantity=loop.container_quantity,
        bins_on_hand=facts.in_use.get(loop.id, 0),
        empties=tuple(facts.empties.get(loop.id, ())),
        arrivals=tuple(facts.arrivals.get(loop.id, ())),
        planned_rate_per_h=planned_rate_per_h(
            loop.card_count,
            loop.container_quantity,
            loop.terms.planned_lead_time,
            loop.safety_factor,
        ),
        planned_lead_time=loop.terms.planned_lead_time,
        elided=facts.elided.get(loop.id, 0),
    )


def runways_from(
    terminal: Terminal, facts: RunwayFacts, now: datetime, only: Collection[str] | None = None
) -> list[LoopRunway]:
    """The runways of the config's loops (of those in `only` when given) from one snapshot."""
    settings = terminal.config.runway.settings()
    reds = Counter(terminal.reserve_cards.values())
    out = [
        LoopRunway(
            loop,
            assess(supply_of(loop, facts), now, settings),
            loop.id in facts.open_warnings,
            facts.reserve_full.get(loop.id, 0),
            reds[loop.id],
        )  # fmt: skip
        for loop in terminal.config.loops
        if only is None or loop.id in only
    ]
    return sorted(out, key=lambda r: r.sort_key)


def read_runways(terminal: Terminal, now: datetime | None = None) -> list[LoopRunway]:
    """Every loop's runway now, at-risk loops first, then shortest first."""
    now = now or terminal.clock()
    return runways_from(terminal, read_facts(terminal, now), now)


SLACK = timedelta(minutes=1)
"""How much before a reader's window start the kept window starts: the runway job and the screen
read the clock on their own threads, and one a little behind the other must not find the window
moved past its start (which would read the whole window again)."""


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.window: EmptiesWindow | None = None


_KEPT: WeakKeyDictionary[Database, _Kept] = WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def kept_window(terminal: Terminal) -> EmptiesWindow | None:
    """The bin-empty window kept for the terminal's database (tests, benches)."""
    kept = _KEPT.get(terminal.db)
    return None if kept is None else kept.window


def read_facts(
    terminal: Terminal, now: datetime, only: set[str] | None = None, strays: set[str] | None = None
) -> RunwayFacts:
    """The runways' snapshot (storage/runway_rows.read_facts; `only`, `strays` as there), its
    bin-empty times from the window kept for the terminal's database (domain/runway_window.py):
    the runway job and the screen's reads share it, so each reads only the log rows written since
    the last read, not the window's (~144,000 bin-empty rows in 8 hours at 5 signals/s). A new one,
    which reads the whole window once: at the first read, after a clock set back by more than
    `SLACK`, when the red cards changed, after a failed read."""
    settings = terminal.config.runway.settings()
    since = now - settings.window
    with _KEPT_LOCK:
        kept = _KEPT.setdefault(terminal.db, _Kept())
    with kept.lock:
        window, kept.window = kept.window, None  # kept again only once this snapshot's rows are all in it
        if window is None or since < window.since or window.reserve != set(terminal.reserve_cards):
            window = EmptiesWindow(since - SLACK, terminal.reserve_cards)
        window.move_to(max(window.since, since - SLACK))
        facts = runway_rows.read_facts(
            terminal.db, since, terminal.reserve_cards, loops=only, strays=strays, window=window
        )
        kept.window = window
        recent = max(2, settings.recent_bins)
        empties: dict[str, list[datetime]] = {}
        elided: dict[str, int] = {}
        for lp in terminal.config.loops:
            if only is None or lp.id in only:
                times, elided[lp.id] = window.empties_of(lp.id, since, now, recent)
                empties[lp.id] = list(times)
    return replace(facts, empties=empties, elided=elided)


def reserve_draws(terminal: Terminal, days: float = 30) -> dict[str, int]:
    """Loop id -> how often its reserve was drawn in the last `days` days (`reserve_drawn` rows)."""
    return runway_rows.reserve_draws(terminal.db, terminal.clock() - timedelta(days=days))


class RunwayMonitor:
    """Raises and clears runway warnings and reserve-draw warnings; `tick()` from any thread."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self._lock = threading.Lock()
        self.runways: list[LoopRunway] = []
        """What the last pass assessed (tests: the same as `read_runways`, the screen's read)."""
        self._strays: set[str] | None = None
        """Loops with an open request whose card is in another loop now (`RunwayFacts.strays`): a
        pass over some loops reads their open requests by loop, the others' through their cards.
        Found by each full pass (or, before the first, by `stray_loops`); cards move only when a
        terminal opens on a changed config, so one found here stays one until the next full pass."""

    def tick(self) -> list[str]:
        """Recompute every runway and act; returns what it did, as words (for logs and tests)."""
        return self._pass(None)

    def tick_loops(self, loop_ids: Collection[str]) -> list[str]:
        """Recompute the runways of `loop_ids` only (ids not in the config are ignored) and act on
        them as `tick` does, their red cards' reserve draws included; other loops are not read."""
        known = {lp.id for lp in self.terminal.config.loops} & set(loop_ids)
        return self._pass(known) if known else []

    def _pass(self, only: set[str] | None) -> list[str]:
        with self._lock:  # the timer and an event-triggered run must not race each other
            terminal = self.terminal
            now = terminal.clock()
            settings = terminal.config.runway.settings()
            if only is not None and self._strays is None:
                self._strays = runway_rows.stray_loops(terminal.db)
            facts = read_facts(terminal, now, only, None if only is None else self._strays)
            if only is None or self._strays is None:
                self._strays = set(facts.strays)
            else:
                self._strays.update(facts.strays)
            done: list[str] = []
            self.runways = runways_from(terminal, facts, now, only)
            for lr in self.runways:
                step = warning_step(lr.runway, lr.warning_open, settings)
                if step is WarningStep.RAISE and self._raise(lr, facts, now):
                    done.append(f"warning {lr.loop.id}")
                elif step is WarningStep.CLEAR and self._clear(lr, now):
                    done.append(f"recovered {lr.loop.id}")
            for card_id, request_id in facts.drawn:
                if self._reserve_call(card_id, request_id, now):
                    done.append(f"reserve {card_id}")
            return done

    def _raise(self, lr: LoopRunway, facts: RunwayFacts, now: datetime) -> bool:
        terminal, loop, runway = self.terminal, lr.loop, lr.runway
        chase = facts.chase.get(loop.id) or loop.card_id_list()[0]
        words = f"runway {describe(runway)}"
        try:
            with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
                row = RunwayWarningRow(
                    loop_id=loop.id, raised_at=now, margin_s=runway.margin.total_seconds(),
                    runway_s=runway.runway.total_seconds() if runway.runway is not None else 0.0,
                )  # fmt: skip
                runway_rows.add_warning(uow.session, row)
                if terminal.config.runway.warnings and material_call_allowed(terminal):
                    andon = raise_in(
                        terminal, uow, kind=AndonKind.CALL, station=loop.station, reason=MATERIAL_REASON,
                        source=SOURCE, actor=None, authorised=False, now=now, at=now, card_id=chase,
                    )  # fmt: skip
                    if not isinstance(andon, Rejection):
                        row.andon_id = andon.id
                        uow.collect(AndonChanged("raised", view_of(terminal, andon), None, now))
                        uow.collect(LineStateChanged(line_state(terminal, uow, now)))
                _log(uow, now, "runway_low", loop.id, row.andon_id, f"{words}; chase card {chase}")
        except WarningAlreadyOpen:
            return False  # another process opened this episode first: the index kept it to one
        log.warning("loop %s at risk: %s", loop.id, words)
        return True

    def _clear(self, lr: LoopRunway, now: datetime) -> bool:
        terminal, runway = self.terminal, lr.runway
        words = f"runway back to {describe(runway)}"
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            row = runway_rows.open_warning(uow.session, lr.loop.id)
            if row is None:
                return False
            row.cleared_at = now
            row.cleared_runway_s = runway.runway.total_seconds() if runway.runway is not None else None
            uow.session.add(row)
            before = uow.andons.get(row.andon_id) if row.andon_id else None
            if before is not None and before.active:
                resolve_by_system(terminal, uow, before, words, at=now, now=now, source=SOURCE)
            _log(uow, now, "runway_recovered", lr.loop.id, row.andon_id, words)
        log.info("loop %s recovered: %s", lr.loop.id, words)
        return True

    def _reserve_call(self, card_id: str, request_id: str, now: datetime) -> bool:
        terminal = self.terminal
        if not material_call_allowed(terminal):
            return False
        loop = terminal.card_loops[card_id]
        andon = raise_request_call(
            terminal, request_id=request_id, card_id=card_id, station=loop.station, source=SOURCE, now=now
        )
        if andon is None:
            return False
        log.warning("loop %s draws on its reserve (red card %s)", loop.id, card_id)
        return True


def _log(uow: UnitOfWork, now: datetime, event: str, loop_id: str, andon_id: str | None, detail: str) -> None:
    # The andon id goes in the words, not the column: rows with `andon_id` are the andon's own
    # lifecycle rows, which carry its facts (kind, reason, station) and which the metrics count.
    if andon_id:
        detail += f"; material call {andon_id[:8]}"
    uow.andons.log(
        CardLogRow(
            occurred_at=now, recorded_at=now, event=event, loop_id=loop_id, source=SOURCE, detail=detail
        )
    )
