"""Andon use cases: raise, acknowledge, resolve, cancel, shelve; the events they publish.

Each use case is one function and one transaction: the andon row, its card-log row (with the actor
and the andon's facts, `andon_log.py`) and, for a refusal, the logged refusal commit together;
events reach the bus only after the commit. Authority comes in as an `AuthSession` (badge + PIN, idle
timeout); operators raise a CALL without one. What screens show is built in `andon_views.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, AndonKind
from kanban_terminal.domain.auth import has_authority
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon_log import log_andon, log_refusal
from kanban_terminal.services.andon_views import (
    AndonView,
    LineStateView,
    attention_rows,
    fired_tiers,
    line_state,
    reason_rule,
    to_domain,
    view_of,
)
from kanban_terminal.services.auth import AuthSession, person
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import AndonRow, AndonShelveRow, CardLogRow


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
                    detail += f"; downtime {down.total_seconds():.0f} s"  # words; the column is the fact
                at = {"acknowledged": result.acknowledged_at, "resolved": result.resolved_at}.get(
                    action, result.cancelled_at
                )
                assert at is not None
                log_andon(
                    session, result, f"andon_{action}", actor=actor, source=source, now=now, at=at,
                    from_state=before.state.value, detail=detail,
                )  # fmt: skip
                line = line_state(terminal, session, now)
                fired = fired_tiers(session, [andon_id]).get(andon_id, ())
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
