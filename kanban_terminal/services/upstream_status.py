"""Upstream's answers to a request (accepted, rejected, picked, shipped) applied to the card.

Any answer for a request id means upstream has the request, so the outbox row is `done` and the relay
stops re-publishing it. The card moves only forward: the domain's `PROGRESS` ranks refuse an older
status that arrives late (a redelivery, or a duplicate answer to a re-published request), and that
refusal is logged, not shown as an error. Unknown request ids are logged and kept in
`rejected_input`; they change nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.signals import parse_json_object, parse_time
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.errors import STORAGE_ERRORS
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_STATUS_BYTES = 2048
_STATUS_EVENTS = {
    "accepted": CardEvent.ACCEPTED,
    "picked": CardEvent.PICKED,
    "shipped": CardEvent.SHIPPED,
    "rejected": CardEvent.REJECTED_UPSTREAM,
}
_RANK = {"accepted": 2, "picked": 3, "shipped": 4, "rejected": 5}
_UUID = re.compile(r"^[0-9a-fA-F-]{36}$")


@dataclass(frozen=True)
class UpstreamStatus:
    """A validated status message from upstream."""

    id: str
    request_id: str
    status: str
    at: datetime
    eta: datetime | None = None
    reason: str = ""
    by: str = ""


@dataclass(frozen=True)
class StatusApplied:
    """What applying one status did: `moved` is False for a stale, duplicate or unknown one."""

    request_id: str
    status: str
    moved: bool
    note: str


def parse_status(payload: bytes) -> UpstreamStatus | str:
    """Validate a status payload; return it or the reason it is refused. Never raises."""
    data = parse_json_object(payload, MAX_STATUS_BYTES)
    if isinstance(data, str):
        return data
    if data.get("v") != 1 or isinstance(data.get("v"), bool):
        return "unsupported schema version (expected 1)"
    status = data.get("status")
    if not isinstance(status, str) or status not in _STATUS_EVENTS:  # [] or {} is unhashable
        return "status must be accepted, rejected, picked or shipped"
    request_id, event_id = data.get("request_id"), data.get("id")
    if not isinstance(request_id, str) or not _UUID.match(request_id):
        return "request_id must be a UUID"
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 64:
        return "id must be a string of 1-64 characters"
    at = parse_time(data.get("at"))
    if at is None:
        return "at must be an ISO 8601 UTC timestamp"
    eta = None
    if data.get("eta") is not None:
        eta = parse_time(data["eta"])
        if eta is None:
            return "eta must be an ISO 8601 UTC timestamp or null"
    reason, by = data.get("reason") or "", data.get("by") or ""
    if not isinstance(reason, str) or not isinstance(by, str):
        return "reason and by must be strings"
    return UpstreamStatus(
        event_id, request_id, status, at, eta, escape_external(reason, 120), escape_external(by, 64)
    )


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
        if applied.moved:
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
        uow.rejected.add(at=now, source="upstream", shown=status.request_id, reason=note)
        log.warning("%s (from %s)", note, status.by or "upstream")
        return unmoved(note)
    card_id, upstream_status, closed_at, request_status = request
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
    detail = f"by {status.by}" if status.by else ""
    if status.eta is not None:
        detail += f" eta {status.eta.isoformat(timespec='seconds')}"
    if status.reason:
        detail += f" reason: {status.reason}"
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


def try_apply_status(terminal: Terminal, payload: bytes, topic: str) -> bool:
    """Parse and apply one status message. Returns False only when it could not be stored (no ack)."""
    parsed = parse_status(payload)
    if isinstance(parsed, str):
        log.warning("status refused on %s: %s", escape_external(topic, 120), parsed)
        return True
    try:
        apply_upstream_status(terminal, parsed)
    except STORAGE_ERRORS as exc:
        log.error("status for %s not stored: %s", parsed.request_id, exc)
        return False
    return True
