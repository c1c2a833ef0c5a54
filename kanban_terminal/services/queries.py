"""Read models for screens and `status`: the board, open requests and recent scans.

Frozen view rows built from one read snapshot; screens only display them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kanban_terminal.domain.andon import elapsed_since_raise
from kanban_terminal.domain.cards import OPEN_REQUEST_STATES, CardState
from kanban_terminal.domain.clocks import ElapsedAnchor
from kanban_terminal.services.andon_elapsed import boot_id
from kanban_terminal.services.runway import LoopRunway, read_runways
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_reads, elapsed_anchors, supply_rows
from kanban_terminal.storage.tables import RejectedInputRow


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
    rerouted: bool = False
    """A team lead re-routed the loop: `source` is its second source."""

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
    source: str = ""
    eta: datetime | None = None
    """Upstream's expected arrival (shipped, or the new ETA of a delay)."""
    trouble: str | None = None
    """`delayed` or `at_risk` when upstream warned about this request."""
    trouble_reason: str | None = None
    elapsed: timedelta | None = None
    """Time since the raise on the monotonic clock as of the read, from the escalation runner's
    anchor `request:<id>` (services/escalation.py); None: no anchor, the wall clock decides."""
    read_mono_s: float | None = None
    """The monotonic reading `elapsed` is as of."""

    def age(self, now: datetime, mono_s: float | None = None) -> timedelta:
        """Time since the raise; with an anchor a wall-clock step moves it no more than it moves the
        material andon (which fires on the same elapsed time)."""
        if self.elapsed is None:
            return now - self.raised_at
        since_read = 0.0
        if mono_s is not None and self.read_mono_s is not None:
            since_read = max(0.0, mono_s - self.read_mono_s)
        return self.elapsed + timedelta(seconds=since_read)

    def overdue(self, now: datetime, mono_s: float | None = None) -> bool:
        if self.elapsed is None:
            return now > self.due_at
        return self.age(now, mono_s) > self.due_at - self.raised_at


@dataclass(frozen=True)
class Status:
    loops: tuple[LoopStatus, ...]
    open_requests: tuple[OpenRequestView, ...]
    queued: int
    """Requests not yet accepted by the broker (still in the outbox)."""
    oldest_queued_at: datetime | None
    runways: tuple[LoopRunway, ...] = ()
    """Every loop's runway, at-risk loops first, then shortest first (issue 18)."""


def read_status(terminal: Terminal) -> Status:
    cfg = terminal.config
    # Red cards are the loop's reserve, not its circulation: the runway column shows them (issue 18).
    per_loop, requests = card_reads.board(terminal.db, exclude=list(terminal.reserve_cards))
    with terminal.db.snapshot() as sql:
        routes = supply_rows.routes(sql)
        anchors = elapsed_anchors.load_raw(sql, [f"request:{r.id}" for r in requests])
    loops = tuple(
        LoopStatus(
            loop_id=loop.id,
            part_number=loop.part,
            description=cfg.part(loop.part).description,
            station=loop.station,
            point_of_use=loop.point_of_use,
            source=routes.get(loop.id, loop.source),
            cards=sum(per_loop.get(loop.id, Counter()).values()),
            by_state=dict(per_loop.get(loop.id, Counter())),
            rerouted=loop.id in routes,
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
            r.source,
            r.eta,
            r.trouble,
            r.trouble_reason,
        )
        for r in requests
    )
    views = _with_elapsed(terminal, views, anchors)
    pending = [v for v in views if v.publish_state == "pending"]
    oldest = min((v.raised_at for v in pending), default=None)
    return Status(loops, views, len(pending), oldest, tuple(read_runways(terminal)))


def _with_elapsed(
    terminal: Terminal, views: tuple[OpenRequestView, ...], anchors: dict[str, ElapsedAnchor]
) -> tuple[OpenRequestView, ...]:
    """The requests' elapsed time from their anchors, where the runtime keeps one (open requests not
    yet called; once a material call is raised the request is overdue and the wall age is shown)."""
    if not anchors:
        return views
    now, mono = terminal.clock(), terminal.monotonic()
    elapsed = {
        v.request_id: elapsed_since_raise([anchors.get(f"request:{v.request_id}")], boot_id(), mono, now)
        for v in views
    }
    return tuple(replace(v, elapsed=elapsed[v.request_id], read_mono_s=mono) for v in views)


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
    rows = card_reads.newest_log_rows(terminal.db, limit)
    return [
        LogLine(r.occurred_at, r.event, r.card_id, r.from_state, r.to_state, r.source, r.detail) for r in rows
    ]


def card_state(terminal: Terminal, card_id: str) -> CardState | None:
    card = card_reads.card(terminal.db, card_id)
    return CardState(card.state) if card else None


def rejected_inputs(terminal: Terminal, limit: int = 50) -> list[RejectedInputRow]:
    """Refused input for maintenance, newest first (stored escaped: safe to print)."""
    return card_reads.rejected_inputs(terminal.db, limit)
