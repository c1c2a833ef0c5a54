"""The scan use case: one function every input door calls (keyboard, serial scanner, bin sensor, CLI).

    raw input -> normalise -> known card? -> domain decides -> one transaction -> bus -> outcome

Card state, log rows and the request (outbox) row commit together or not at all; the outcome is
returned only after the commit has been fsynced, so "accepted" on screen means it is on disk.
Rejected input is kept, escaped, in `rejected_input` for maintenance.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kanban_terminal.domain.card_ids import has_valid_check, layout_mismatch_hint
from kanban_terminal.domain.cards import CardEvent, CardState, Transition
from kanban_terminal.domain.codes import InputRejection, normalise_code
from kanban_terminal.domain.scans import (
    CardSnapshot,
    Intent,
    OpenRequest,
    OutcomeKind,
    ScanDecision,
    Verdict,
    decide_scan,
    whole_seconds,
)
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.events import CardsChanged, RequestRaised, ScanOutcome, ScanRecorded
from kanban_terminal.services.reserve import RESERVE_DRAWN, reserve_drawn_row
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.errors import STORAGE_ERRORS, storage_reason
from kanban_terminal.storage.scan_repo import ScanStore
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def record_scan(
    terminal: Terminal,
    raw: str,
    *,
    source: str,
    at: datetime | None = None,
    intent: Intent = Intent.AUTO,
    confirmed: bool = False,
    actor: str | None = None,
    uow: UnitOfWork | None = None,
) -> ScanOutcome:
    """Handle one scanned code (or bin signal) and return what happened.

    Args:
        terminal: the terminal the scan happened at.
        raw: the input exactly as the device delivered it.
        source: the door it came through (keyboard, serial:<port>, mqtt:<device>, cli).
        at: when it happened, if the device says so; default now.
        intent: AUTO for a person's scan, EMPTY / FULL for a bin sensor.
        confirmed: the person confirmed an implausibly early delivery.
        actor: who scanned, when known (badge id).
        uow: the open unit of work to write into, for a caller that records many scans in one
            (a group of bin signals): that caller commits it and so decides when it is durable,
            its events wait for that commit, and a storage error is raised to it. None: this
            scan's own unit of work, committed before it returns.

    Returns:
        The outcome; ACCEPTED only after the transaction is durable (with `uow`: once the
        caller has committed it).
    """
    if uow is not None:
        return _record(terminal, uow, raw, source, at, intent, confirmed, actor)
    outcome: ScanOutcome | None = None
    try:
        with terminal.db.unit_of_work(release=terminal.bus.publish) as own:
            outcome = _record(terminal, own, raw, source, at, intent, confirmed, actor)
    except STORAGE_ERRORS as exc:
        # sqlite3.Error too: the repositories run on the raw driver connection, whose errors
        # SQLAlchemy does not wrap (an injected I/O error crashed the scanner, issue 7).
        if outcome is not None and outcome.verdict is Verdict.REJECTED:
            # Only the refused input was to be kept: failing to keep it must not hide the refusal.
            log.error("could not keep rejected input %s: %s", outcome.code, exc)
            terminal.bus.publish(ScanRecorded(outcome))
            return outcome
        # Disk full, I/O error, lock timeout: nothing was committed; say so in red, never "accepted".
        code = _shown(terminal, raw)
        log.error("scan of %s not recorded: %s", code, exc)
        return ScanOutcome(
            Verdict.REJECTED,
            OutcomeKind.FAILED,
            f"NOT recorded: the terminal could not save ({storage_reason(exc)}). Scan again; "
            "if it repeats, call maintenance.",
            code,
            source,
            at or terminal.clock(),
            card_id=code,
        )
    return outcome


_NOT_REFUSED = (OutcomeKind.DEBOUNCED, OutcomeKind.NEEDS_CONFIRMATION)
_QUEUED = CardState.QUEUED.value
# `._value_`, not `.value`, on the scan's path: `.value` is a Python-level property (enum.py's
# `__get__`), 14 calls a one-signal group (cProfile, issue 19); `_value_` is the member's own
# attribute, the same string.


def _record(
    terminal: Terminal,
    uow: UnitOfWork,
    raw: str,
    source: str,
    at: datetime | None,
    intent: Intent,
    confirmed: bool,
    actor: str | None,
) -> ScanOutcome:
    """`record_scan` inside `uow`: decide, write, and collect the events for after the commit."""
    now = terminal.clock()
    at = at or now
    code = normalise_code(raw, terminal.config.terminal.max_code_length)
    if isinstance(code, InputRejection):
        return _reject_input(uow, code.escaped_input, code.reason, source, at, OutcomeKind.MISREAD)
    loop = terminal.card_loops.get(code)
    card = uow.scans.read_card(code)  # also for an id no loop lists: a retired card is still a row
    if card is not None and card.retired:  # replaced, or dropped from the config: not a stranger
        reason = (
            f"Card {code} is retired on line {terminal.config.line.id} (replaced by a new card, or "
            "taken out of the loop). Take it out of circulation and give it to the team lead."
        )
        return _reject_input(uow, code, reason, source, at, OutcomeKind.NOT_ALLOWED)
    if loop is None or card is None:
        return _reject_unknown(terminal, uow, code, source, at)
    request = (
        OpenRequest(card.open_request_id, card.request_raised_at)
        if card.open_request_id and card.request_raised_at
        else None
    )
    snapshot = CardSnapshot(code, CardState(card.state), card.last_scan_at, request)
    decision = decide_scan(
        snapshot, loop.terms, at, intent=intent, confirmed=confirmed, policy=terminal.policy
    )
    request_id = _apply(terminal, uow.scans, snapshot, decision, source, actor, now, at)
    part = terminal.config.part(loop.part)
    message = decision.message
    drawn = decision.raise_request and code in terminal.reserve_cards
    if drawn:
        message = RESERVE_DRAWN.format(card=code, loop=loop.id)
        # A reserve drawn makes the line safe: the disruption-response clock of the loop's troubled
        # requests stops here, in the scan's own transaction (issue 18, scorecard).
        uow.supply.mark_safe(loop.id, at)
    outcome = ScanOutcome(
        decision.verdict,
        decision.kind,
        message,
        code,
        source,
        at,
        card_id=code,
        loop_id=loop.id,
        part_number=part.number,
        part_description=part.description,
        point_of_use=loop.point_of_use,
        request_id=request_id,
        reserve_drawn=drawn,
    )
    # A repeat read and a question (confirm this delivery?) are not refused input: `rejected` lists
    # what was refused, and a confirmation prompt there read as an error to maintenance.
    if decision.rejection is not None and decision.kind not in _NOT_REFUSED:
        _keep_rejected(uow, code, decision.message, source, at)
    uow.collect(ScanRecorded(outcome))
    if decision.changes_state:
        uow.collect(CardsChanged((code,)))
    if decision.raise_request and request_id is not None:
        uow.collect(RequestRaised(request_id, loop.id))
    return outcome


def _apply(
    terminal: Terminal,
    writes: ScanStore,
    card: CardSnapshot,
    decision: ScanDecision,
    source: str,
    actor: str | None,
    now: datetime,
    at: datetime,
) -> str | None:
    """Write the decision into the open transaction; return the request id it concerns."""
    request_id = card.open_request.request_id if card.open_request else None
    if not decision.changes_state:
        return request_id
    loop = terminal.card_loops[card.card_id]
    if decision.raise_request:
        request_id = terminal.new_id()
        writes.insert_request(
            request_id=request_id,
            card_id=card.card_id,
            loop_id=loop.id,
            loop_seq=writes.take_loop_seq(loop.id),
            part_number=loop.part,
            quantity=loop.container_quantity,
            station=loop.station,
            point_of_use=loop.point_of_use,
            source=writes.source_of(loop.id, loop.source),
            raised_at=at,
            due_at=at + loop.terms.planned_lead_time,
            status=_QUEUED,
        )
    open_request_id = request_id
    if decision.delivered_request_id:
        lead_s = decision.lead_time.total_seconds() if decision.lead_time else None
        writes.close_request(decision.delivered_request_id, status="delivered", at=at, lead_time_s=lead_s)
        open_request_id = None
    for step in decision.transitions:
        writes.append_log(_log_row(step, loop.id, request_id, source, actor, now, decision))
    if decision.raise_request and card.card_id in terminal.reserve_cards:
        writes.append_log(reserve_drawn_row(card.card_id, loop.id, request_id, source, actor, now, at))
    writes.update_card(
        card.card_id,
        state=decision.transitions[-1].to_state._value_,
        at=at,
        open_request_id=open_request_id,
    )
    return request_id


def _log_row(
    step: Transition,
    loop_id: str,
    request_id: str | None,
    source: str,
    actor: str | None,
    now: datetime,
    decision: ScanDecision,
) -> card_log.LogEntry:
    detail = ""
    if step.event is CardEvent.DELIVERED and decision.lead_time is not None:
        detail = f"lead time {whole_seconds(decision.lead_time)} s"
    return card_log.LogEntry(
        occurred_at=step.at,
        recorded_at=now,
        event=step.event._value_,
        card_id=step.card_id,
        loop_id=loop_id,
        from_state=step.from_state._value_,
        to_state=step.to_state._value_,
        request_id=request_id,
        actor=actor,
        source=escape_external(source, 80),
        detail=detail,
    )


def _shown(terminal: Terminal, raw: str) -> str:
    code = normalise_code(raw, terminal.config.terminal.max_code_length)
    return code.escaped_input if isinstance(code, InputRejection) else code


def _reject_unknown(terminal: Terminal, uow: UnitOfWork, code: str, source: str, at: datetime) -> ScanOutcome:
    shown = escape_external(code, 60)
    from kanban_terminal.services.auth import person  # a refusal's path only (serve logs nobody in)

    if person(terminal, code) is not None:  # e.g. a badge scanned while a PIN field had focus
        reason = f"{shown} is a badge, not a kanban card: no refill requested."
        return _reject_input(uow, shown, reason, source, at, OutcomeKind.UNKNOWN_CARD)
    if terminal.config.terminal.require_check_character and not has_valid_check(code):
        hint = layout_mismatch_hint(code)
        reason = f"Misread: {shown} is not a valid card code. Scan again."
        if hint:
            reason += f" {hint} Call maintenance."
        return _reject_input(uow, shown, reason, source, at, OutcomeKind.MISREAD)
    reason = (
        f"Unknown card {shown}: not registered on line {terminal.config.line.id}. "
        "Is it from another line? Give it to the team lead."
    )
    return _reject_input(uow, shown, reason, source, at, OutcomeKind.UNKNOWN_CARD)


def _reject_input(
    uow: UnitOfWork, shown: str, reason: str, source: str, at: datetime, kind: OutcomeKind
) -> ScanOutcome:
    _keep_rejected(uow, shown, reason, source, at)
    outcome = ScanOutcome(Verdict.REJECTED, kind, reason, shown, source, at)
    uow.collect(ScanRecorded(outcome))
    return outcome


def _keep_rejected(uow: UnitOfWork, shown: str, reason: str, source: str, at: datetime) -> None:
    """Keep a rejected input for maintenance, in the scan's unit of work."""
    uow.rejected.add(at=at, source=escape_external(source, 80), shown=shown, reason=reason)
