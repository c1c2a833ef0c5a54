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

from sqlalchemy.exc import SQLAlchemyError

from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.signals import parse_json_object, parse_time
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import CardLogRow, CardRow, RejectedInputRow, RequestRow

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

    Raises:
        sqlalchemy.exc.SQLAlchemyError: nothing was stored; the message must not be acknowledged.
    """
    now = terminal.clock()
    card_id: str | None = None
    with terminal.db.transaction() as session:
        request = session.get(RequestRow, status.request_id)
        if request is None:
            note = f"status {status.status} for unknown request {status.request_id}"
            session.add(RejectedInputRow(at=now, source="upstream", input=status.request_id, reason=note))
            log.warning("%s (from %s)", note, status.by or "upstream")
            return StatusApplied(status.request_id, status.status, False, note)
        # Any answer means upstream holds the request: stop re-publishing it.
        request.publish_state = "done"
        if _RANK[status.status] <= _RANK.get(request.upstream_status or "", 0):
            note = f"older or repeated status {status.status} ignored (have {request.upstream_status})"
            log.info("request %s: %s", request.id, note)
            return StatusApplied(request.id, status.status, False, note)
        request.upstream_status = status.status
        request.upstream_at = status.at
        if status.eta is not None:
            request.eta = status.eta
        card = session.get(CardRow, request.card_id)
        if request.closed_at is not None or card is None or card.open_request_id != request.id:
            note = f"status {status.status} recorded; request already closed ({request.status})"
            return StatusApplied(request.id, status.status, False, note)
        step = transition(card.id, CardState(card.state), _STATUS_EVENTS[status.status], status.at)
        if isinstance(step, Rejection):
            note = f"status {status.status} does not move a card that is {card.state}"
            log.info("request %s: %s", request.id, note)
            return StatusApplied(request.id, status.status, False, note)
        detail = f"by {status.by}" if status.by else ""
        if status.eta is not None:
            detail += f" eta {status.eta.isoformat(timespec='seconds')}"
        if status.reason:
            detail += f" reason: {status.reason}"
        card_log.append(
            session,
            CardLogRow(
                occurred_at=status.at,
                recorded_at=now,
                event=step.event.value,
                card_id=card.id,
                loop_id=card.loop_id,
                from_state=step.from_state.value,
                to_state=step.to_state.value,
                request_id=request.id,
                source="upstream",
                detail=detail.strip(),
            ),
        )
        card.state = step.to_state.value
        card.state_since = status.at
        request.status = status.status
        if status.status == "rejected":
            # The bin is still empty: the card waits for a new scan or signal to ask again.
            request.closed_at = status.at
            card.open_request_id = None
        card_id = card.id
    terminal.bus.publish(CardsChanged((card_id,)))
    return StatusApplied(status.request_id, status.status, True, f"card {card_id} -> {status.status}")


def try_apply_status(terminal: Terminal, payload: bytes, topic: str) -> bool:
    """Parse and apply one status message. Returns False only when it could not be stored (no ack)."""
    parsed = parse_status(payload)
    if isinstance(parsed, str):
        log.warning("status refused on %s: %s", escape_external(topic, 120), parsed)
        return True
    try:
        apply_upstream_status(terminal, parsed)
    except SQLAlchemyError as exc:
        log.error("status for %s not stored: %s", parsed.request_id, exc)
        return False
    return True
