"""The read side of the andon feature: view models, row mapping, the line state and the board.

What the screens, the CLI, the publisher and the escalation runner show or decide from: frozen view
models built from the andon rows (storage/andon_rows.py) in the caller's unit of work or in a read
snapshot (storage/andon_reads.py). Nothing here writes or holds SQL; the use cases
that change an andon live in `services/andon.py`, its card-log rows in `services/andon_log.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from kanban_terminal.config import AndonReason
from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, LineCondition
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads
from kanban_terminal.storage.andon_rows import AndonScope, andons_in
from kanban_terminal.storage.andon_rows import to_domain as to_domain


@dataclass(frozen=True)
class AndonView:
    """One andon event as screens and payloads show it."""

    andon: Andon
    reason_label: str
    colour: str
    tiers_fired: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return self.andon.id


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


def view_of(terminal: Terminal, andon: Andon, fired: tuple[int, ...] = ()) -> AndonView:
    reason = reason_config(terminal, andon.reason)
    return AndonView(
        andon,
        reason.label if reason else andon.reason,
        reason.colour if reason else "yellow",
        tuple(sorted(fired)),
    )


def fired_tiers(scope: AndonScope, ids: list[str]) -> dict[str, tuple[int, ...]]:
    return andons_in(scope).fired_tiers(ids)


_LINE_SEQ = itertools.count(1)


def line_state(terminal: Terminal, scope: AndonScope, now: datetime) -> LineStateView:
    """The line state as `scope` sees it; inside a unit of work, `seq` follows commit order."""
    rows = andons_in(scope)
    active = rows.attention()
    return _line(terminal, active, rows.fired_tiers([a.id for a in active]), now)


def _line(
    terminal: Terminal, active: list[Andon], fired: dict[str, tuple[int, ...]], now: datetime
) -> LineStateView:
    views = tuple(view_of(terminal, a, fired.get(a.id, ())) for a in active)
    return LineStateView(rules.line_condition(v.andon for v in views), views, now, next(_LINE_SEQ))


@dataclass(frozen=True)
class AndonBoard:
    line: LineStateView
    history: tuple[AndonView, ...]
    """Most recent closed or cancelled events, newest first."""


def read_board(terminal: Terminal) -> AndonBoard:
    """What the andon screen shows: the line state, events needing attention, recent history."""
    now = terminal.clock()
    rows = andon_reads.board(terminal.db, terminal.config.andon.history)
    history = tuple(view_of(terminal, a, rows.fired.get(a.id, ())) for a in rows.history)
    return AndonBoard(_line(terminal, rows.attention, rows.fired, now), history)


def shelved_until(scope: AndonScope, source_id: str, now: datetime) -> datetime | None:
    """When the shelve on `source_id` ends, or None if it is not shelved now."""
    return andons_in(scope).shelved_until(source_id, now)
