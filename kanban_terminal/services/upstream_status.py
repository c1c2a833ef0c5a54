"""Upstream's answers to a request (accepted, rejected, picked, shipped) applied to the card.

Any answer for a request id means upstream has the request, so the outbox row is `done` and the relay
stops re-publishing it. The card moves only forward: the domain's `PROGRESS` ranks refuse an older
status that arrives late (a redelivery, or a duplicate answer to a re-published request), and that
refusal is logged, not shown as an error. Unknown request ids are logged and kept in
`rejected_input`; they change nothing. The message itself was validated by the wire schema
(adapters/wire) before it became the `UpstreamStatus` applied here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.outbox import log_sent_only
from kanban_terminal.services.supplier_trouble import WARNINGS, apply_cancelled, apply_warning, status_detail
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

__all__ = ["StatusApplied", "UpstreamStatus", "apply_upstream_status"]

_STATUS_EVENTS = {
    "accepted": CardEvent.ACCEPTED,
    "picked": CardEvent.PICKED,
    "shipped": CardEvent.SHIPPED,
    "rejected": CardEvent.REJECTED_UPSTREAM,
}
STATUS_DOOR = "mqtt:status"
"""Where statuses come in: the door of a refused or unknown-request status in `rejected_input`."""
_RANK = {"accepted": 2, "picked": 3, "shipped": 4, "rejected": 5}


@dataclass(frozen=True)
class StatusApplied:
    """What applying one status did: `moved` is False for a stale, duplicate or unknown one."""

    request_id: str
    status: str
    moved: bool
    note: str


def apply_upstream_status(terminal: Terminal, status: UpstreamStatus) -> StatusApplied:
    """Apply one upstream status in one transaction and announce the card change after the commit.

    Plain SQL in the unit of work (storage/outbox.py), as the scan path: through the ORM
    (two rows loaded, changed and flushed, a log row built) a status cost ~4 ms of CPU, and each
    request gets three of them (accepted, picked, shipped), 12 of the ~15 ms a request cost a
    terminal end to end (bench scale figure, per-thread CPU).

    Raises:
        sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: nothing was stored; the message must not be
            acknowledged.
    """
    now = terminal.clock()
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        applied = _apply(uow, status, now)
        if applied.moved and applied.result.status not in WARNINGS:  # a warning collected its own
            uow.collect(CardsChanged((applied.card_id,)))
    return applied.result


@dataclass(frozen=True)
class _Applied:
    result: StatusApplied
    card_id: str = ""

    @property
    def moved(self) -> bool:
        return self.result.moved


def _apply(uow: UnitOfWork, status: UpstreamStatus, now: datetime) -> _Applied:
    def unmoved(note: str) -> _Applied:
        return _Applied(StatusApplied(status.request_id, status.status, False, note))

    request = uow.outbox.answered(status.request_id)
    if request is None:
        note = f"status {status.status} for unknown request {status.request_id}"
        uow.rejected.add(at=now, source=STATUS_DOOR, shown=status.request_id, reason=note)
        uow.rejected.trim([STATUS_DOOR])  # a flood of made-up request ids must not grow the table
        log.warning("%s (from %s)", note, status.by or "upstream")
        return unmoved(note)
    card_id, upstream_status, closed_at, request_status, publish_state = request
    if publish_state == "pending":
        _sent_before_acknowledged(uow, status.request_id, card_id, now)
    if status.status in WARNINGS:  # an annotation of the open request, never a move (issue 18)
        warned = apply_warning(uow, status, card_id, closed_at is not None, now)
        result = StatusApplied(status.request_id, status.status, bool(warned.card_id), warned.note)
        return _Applied(result, warned.card_id)
    if status.status == "cancelled":
        return unmoved(apply_cancelled(uow, status))
    if _RANK[status.status] <= _RANK.get(upstream_status or "", 0):
        note = f"older or repeated status {status.status} ignored (have {upstream_status})"
        log.info("request %s: %s", status.request_id, note)
        return unmoved(note)
    uow.outbox.record_upstream(status.request_id, status.status, status.at, status.eta)
    card = uow.outbox.card_of_answer(card_id)
    if closed_at is not None or card is None or card[2] != status.request_id:
        return unmoved(f"status {status.status} recorded; request already closed ({request_status})")
    loop_id, state, _ = card
    step = transition(card_id, CardState(state), _STATUS_EVENTS[status.status], status.at)
    if isinstance(step, Rejection):
        note = f"status {status.status} does not move a card that is {state}"
        log.info("request %s: %s", status.request_id, note)
        return unmoved(note)
    detail = status_detail(status.by, status.eta, status.reason)
    uow.log.append(
        card_log.LogEntry(
            occurred_at=status.at,
            recorded_at=now,
            event=step.event.value,
            card_id=card_id,
            loop_id=loop_id,
            from_state=step.from_state.value,
            to_state=step.to_state.value,
            request_id=status.request_id,
            source="upstream",
            detail=detail.strip(),
        )
    )
    # A rejection closes the request: the bin is still empty, and the card waits for a new scan or
    # signal to ask again.
    uow.outbox.moved_by_upstream(
        status.request_id,
        card_id,
        status=status.status,
        state=step.to_state.value,
        at=status.at,
        closes=status.status == "rejected",
    )
    moved = StatusApplied(status.request_id, status.status, True, f"card {card_id} -> {status.status}")
    return _Applied(moved, card_id)


def _sent_before_acknowledged(uow: UnitOfWork, request_id: str, card_id: str, now: datetime) -> None:
    """Upstream answered a request whose broker acknowledgement was never recorded (the process
    died between the publish and the mark, issue 17): it did leave, so the log says so first, and a
    card still queued on it moves to sent as an acknowledgement would have moved it."""
    card = uow.outbox.card_of_answer(card_id)
    detail = "upstream answered before the broker's acknowledgement was recorded"
    if card is not None and card[2] == request_id:
        step = transition(card_id, CardState(card[1]), CardEvent.REQUEST_SENT, now)
        if not isinstance(step, Rejection):
            uow.log.append(
                card_log.LogEntry(
                    occurred_at=now, recorded_at=now, event=step.event.value, card_id=card_id,
                    loop_id=card[0], from_state=step.from_state.value, to_state=step.to_state.value,
                    request_id=request_id, source="relay", detail=detail,
                )
            )  # fmt: skip
            uow.outbox.cards_sent([card_id], now)
            return
    log_sent_only(uow, request_id, card_id, card[0] if card is not None else None, now, detail)
