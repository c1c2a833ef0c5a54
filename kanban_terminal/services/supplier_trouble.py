"""Supplier trouble seen early: upstream's `delayed` / `at_risk` warnings, and its `cancelled` answers.

A warning annotates an open request; the card does not move (domain/cards.py `ANNOTATIONS`). It is a
card-log row, the request keeps the trouble, its reason, its new ETA and the first time trouble was
seen (the start of the disruption-response clock, domain/supply.py), and `SupplierWarned` goes out
after the commit so whatever computes the loop's runway recomputes at once. A `cancelled` answer
confirms a re-route's cancel and stops the cancel outbox re-sending it.

`promised_arrivals` is the read the runway uses: every open request with its quantity, due time and
upstream's ETA. It must not publish; the caller (services/upstream_status.py) owns the transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.domain.supply import Trouble, note_trouble
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log, supply_rows
from kanban_terminal.storage.supply_rows import Promise
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

WARNINGS = frozenset({Trouble.DELAYED.value, Trouble.AT_RISK.value})
_EVENTS = {Trouble.DELAYED.value: CardEvent.DELAYED, Trouble.AT_RISK.value: CardEvent.AT_RISK}


@dataclass(frozen=True)
class SupplierWarned:
    """Upstream warned about an open request (after the commit): recompute the loop's runway now."""

    request_id: str
    loop_id: str
    card_id: str
    trouble: str
    eta: datetime | None
    reason: str


@dataclass(frozen=True)
class Warned:
    """What applying one warning did; `card_id` is empty when it changed nothing."""

    note: str
    card_id: str = ""


def apply_warning(
    uow: UnitOfWork, status: UpstreamStatus, card_id: str, closed: bool, now: datetime
) -> Warned:
    """Record a `delayed` / `at_risk` warning about `status.request_id` (its card is `card_id`)."""
    if closed:
        return Warned(f"{status.status} for a request already closed: nothing to warn about")
    card = uow.outbox.card_of_answer(card_id)
    if card is None or card[2] != status.request_id:
        return Warned(f"{status.status} for a request that is no longer the card's open one")
    loop_id, state, _ = card
    event = _EVENTS[status.status]
    step = transition(card_id, CardState(state), event, status.at)
    if isinstance(step, Rejection):
        return Warned(f"{status.status} does not apply to a card that is {state}")
    trouble, reason, first_seen, eta = uow.supply.trouble_of(status.request_id)
    shown_reason = escape_external(status.reason, 200) if status.reason else ""
    if (trouble, reason or "", status.eta or eta) == (status.status, shown_reason, eta):
        return Warned(f"repeated {status.status} ignored")
    note = note_trouble(Trouble(status.status), status.at, status.eta, shown_reason, first_seen)
    if isinstance(note, Rejection):  # the wire schema refuses a delayed without ETA already
        return Warned(note.message)
    uow.supply.record_trouble(
        status.request_id,
        trouble=note.trouble.value,
        reason=note.reason,
        first_at=note.first_at,
        eta=note.eta,
    )
    detail = status_detail(status.by, note.eta, note.reason)
    uow.log.append(
        card_log.LogEntry(
            occurred_at=status.at,
            recorded_at=now,
            event=event.value,
            card_id=card_id,
            loop_id=loop_id,
            from_state=step.from_state.value,
            to_state=step.to_state.value,
            request_id=status.request_id,
            source="upstream",
            detail=detail.strip(),
        )
    )
    uow.collect(CardsChanged((card_id,)))
    uow.collect(SupplierWarned(status.request_id, loop_id, card_id, status.status, note.eta, note.reason))
    log.info("request %s: upstream says %s (%s)", status.request_id, status.status, detail.strip())
    return Warned(f"card {card_id} {status.status}", card_id)


def apply_cancelled(uow: UnitOfWork, status: UpstreamStatus) -> str:
    """Upstream confirmed a cancel: the cancel outbox stops re-sending it."""
    if uow.supply.cancel_answered(status.request_id, status.at):
        return "cancel confirmed by upstream"
    return "cancelled status for a request this terminal did not cancel (or already confirmed)"


def promised_arrivals(terminal: Terminal, loop_id: str | None = None) -> list[Promise]:
    """Every open request (of one loop, or all) as a promised arrival: quantity, due time, upstream's
    ETA (`Promise.expected_at` takes the ETA of a `delayed` over the due time) and any warning."""
    with terminal.db.snapshot() as sql:
        return supply_rows.promises(sql, loop_id)


def status_detail(by: str, eta: datetime | None, reason: str) -> str:
    """The card-log detail of an upstream status: who sent it, its ETA and reason (text for people;
    the facts themselves are in the request's columns). `by` comes from outside: escaped."""
    detail = f"by {escape_external(by, 64)}" if by else ""
    if eta is not None:
        detail += f" eta {eta.isoformat(timespec='seconds')}"
    if reason:
        detail += f" reason: {reason}"
    return detail
