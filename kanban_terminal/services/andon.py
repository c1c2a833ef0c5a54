"""Andon use cases: raise, acknowledge, resolve, cancel, shelve; suspend and resume a card.

Each use case is one function and one transaction: the andon row, its card-log row (with the actor)
and, for a refusal, the logged refusal commit together; events reach the bus only after the commit.
Authority comes in as an `AuthSession` (badge + PIN, idle timeout); operators raise a CALL without
one. The view models here are what the screens, the CLI and the publisher show.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from kanban_terminal.config import AndonReason
from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, AndonKind, AndonState, LineCondition
from kanban_terminal.domain.auth import has_authority
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.auth import AuthSession, person
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import (
    AndonEscalationRow,
    AndonRow,
    AndonShelveRow,
    CardLogRow,
)

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


@dataclass(frozen=True)
class AndonOutcome:
    """What an andon action did, in words for the person who asked."""

    ok: bool
    message: str
    andon: AndonView | None = None
    rejection: Rejection | None = None


# -- bus events (published after the commit) -------------------------------------------------------


@dataclass(frozen=True)
class AndonChanged:
    """An andon event was raised, acknowledged, resolved, cancelled or escalated."""

    action: str
    view: AndonView
    actor: str | None
    at: datetime
    tier: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class LineStateChanged:
    view: LineStateView


@dataclass(frozen=True)
class AndonRefused:
    """An andon action was refused: shown on screen, already logged."""

    action: str
    rejection: Rejection
    source: str


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


def _store(row: AndonRow, andon: Andon) -> None:
    for name in (
        "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "note", "cancelled_at",
        "cancelled_by",
    ):  # fmt: skip
        setattr(row, name, getattr(andon, name))
    row.state = andon.state.value


def _new_row(andon: Andon) -> AndonRow:
    row = AndonRow(
        id=andon.id,
        kind=andon.kind.value,
        station=andon.station,
        reason=andon.reason,
        source=andon.source,
        raised_at=andon.raised_at,
        raised_by=andon.raised_by,
        card_id=andon.card_id,
        request_id=andon.request_id,
        state=andon.state.value,
    )
    return row


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


def _fired(session: Session, ids: list[str]) -> dict[str, tuple[int, ...]]:
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
    fired = _fired(session, [r.id for r in rows])
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
        fired = _fired(session, [r.id for r in rows])
    history = tuple(view_of(terminal, to_domain(r), fired.get(r.id, ())) for r in rows)
    return AndonBoard(line, history)


# -- logging ---------------------------------------------------------------------------------------


def log_andon(
    session: Session,
    andon: Andon,
    event: str,
    *,
    actor: str | None,
    source: str,
    now: datetime,
    at: datetime,
    from_state: str | None,
    detail: str = "",
) -> None:
    card_log.append(
        session,
        CardLogRow(
            occurred_at=at,
            recorded_at=now,
            event=event,
            card_id=andon.card_id,
            from_state=from_state,
            to_state=andon.state.value,
            request_id=andon.request_id,
            actor=actor,
            source=escape_external(source, 80),
            detail=detail,
            andon_id=andon.id,
        ),
    )


def log_refusal(
    session: Session,
    action: str,
    rejection: Rejection,
    *,
    actor: str | None,
    source: str,
    now: datetime,
    andon_id: str | None = None,
    card_id: str | None = None,
) -> None:
    card_log.append(
        session,
        CardLogRow(
            occurred_at=now,
            recorded_at=now,
            event="andon_refused" if card_id is None else "card_action_refused",
            card_id=card_id,
            actor=actor,
            source=escape_external(source, 80),
            detail=f"{action}: {rejection.reason}: {rejection.message}",
            andon_id=andon_id,
        ),
    )


def authority(terminal: Terminal, auth: AuthSession | None, source: str) -> tuple[str | None, bool]:
    """(badge, authorised) of the logged-in team lead; an idle session ends here, logged."""
    if auth is None:
        return None, False
    state = auth.current(terminal, source=source)
    if state is None:
        return None, False
    auth.touch(terminal)
    return state.badge, has_authority(state.role)


def refused_outcome(terminal: Terminal, action: str, rejection: Rejection, source: str) -> AndonOutcome:
    terminal.bus.publish(AndonRefused(action, rejection, source))
    return AndonOutcome(False, rejection.message, rejection=rejection)


def _done(
    terminal: Terminal, action: str, view: AndonView, line: LineStateView, actor: str | None, at: datetime
) -> AndonOutcome:
    terminal.bus.publish(AndonChanged(action, view, actor, at))
    terminal.bus.publish(LineStateChanged(line))
    return AndonOutcome(
        True,
        _MESSAGES[action].format(label=view.reason_label, a=view.andon, kind=view.andon.kind.value.upper()),
        view,
    )


_MESSAGES = {
    "raised": "{kind} raised at {a.station}: {label}. Help is being called.",
    "acknowledged": "Acknowledged by {a.acknowledged_by}: {label} at {a.station}.",
    "resolved": "Resolved: {label} at {a.station}.",
    "cancelled": "Call cancelled: {label} at {a.station}.",
}


# -- use cases -------------------------------------------------------------------------------------


def raise_in(
    terminal: Terminal,
    session: Session,
    *,
    kind: AndonKind,
    station: str,
    reason: str,
    source: str,
    actor: str | None,
    authorised: bool,
    now: datetime,
    at: datetime,
    card_id: str | None = None,
    request_id: str | None = None,
) -> Andon | Rejection:
    """Raise inside the caller's transaction (the MQTT signal and the material andon share it)."""
    active = [to_domain(r) for r in attention_rows(session)]
    decided = rules.decide_raise(
        andon_id=terminal.new_id(),
        kind=kind,
        station=station,
        reason=reason_rule(terminal, reason),
        reason_code=reason,
        stations=[s.id for s in terminal.config.stations],
        active=active,
        at=at,
        source=source,
        raised_by=actor,
        authorised=authorised,
        card_id=card_id,
        request_id=request_id,
    )
    if isinstance(decided, Rejection):
        log_refusal(session, f"raise {kind.value}", decided, actor=actor, source=source, now=now)
        return decided
    session.add(_new_row(decided))
    session.flush()
    detail = f"{kind.value.upper()} {station} {reason}" + (f" card {card_id}" if card_id else "")
    log_andon(
        session, decided, "andon_raised", actor=actor, source=source, now=now, at=at, from_state=None,
        detail=detail,
    )  # fmt: skip
    return decided


def raise_andon(
    terminal: Terminal,
    kind: AndonKind,
    station: str,
    reason: str,
    *,
    source: str,
    auth: AuthSession | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> AndonOutcome:
    """Raise a CALL (anyone) or a STOP (team lead) at `station` with a configured reason code."""
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    actor = badge or actor
    with terminal.db.transaction() as session:
        result = raise_in(
            terminal, session, kind=kind, station=station, reason=reason, source=source, actor=actor,
            authorised=authorised, now=now, at=at or now,
        )  # fmt: skip
        if isinstance(result, Rejection):
            refused = result
        else:
            refused = None
            line = line_state(terminal, session, now)
    if refused is not None:
        return refused_outcome(terminal, f"raise {kind.value}", refused, source)
    assert not isinstance(result, Rejection)  # refused is None only when the raise went through
    return _done(terminal, "raised", view_of(terminal, result), line, actor, result.raised_at)


def _act(
    terminal: Terminal,
    andon_id: str,
    action: str,
    decide: object,
    *,
    actor: str | None,
    source: str,
    now: datetime,
) -> AndonOutcome:
    """Load one event, let `decide(andon)` rule, store + log the result, all in one transaction."""
    refused: Rejection | None = None
    with terminal.db.transaction() as session:
        row = session.get(AndonRow, andon_id)
        if row is None:
            refused = Rejection("unknown_andon", "That andon event no longer exists; refresh the list.")
            log_refusal(session, action, refused, actor=actor, source=source, now=now, andon_id=andon_id)
        else:
            before = to_domain(row)
            result = decide(before)  # type: ignore[operator]
            if isinstance(result, Rejection):
                refused = result
                log_refusal(session, action, result, actor=actor, source=source, now=now, andon_id=andon_id)
            else:
                _store(row, result)
                detail = f"note: {result.note}" if action == "resolved" else ""
                if action == "resolved" and (down := result.downtime(now)) is not None:
                    detail += f"; downtime {down.total_seconds():.0f} s"
                at = {"acknowledged": result.acknowledged_at, "resolved": result.resolved_at}.get(
                    action, result.cancelled_at
                )
                assert at is not None
                log_andon(
                    session, result, f"andon_{action}", actor=actor, source=source, now=now, at=at,
                    from_state=before.state.value, detail=detail,
                )  # fmt: skip
                line = line_state(terminal, session, now)
                fired = _fired(session, [andon_id]).get(andon_id, ())
    if refused is not None:
        return refused_outcome(terminal, action, refused, source)
    return _done(terminal, action, view_of(terminal, result, fired), line, actor, at)


def acknowledge_andon(
    terminal: Terminal, andon_id: str, responder: str, *, source: str, at: datetime | None = None
) -> AndonOutcome:
    """A named responder (any badge listed under [[people]]) takes the event over."""
    now = terminal.clock()
    responder = responder.strip().upper()
    if person(terminal, responder) is None:
        rejection = Rejection("unknown_badge", f"Badge {responder!r} is unknown here. Scan your own badge.")
        with terminal.db.transaction() as session:
            log_refusal(
                session, "acknowledged", rejection, actor=None, source=source, now=now, andon_id=andon_id
            )
        return refused_outcome(terminal, "acknowledged", rejection, source)
    return _act(
        terminal, andon_id, "acknowledged", lambda a: rules.acknowledge(a, responder, at or now),
        actor=responder, source=source, now=now,
    )  # fmt: skip


def resolve_andon(
    terminal: Terminal,
    andon_id: str,
    note: str,
    *,
    source: str,
    auth: AuthSession | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> AndonOutcome:
    """The problem is fixed: a note is required, and a STOP needs a team lead."""
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    actor = badge or actor
    note = escape_external(note, 200)
    return _act(
        terminal,
        andon_id,
        "resolved",
        lambda a: rules.resolve(a, actor, note, at or now, authorised=authorised),
        actor=actor,
        source=source,
        now=now,
    )


def cancel_andon(
    terminal: Terminal,
    andon_id: str,
    *,
    source: str,
    auth: AuthSession | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> AndonOutcome:
    """Whoever raised an unacknowledged CALL withdraws it (logged as cancelled, never deleted)."""
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    actor = badge or actor
    return _act(
        terminal, andon_id, "cancelled",
        lambda a: rules.cancel(a, actor, source, at or now, authorised=authorised),
        actor=actor, source=source, now=now,
    )  # fmt: skip


def shelve_source(
    terminal: Terminal, source_id: str, minutes: float, *, source: str, auth: AuthSession | None
) -> AndonOutcome:
    """Shelve a chattering andon source (a device id) for a bounded time; its signals are still logged."""
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    max_duration = timedelta(minutes=terminal.config.andon.shelve_max_minutes)
    decided = rules.decide_shelve(
        source_id, timedelta(minutes=minutes), max_duration, now, authorised=authorised
    )
    with terminal.db.transaction() as session:
        if isinstance(decided, Rejection):
            log_refusal(session, "shelve", decided, actor=badge, source=source, now=now)
        else:
            assert badge is not None
            session.add(
                AndonShelveRow(source=source_id, shelved_by=badge, shelved_at=now, until=decided.until)
            )
            card_log.append(
                session,
                CardLogRow(
                    occurred_at=now, recorded_at=now, event="andon_shelved", actor=badge,
                    source=escape_external(source, 80),
                    detail=f"source {source_id} shelved until {decided.until:%H:%M} UTC",
                ),
            )  # fmt: skip
    if isinstance(decided, Rejection):
        return refused_outcome(terminal, "shelve", decided, source)
    return AndonOutcome(True, f"{source_id} shelved until {decided.until.astimezone():%H:%M}.")


def shelved_until(session: Session, source_id: str, now: datetime) -> datetime | None:
    """When the shelve on `source_id` ends, or None if it is not shelved now."""
    stmt = select(AndonShelveRow).where(
        AndonShelveRow.source == source_id, col(AndonShelveRow.lifted_at).is_(None)
    )
    ends = [r.until for r in session.exec(stmt) if r.shelved_at <= now < r.until]
    return max(ends, default=None)
