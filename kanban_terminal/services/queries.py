"""Read models for screens and `status`: the board, open requests and recent scans.

Frozen view rows built from one read snapshot; screens only display them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from kanban_terminal.domain.cards import OPEN_REQUEST_STATES, CardState
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow, CardRow, RejectedInputRow, RequestRow


@dataclass(frozen=True)
class LoopStatus:
    loop_id: str
    part_number: str
    description: str
    station: str
    point_of_use: str
    source: str
    cards: int
    by_state: dict[str, int]

    @property
    def waiting(self) -> int:
        """Cards whose bin is empty and not yet refilled."""
        return sum(n for s, n in self.by_state.items() if s == "empty" or s in OPEN_REQUEST_STATES)

    @property
    def urgency(self) -> float:
        """Empty cards / cards in the loop (the SAP kanban board's urgency figure)."""
        return self.waiting / self.cards if self.cards else 0.0


@dataclass(frozen=True)
class OpenRequestView:
    request_id: str
    card_id: str
    loop_id: str
    part_number: str
    station: str
    point_of_use: str
    status: str
    raised_at: datetime
    due_at: datetime
    publish_state: str

    def age(self, now: datetime) -> timedelta:
        return now - self.raised_at

    def overdue(self, now: datetime) -> bool:
        return now > self.due_at


@dataclass(frozen=True)
class Status:
    loops: tuple[LoopStatus, ...]
    open_requests: tuple[OpenRequestView, ...]
    queued: int
    """Requests not yet accepted by the broker (still in the outbox)."""
    oldest_queued_at: datetime | None


def read_status(terminal: Terminal) -> Status:
    cfg = terminal.config
    with terminal.db.reading() as session:
        cards = session.exec(select(CardRow.loop_id, CardRow.state).where(col(CardRow.retired).is_(False)))
        per_loop: dict[str, Counter[str]] = {}
        for loop_id, state in cards:
            per_loop.setdefault(loop_id, Counter())[state] += 1
        requests = session.exec(
            select(RequestRow).where(col(RequestRow.closed_at).is_(None)).order_by(col(RequestRow.raised_at))
        ).all()
    loops = tuple(
        LoopStatus(
            loop_id=loop.id,
            part_number=loop.part,
            description=cfg.part(loop.part).description,
            station=loop.station,
            point_of_use=loop.point_of_use,
            source=loop.source,
            cards=sum(per_loop.get(loop.id, Counter()).values()),
            by_state=dict(per_loop.get(loop.id, Counter())),
        )
        for loop in cfg.loops
    )
    views = tuple(
        OpenRequestView(
            r.id,
            r.card_id,
            r.loop_id,
            r.part_number,
            r.station,
            r.point_of_use,
            r.status,
            r.raised_at,
            r.due_at,
            r.publish_state,
        )
        for r in requests
    )
    pending = [v for v in views if v.publish_state == "pending"]
    return Status(loops, views, len(pending), min((v.raised_at for v in pending), default=None))


@dataclass(frozen=True)
class LogLine:
    occurred_at: datetime
    event: str
    card_id: str | None
    from_state: str | None
    to_state: str | None
    source: str
    detail: str


def recent_log(terminal: Terminal, limit: int = 20) -> list[LogLine]:
    """The newest card-log rows, newest first (after a restart this shows what was committed)."""
    with terminal.db.reading() as session:
        rows = session.exec(select(CardLogRow).order_by(col(CardLogRow.id).desc()).limit(limit)).all()
    return [
        LogLine(r.occurred_at, r.event, r.card_id, r.from_state, r.to_state, r.source, r.detail) for r in rows
    ]


def card_state(terminal: Terminal, card_id: str) -> CardState | None:
    with terminal.db.reading() as session:
        card = session.get(CardRow, card_id)
    return CardState(card.state) if card else None


def rejected_inputs(terminal: Terminal, limit: int = 50) -> list[RejectedInputRow]:
    """Refused input for maintenance, newest first (stored escaped: safe to print)."""
    with terminal.db.reading() as session:
        return list(
            session.exec(
                select(RejectedInputRow).order_by(col(RejectedInputRow.id).desc()).limit(limit)
            ).all()
        )
