"""Andon use cases: raise, acknowledge, resolve, cancel, shelve; the events they publish.

Each use case is one function and one unit of work: the andon row, its card-log row (with the actor
and the andon's facts, `andon_log.py`) and, for a refusal, the logged refusal commit together;
events are collected by the unit of work and reach the bus only after the commit. The rows are
written through `uow.andons` (storage/andon_rows.py): no SQL here. Authority comes in as an
`AuthSession` (badge + PIN, idle timeout); operators raise a CALL without one. What screens show
is built in `andon_views.py`. The outcome, the bus events and `authority` live in andon_outcomes.py
and shelving in andon_shelving.py; every name is re-exported here, where callers import it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services import andon_elapsed, quality_stop
from kanban_terminal.services.andon_log import log_andon, log_refusal
from kanban_terminal.services.andon_outcomes import AndonChanged as AndonChanged
from kanban_terminal.services.andon_outcomes import AndonOutcome as AndonOutcome
from kanban_terminal.services.andon_outcomes import AndonRefused as AndonRefused
from kanban_terminal.services.andon_outcomes import LineStateChanged as LineStateChanged
from kanban_terminal.services.andon_outcomes import _done
from kanban_terminal.services.andon_outcomes import authority as authority
from kanban_terminal.services.andon_outcomes import refused_outcome as refused_outcome
from kanban_terminal.services.andon_shelving import shelve_source as shelve_source
from kanban_terminal.services.andon_views import line_state, reason_rule, step_view, view_of
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.andon_rows import AndonScope, DuplicateAndon, andons_in
from kanban_terminal.storage.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from kanban_terminal.services.auth import AuthSession


# -- use cases -------------------------------------------------------------------------------------


def raise_in(
    terminal: Terminal,
    scope: AndonScope,
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
    """Raise inside the caller's unit of work (the MQTT signal and the material andon share it).

    Raises:
        DuplicateAndon: `request_id` already has an andon (storage/andon_rows.py).
    """
    rows = andons_in(scope)
    active = rows.attention()
    anyone = not authorised and quality_stop.by_anyone(terminal.config, kind, reason)
    authorised = authorised or anyone
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
        log_refusal(scope, f"raise {kind.value}", decided, actor=actor, source=source, now=now)
        return decided
    rows.add(decided)
    detail = f"{kind.value.upper()} {station} {reason}" + (f" card {card_id}" if card_id else "")
    detail += quality_stop.raise_note(terminal.config) if anyone else ""
    log_andon(
        scope, decided, "andon_raised", actor=actor, source=source, now=now, at=at, from_state=None,
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
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        result = raise_in(
            terminal, uow, kind=kind, station=station, reason=reason, source=source, actor=actor,
            authorised=authorised, now=now, at=at or now,
        )  # fmt: skip
        if not isinstance(result, Rejection):
            line = line_state(terminal, uow, now)
            done = _done(uow, "raised", view_of(terminal, result), line, actor, result.raised_at)
    if isinstance(result, Rejection):
        return refused_outcome(terminal, f"raise {kind.value}", result, source)
    return done


MATERIAL_REASON = "MAT"


def material_call_allowed(terminal: Terminal) -> bool:
    """The MAT reason is configured as a call: else the system's material calls are not raised (a
    refusal every tick would only flood the log)."""
    rule = reason_rule(terminal, MATERIAL_REASON)
    return rule is not None and AndonKind.CALL.value in rule.kinds


def raise_request_call(
    terminal: Terminal, *, request_id: str, card_id: str, station: str, source: str, now: datetime
) -> Andon | None:
    """A material CALL linked to an open request, in its own unit of work; None when the request
    has closed, the raise was refused (logged), or another process raised it first (a unique index
    keeps one call per request)."""
    try:
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            current = uow.andons.request(request_id)
            if current is None or current.closed_at is not None:
                return None
            result = raise_in(
                terminal, uow, kind=AndonKind.CALL, station=station, reason=MATERIAL_REASON,
                source=source, actor=None, authorised=False, now=now, at=now, card_id=card_id,
                request_id=request_id,
            )  # fmt: skip
            if isinstance(result, Rejection):
                return None  # e.g. a MAT call already active at that station: logged as refused
            uow.collect(AndonChanged("raised", view_of(terminal, result), None, now))
            uow.collect(LineStateChanged(line_state(terminal, uow, now)))
    except DuplicateAndon:
        return None
    return result


def resolve_by_system(
    terminal: Terminal, uow: UnitOfWork, before: Andon, note: str, *, at: datetime, now: datetime, source: str
) -> Andon | None:
    """The system resolves `before` inside the caller's unit of work (its cause is gone), with `note`;
    None when the rules refuse."""
    result = rules.resolve(before, None, note, at, authorised=True)
    if isinstance(result, Rejection):
        return None
    uow.andons.store(result)
    elapsed = andon_elapsed.at_end(terminal, uow, result, now)
    log_andon(
        uow, result, "andon_resolved", actor=None, source=source, now=now,
        at=result.resolved_at or now, from_state=before.state.value, detail=f"note: {note}",
        elapsed=elapsed,
    )  # fmt: skip
    uow.collect(AndonChanged("resolved", step_view(terminal, uow, "resolved", result, elapsed), None, now))
    uow.collect(LineStateChanged(line_state(terminal, uow, now)))
    return result


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
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        rows = uow.andons
        before = rows.get(andon_id)
        if before is None:
            refused = Rejection("unknown_andon", "That andon event no longer exists; refresh the list.")
            log_refusal(uow, action, refused, actor=actor, source=source, now=now, andon_id=andon_id)
        else:
            result = decide(before)  # type: ignore[operator]
            if isinstance(result, Rejection):
                refused = result
                log_refusal(uow, action, result, actor=actor, source=source, now=now, andon_id=andon_id)
            else:
                rows.store(result)
                # From the anchor where one exists (andon_elapsed.py): one figure for log, message, screen.
                elapsed = andon_elapsed.after(terminal, uow, action, result, now)
                detail = f"note: {result.note}" if action == "resolved" else ""
                if action == "resolved" and (down := result.downtime(now, elapsed)) is not None:
                    detail += f"; downtime {down.total_seconds():.0f} s"  # words; the column is the fact
                at = {"acknowledged": result.acknowledged_at, "resolved": result.resolved_at}.get(
                    action, result.cancelled_at
                )
                assert at is not None
                log_andon(
                    uow, result, f"andon_{action}", actor=actor, source=source, now=now, at=at,
                    from_state=before.state.value, detail=detail, elapsed=elapsed,
                )  # fmt: skip
                line = line_state(terminal, uow, now)
                done = _done(uow, action, step_view(terminal, uow, action, result, elapsed), line, actor, at)
    if refused is not None:
        return refused_outcome(terminal, action, refused, source)
    return done


def acknowledge_andon(
    terminal: Terminal, andon_id: str, responder: str, *, source: str, at: datetime | None = None
) -> AndonOutcome:
    """A named responder (any badge listed under [[people]]) takes the event over."""
    from kanban_terminal.services.auth import person  # with the first acknowledgement: see authority()

    now = terminal.clock()
    responder = responder.strip().upper()
    if person(terminal, responder) is None:
        rejection = Rejection("unknown_badge", f"Badge {responder!r} is unknown here. Scan your own badge.")
        with terminal.db.unit_of_work() as uow:
            log_refusal(uow, "acknowledged", rejection, actor=None, source=source, now=now, andon_id=andon_id)
        return refused_outcome(terminal, "acknowledged", rejection, source)
    role = who.role if (who := person(terminal, responder)) else None

    def decide(a: Andon) -> Andon | Rejection:
        # A quality stop anyone raised is confirmed by a team lead only (services/quality_stop.py).
        refused = quality_stop.confirm_refusal(terminal.config, a, role)
        return refused or rules.acknowledge(a, responder, at or now)

    return _act(terminal, andon_id, "acknowledged", decide, actor=responder, source=source, now=now)


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
