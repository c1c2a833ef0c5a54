"""The outbox's use cases beside the relay thread: the request message, what the status bar shows
about the outbox, and what a broker's acknowledgement changes (rows published, cards sent).

The relay (services/relay.py) decides when; this module says what. The SQL is in storage/outbox.py.
It must not publish and must not import paho.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kanban_terminal.domain.cards import CardEvent, CardState, Transition, transition
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log, outbox
from kanban_terminal.storage.outbox import OutboxRow
from kanban_terminal.storage.tables import RequestRow
from kanban_terminal.storage.unit_of_work import UnitOfWork

_REQUEST_SENT = CardEvent.REQUEST_SENT.value


class Publisher(Protocol):
    """Where requests go: the MQTT link, or a test double."""

    @property
    def connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int: ...


def utc_text(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_payload(terminal: Terminal, row: RequestRow | OutboxRow) -> bytes:
    """The documented request message (docs/PROTOCOL.md); `id` is the idempotency key."""
    cfg = terminal.config
    # A red card's request (issue 18): the loop draws on its reserve, upstream serves it first.
    expedite = {"expedite": True} if row.card_id in terminal.reserve_cards else {}
    return json.dumps(
        {
            "v": 1,
            "id": row.id,
            "site": cfg.site.id,
            "line": cfg.line.id,
            "terminal": cfg.terminal.id,
            "loop": row.loop_id,
            "loop_seq": row.loop_seq,
            "card": row.card_id,
            "part": row.part_number,
            "quantity": row.quantity,
            "station": row.station,
            "point_of_use": row.point_of_use,
            "source": row.source,
            "raised_at": utc_text(row.raised_at),
            "due_at": utc_text(row.due_at),
            "attempt": row.publish_count + 1,
            **expedite,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class OutboxState:
    """What the status bar shows about the outbox."""

    queued: int
    """Requests upstream has not answered yet (pending or published)."""
    unsent: int
    """Requests the broker has not acknowledged yet (pending)."""
    oldest_at: datetime | None
    """When the oldest unanswered request was raised."""
    last_error: str
    """The last broker refusal, empty when none."""


def outbox_state(terminal: Terminal, last_error: str = "") -> OutboxState:
    """Count unanswered requests and find the oldest (one query on the outbox index)."""
    with terminal.db.snapshot() as sql:
        counts = outbox.counts(sql)
    return OutboxState(counts.queued, counts.unsent, counts.oldest_at, last_error)


def mark_acknowledged(uow: UnitOfWork, request_ids: list[str], now: datetime) -> list[str]:
    """The broker acknowledged these requests: rows published, their queued cards sent (through the
    domain's transition and the chained log), in `uow`. Returns the cards moved to sent.

    A request acknowledged for the first time gets its "request sent" row even when its card has
    moved on meanwhile (its full bin was signalled, or upstream answered, before this batch was
    marked): the crash soak found such requests at upstream with no sent row in the log (issue 17).
    """
    rows = uow.outbox.acknowledged(request_ids)
    uow.outbox.mark_published(request_ids, now)
    moved: list[str] = []
    for row in rows:
        step = None
        if row.moves_card:  # still queued on this request
            step = transition(row.card_id, CardState.QUEUED, CardEvent.REQUEST_SENT, now)
        if isinstance(step, Transition):
            uow.log.append(
                card_log.LogEntry(
                    occurred_at=now,
                    recorded_at=now,
                    event=step.event._value_,  # not `.value`: see services/scanning.py
                    card_id=row.card_id,
                    loop_id=row.loop_id,
                    from_state=step.from_state._value_,
                    to_state=step.to_state._value_,
                    request_id=row.request_id,
                    source="relay",
                    detail="broker acknowledged",
                )
            )
            moved.append(row.card_id)
        elif row.publish_state == "pending":
            detail = f"broker acknowledged; request already {row.status}"
            log_sent_only(uow, row.request_id, row.card_id, row.loop_id, now, detail)
    uow.outbox.cards_sent(moved, now)
    return moved


def log_sent_only(
    uow: UnitOfWork, request_id: str, card_id: str, loop_id: str | None, at: datetime, detail: str
) -> None:
    """A "request sent" row that moves no card: the request left, but its card is past `sent`."""
    uow.log.append(
        card_log.LogEntry(
            occurred_at=at,
            recorded_at=at,
            event=_REQUEST_SENT,
            card_id=card_id,
            loop_id=loop_id,
            request_id=request_id,
            source="relay",
            detail=detail,
        )
    )
