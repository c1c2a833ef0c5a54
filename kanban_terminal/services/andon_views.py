"""The read side of the andon feature: view models, row mapping, the line state and the board.

What the screens, the CLI, the publisher and the escalation runner show or decide from: frozen view
models built from the `andon` table inside the caller's session. Nothing here writes; the use cases
that change an andon live in `services/andon.py`, its card-log rows in `services/andon_log.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from kanban_terminal.config import AndonReason
from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, AndonKind, AndonState, LineCondition
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import AndonEscalationRow, AndonRow, AndonShelveRow

NEEDS_ATTENTION = (
    AndonState.RAISED.value,
    AndonState.ACKNOWLEDGED.value,
    AndonState.RESOLVED_UNACKNOWLEDGED.value,
)


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


def to_domain(row: AndonRow) -> Andon:
    return Andon(
        id=row.id,
        kind=AndonKind(row.kind),
        station=row.station,
        reason=row.reason,
        raised_at=row.raised_at,
        source=row.source,
        raised_by=row.raised_by,
        card_id=row.card_id,
        request_id=row.request_id,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        note=row.note,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
    )


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


def fired_tiers(session: Session, ids: list[str]) -> dict[str, tuple[int, ...]]:
    out: dict[str, list[int]] = {}
    if ids:
        rows = session.exec(select(AndonEscalationRow).where(col(AndonEscalationRow.andon_id).in_(ids)))
        for r in rows:
            out.setdefault(r.andon_id, []).append(r.tier)
    return {k: tuple(v) for k, v in out.items()}


def attention_rows(session: Session) -> list[AndonRow]:
    stmt = select(AndonRow).where(col(AndonRow.state).in_(NEEDS_ATTENTION)).order_by(col(AndonRow.raised_at))
    return list(session.exec(stmt).all())


_LINE_SEQ = itertools.count(1)


def line_state(terminal: Terminal, session: Session, now: datetime) -> LineStateView:
    """The line state as `session` sees it; inside a write transaction, `seq` follows commit order."""
    rows = attention_rows(session)
    fired = fired_tiers(session, [r.id for r in rows])
    views = tuple(view_of(terminal, to_domain(r), fired.get(r.id, ())) for r in rows)
    return LineStateView(rules.line_condition(v.andon for v in views), views, now, next(_LINE_SEQ))


@dataclass(frozen=True)
class AndonBoard:
    line: LineStateView
    history: tuple[AndonView, ...]
    """Most recent closed or cancelled events, newest first."""


def read_board(terminal: Terminal) -> AndonBoard:
    """What the andon screen shows: the line state, events needing attention, recent history."""
    now = terminal.clock()
    with terminal.db.reading() as session:
        line = line_state(terminal, session, now)
        stmt = (
            select(AndonRow)
            .where(col(AndonRow.state).not_in(NEEDS_ATTENTION))
            .order_by(col(AndonRow.raised_at).desc())
            .limit(terminal.config.andon.history)
        )
        rows = list(session.exec(stmt).all())
        fired = fired_tiers(session, [r.id for r in rows])
    history = tuple(view_of(terminal, to_domain(r), fired.get(r.id, ())) for r in rows)
    return AndonBoard(line, history)


def shelved_until(session: Session, source_id: str, now: datetime) -> datetime | None:
    """When the shelve on `source_id` ends, or None if it is not shelved now."""
    stmt = select(AndonShelveRow).where(
        AndonShelveRow.source == source_id, col(AndonShelveRow.lifted_at).is_(None)
    )
    ends = [r.until for r in session.exec(stmt) if r.shelved_at <= now < r.until]
    return max(ends, default=None)
