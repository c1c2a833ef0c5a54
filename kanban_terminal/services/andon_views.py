"""The read side of the andon feature: view models, row mapping, the line state and the board.

What the screens, the CLI, the publisher and the escalation runner show or decide from: frozen view
models built from the andon rows (storage/andon_rows.py) in the caller's unit of work or in a read
snapshot (storage/andon_reads.py). Nothing here writes or holds SQL; the use cases
that change an andon live in `services/andon.py`, its card-log rows in `services/andon_log.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kanban_terminal.config import AndonReason
from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, LineCondition
from kanban_terminal.services import andon_elapsed
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_durations, andon_reads
from kanban_terminal.storage.andon_rows import AndonScope, andons_in
from kanban_terminal.storage.andon_rows import to_domain as to_domain


@dataclass(frozen=True)
class AndonView:
    """One andon event as screens and payloads show it."""

    andon: Andon
    reason_label: str
    colour: str
    tiers_fired: tuple[int, ...] = ()
    elapsed: timedelta | None = None
    """Time since the raise on the monotonic clock as of the read (services/andon_elapsed.py), or
    for an ended event its recorded raise to end (a STOP's downtime, a CALL's time to resolve or
    cancel; storage/andon_durations.py); None: no anchor, the wall difference is shown."""
    read_mono_s: float | None = None
    """The monotonic reading `elapsed` is as of, for an active event (None once it ended)."""
    step_elapsed: timedelta | None = None
    """In the view an acknowledge, resolve or cancel announces (`step_view`): the time from the raise
    to that step as its log row recorded it (`elapsed_s`); None elsewhere and without an anchor."""

    @property
    def id(self) -> str:
        return self.andon.id

    def running(self, now: datetime, mono_s: float | None = None) -> timedelta:
        """How long it has run (a STOP's downtime, a CALL's wait) at `now`, monotonic reading `mono_s`.

        With an anchor, the monotonic time since the read is added, so a screen redrawn each second
        counts on without reading the database and a wall-clock step moves nothing; without one (or
        without `mono_s`), the wall difference / the figure as of the read.
        """
        if self.elapsed is None:
            return self.andon.running_time(now)
        since_read = 0.0
        if self.andon.active and self.read_mono_s is not None and mono_s is not None:
            since_read = max(0.0, mono_s - self.read_mono_s)
        return self.andon.running_time(now, self.elapsed + timedelta(seconds=since_read))

    @property
    def downtime(self) -> timedelta | None:
        """A resolved STOP's downtime as recorded (None for a CALL or a stop still running)."""
        a = self.andon
        if a.resolved_at is None:
            return None
        return a.downtime(a.resolved_at, self.elapsed)


@dataclass(frozen=True)
class LineStateView:
    condition: LineCondition
    active: tuple[AndonView, ...]
    """Events still needing attention (active, or resolved but unacknowledged)."""
    at: datetime
    seq: int = 0
    """Order of computation in this process; computed under the write lock, so it is commit order."""

    @property
    def stopped(self) -> bool:
        return self.condition is LineCondition.STOPPED


# -- mapping ---------------------------------------------------------------------------------------


def reason_config(terminal: Terminal, code: str) -> AndonReason | None:
    return next((r for r in terminal.config.andon_reasons if r.code == code), None)


def reason_rule(terminal: Terminal, code: str) -> rules.ReasonRule | None:
    reason = reason_config(terminal, code)
    if reason is None:
        return None
    tiers = tuple(timedelta(minutes=m) for m in reason.escalation_minutes)
    return rules.ReasonRule(reason.code, reason.label, tuple(reason.kinds), tiers)


def view_of(
    terminal: Terminal,
    andon: Andon,
    fired: tuple[int, ...] = (),
    elapsed: timedelta | None = None,
    read_mono_s: float | None = None,
) -> AndonView:
    reason = reason_config(terminal, andon.reason)
    return AndonView(
        andon,
        reason.label if reason else andon.reason,
        reason.colour if reason else "yellow",
        tuple(sorted(fired)),
        elapsed,
        read_mono_s if andon.active else None,
    )


def step_view(
    terminal: Terminal,
    scope: AndonScope,
    action: str,
    andon: Andon,
    elapsed: timedelta | None,
) -> AndonView:
    """The view an acknowledge, resolve or cancel announces (its tiers fired so far), with `elapsed`
    (raise to the step, from the anchor: services/andon_elapsed.py `after`) as its `step_elapsed`."""
    fired = fired_tiers(scope, [andon.id]).get(andon.id, ())
    shown = andon_elapsed.shown_after(scope, action, andon, elapsed)
    return replace(view_of(terminal, andon, fired, shown), step_elapsed=elapsed)


def fired_tiers(scope: AndonScope, ids: list[str]) -> dict[str, tuple[int, ...]]:
    return andons_in(scope).fired_tiers(ids)


_LINE_SEQ = itertools.count(1)


def line_state(terminal: Terminal, scope: AndonScope, now: datetime) -> LineStateView:
    """The line state as `scope` sees it; inside a unit of work, `seq` follows commit order."""
    rows = andons_in(scope)
    active = rows.attention()
    times = _times(terminal, scope, active, now)
    return _line(terminal, active, rows.fired_tiers([a.id for a in active]), now, times)


_Times = tuple[dict[str, timedelta], float | None]


def _times(terminal: Terminal, scope: AndonScope, andons: list[Andon], now: datetime) -> _Times:
    """Elapsed time of the running events (anchors) and the recorded raise-to-end of the ended ones."""
    running, mono = andon_elapsed.elapsed_in(terminal, scope, [a.id for a in andons if a.active], now)
    ended = [a.id for a in andons if not a.active]
    recorded = andon_durations.recorded_in(andons_in(scope).session, ended)
    return {**running, **{i: timedelta(seconds=s) for i, s in recorded.items()}}, mono


def _line(
    terminal: Terminal,
    active: list[Andon],
    fired: dict[str, tuple[int, ...]],
    now: datetime,
    times: _Times = ({}, None),
) -> LineStateView:
    elapsed, mono = times
    views = tuple(view_of(terminal, a, fired.get(a.id, ()), elapsed.get(a.id), mono) for a in active)
    return LineStateView(rules.line_condition(v.andon for v in views), views, now, next(_LINE_SEQ))


@dataclass(frozen=True)
class AndonBoard:
    line: LineStateView
    history: tuple[AndonView, ...]
    """Most recent closed or cancelled events, newest first."""


def read_board(terminal: Terminal) -> AndonBoard:
    """What the andon screen shows: the line state, events needing attention, recent history."""
    rows = andon_reads.board(terminal.db, terminal.config.andon.history)
    now = terminal.clock()  # after the read, as the escalation runner does: elapsed is as of now
    andons = rows.attention + rows.history
    with terminal.db.snapshot() as raw:  # raw: a second ORM session cost 1.7x (bench/elapsed_reads.py)
        running, mono = andon_elapsed.elapsed_raw(terminal, raw, [a.id for a in andons if a.active], now)
        recorded = andon_durations.recorded_raw(raw, [a.id for a in andons if not a.active])
    times = {**running, **{i: timedelta(seconds=s) for i, s in recorded.items()}}, mono
    history = tuple(view_of(terminal, a, rows.fired.get(a.id, ()), times[0].get(a.id)) for a in rows.history)
    return AndonBoard(_line(terminal, rows.attention, rows.fired, now, times), history)


def attention_marks(terminal: Terminal) -> tuple[tuple[str, str], ...]:
    """What changes when any process raises, acknowledges, resolves or cancels an andon (a screen's
    cheap look before it reads the whole board again)."""
    return andon_reads.attention_marks(terminal.db)


def shelved_until(scope: AndonScope, source_id: str, now: datetime) -> datetime | None:
    """When the shelve on `source_id` ends, or None if it is not shelved now."""
    return andons_in(scope).shelved_until(source_id, now)
