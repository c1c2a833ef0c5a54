"""Delivery in full: short or damaged parts recorded at the delivery scan (issue 17).

Right after a card's delivery scan the operator may say how many parts were short and how many
damaged (the screen's dialog, `scan CODE --short N --damaged M`). In one transaction the delivered
request keeps both figures (the scorecard's OTIF reads them: in full means neither), the card log gets
a row for each, a short delivery raises a request for the shortfall on the same card (the card goes
back to `queued`, quantity = the shortfall), and damaged parts raise a quality CALL (reason
`[delivery] damage_reason`) at the loop's station, linked to the card. A second record for the same
delivery is refused: the first one stands, and the log says who made it.

It must not publish: the relay sends the shortfall request, the andon link the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.supply import DeliveryIssue, check_delivery_issue
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon import AndonChanged, LineStateChanged, raise_in
from kanban_terminal.services.andon_views import line_state, view_of
from kanban_terminal.services.events import CardsChanged, RequestRaised
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class DeliveryRecorded:
    """What recording a short or damaged delivery did, in words for the operator."""

    ok: bool
    message: str
    card_id: str
    shortfall_request_id: str | None = None
    andon_id: str | None = None


def record_delivery_issue(
    terminal: Terminal,
    card_id: str,
    *,
    short: int = 0,
    damaged: int = 0,
    source: str,
    actor: str | None = None,
    uow: UnitOfWork | None = None,
) -> DeliveryRecorded:
    """Record `short` missing and `damaged` parts on the card's last delivery (it must be in use again).

    Args:
        uow: the open unit of work the delivery scan itself was recorded in (`scan --short`: both in
            one transaction, which the caller commits); None: a unit of work of its own.

    Returns:
        The outcome; `ok` False with the reason when nothing was recorded.
    """
    card_id = card_id.strip().upper()
    loop = terminal.card_loops.get(card_id)
    if loop is None:
        return DeliveryRecorded(False, f"Unknown card {escape_external(card_id, 40)}.", card_id)
    issue = check_delivery_issue(loop.container_quantity, short, damaged)
    if isinstance(issue, Rejection):
        return DeliveryRecorded(False, issue.message, card_id)
    if uow is not None:
        return _record(terminal, uow, card_id, issue, source, actor)
    with terminal.db.unit_of_work(release=terminal.bus.publish) as own:
        return _record(terminal, own, card_id, issue, source, actor)


def _record(
    terminal: Terminal, uow: UnitOfWork, card_id: str, issue: DeliveryIssue, source: str, actor: str | None
) -> DeliveryRecorded:
    now = terminal.clock()
    loop = terminal.card_loops[card_id]
    card = uow.scans.read_card(card_id)
    delivered = uow.supply.last_delivered(card_id)
    state = CardState(card.state) if card is not None else None
    if state is not CardState.IN_USE or delivered is None:
        message = f"Card {card_id} has no delivery to record: scan it on arrival first."
        return DeliveryRecorded(False, message, card_id)
    if delivered.recorded:
        message = f"Short or damaged is already recorded for card {card_id}'s last delivery."
        return DeliveryRecorded(False, message, card_id)
    uow.supply.record_delivery(delivered.request_id, short=issue.short, damaged=issue.damaged)
    door = escape_external(source, 80)

    def row(event: CardEvent, to: CardState, request_id: str, detail: str) -> card_log.LogEntry:
        return card_log.LogEntry(
            occurred_at=now, recorded_at=now, event=event.value, card_id=card_id, loop_id=loop.id,
            from_state=CardState.IN_USE.value, to_state=to.value, request_id=request_id, actor=actor,
            source=door, detail=detail,
        )  # fmt: skip

    if issue.damaged:
        uow.log.append(row(CardEvent.DELIVERED_DAMAGED, CardState.IN_USE, delivered.request_id,
                           f"{issue.damaged} of {delivered.quantity} damaged"))  # fmt: skip
    shortfall_id = None
    if issue.short:
        step = transition(card_id, CardState.IN_USE, CardEvent.SHORT_DELIVERED, now)
        assert not isinstance(step, Rejection)
        shortfall_id = _raise_shortfall(terminal, uow, card_id, issue.short, delivered.request_id, now)
        uow.log.append(row(CardEvent.SHORT_DELIVERED, step.to_state, shortfall_id,
                           f"{issue.short} of {delivered.quantity} short on request "
                           f"{delivered.request_id}: shortfall requested"))  # fmt: skip
        uow.scans.update_card(card_id, state=step.to_state.value, at=now, open_request_id=shortfall_id)
        uow.collect(RequestRaised(shortfall_id, loop.id))
        uow.collect(CardsChanged((card_id,)))
    call = _quality_call(terminal, uow, card_id, actor, source, now) if issue.damaged else None
    andon_id = call if isinstance(call, str) else None
    called = f"no quality call ({call.message})" if isinstance(call, Rejection) else "quality called"
    words = [f"{issue.short} short: the shortfall is requested" if issue.short else "",
             f"{issue.damaged} damaged: {called}" if issue.damaged else ""]  # fmt: skip
    message = f"Card {card_id}: " + "; ".join(w for w in words if w) + "."
    return DeliveryRecorded(True, message, card_id, shortfall_id, andon_id)


def _raise_shortfall(
    terminal: Terminal, uow: UnitOfWork, card_id: str, quantity: int, of: str, now: datetime
) -> str:
    loop = terminal.card_loops[card_id]
    request_id = terminal.new_id()
    uow.scans.insert_request(
        request_id=request_id, card_id=card_id, loop_id=loop.id, loop_seq=uow.scans.take_loop_seq(loop.id),
        part_number=loop.part, quantity=quantity, station=loop.station, point_of_use=loop.point_of_use,
        source=uow.scans.source_of(loop.id, loop.source), raised_at=now,
        due_at=now + loop.terms.planned_lead_time, status=CardState.QUEUED.value,
    )  # fmt: skip
    uow.supply.mark_shortfall(request_id, of)
    return request_id


def _quality_call(
    terminal: Terminal, uow: UnitOfWork, card_id: str, actor: str | None, source: str, now: datetime
) -> str | Rejection:
    """A quality CALL about the damaged parts, last in the unit (it writes through the ORM session)."""
    cfg = terminal.config
    code = cfg.delivery.damage_reason
    if all(r.code != code for r in cfg.andon_reasons):  # the damage is recorded, nothing raised
        return Rejection("no_reason", f"andon reason {code} is not configured")
    loop = terminal.card_loops[card_id]
    andon = raise_in(
        terminal, uow, kind=AndonKind.CALL, station=loop.station, reason=cfg.delivery.damage_reason,
        source=source, actor=actor, authorised=False, now=now, at=now, card_id=card_id,
    )  # fmt: skip
    if isinstance(andon, Rejection):
        return andon
    uow.collect(AndonChanged("raised", view_of(terminal, andon), actor, now))
    uow.collect(LineStateChanged(line_state(terminal, uow, now)))
    return andon.id
