"""Shift handover: the sheet of what the new shift takes over, and its acknowledgement (issue 18).

`read_sheet` gathers the facts (open andons, loops at risk, suspended and lost cards) for the shift
running now in the plant's calendar (`[site]` zone and shifts); `acknowledge_handover` lets the
incoming team lead (badge + PIN) take it over once per shift, as one `handover_acknowledged` card-log
row whose detail is the sheet's summary, and `HandoverTaken` on the bus for upstream (the link
publishes it). A handover is due from a shift's start until that row exists.

Reads through services and storage; decides through domain/handover.py; writes one unit of work.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kanban_terminal.domain.handover import HandoverSheet, LoopRisk, at_risk, decide_acknowledge
from kanban_terminal.services.andon import authority
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession
from kanban_terminal.services.events import HandoverTaken
from kanban_terminal.services.queries import read_status
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log, card_reads, handover_rows
from kanban_terminal.storage.log_reads import LogFilter, read_page
from kanban_terminal.storage.types import to_text

EVENT = handover_rows.EVENT


def handover_payload(terminal: Terminal, sheet: HandoverSheet, badge: str, at: datetime) -> dict[str, Any]:
    return {
        "v": 1,
        "line": terminal.config.line.id,
        "terminal": terminal.config.terminal.id,
        "at": to_text(at),
        "actor": badge,
        "production_day": sheet.day.isoformat(),
        "shift": sheet.shift,
        "shift_start": to_text(sheet.shift_start),
        "open_andons": list(sheet.open_andons),
        "loops_at_risk": [r.line() for r in sheet.loops_at_risk],
        "suspended_cards": list(sheet.suspended_cards),
        "lost_cards": list(sheet.lost_cards),
        "summary": sheet.summary(),
    }


@dataclass(frozen=True)
class HandoverOutcome:
    ok: bool
    message: str
    sheet: HandoverSheet


@dataclass(frozen=True)
class ShiftNow:
    """The plant's shift running now: found from the clock and `[site]` alone, no database read."""

    day: date
    shift: int
    start: datetime
    label: str
    """`shift 2 of 2026-03-02 (from 14:00 Europe/Berlin)`."""


def shift_now(terminal: Terminal) -> ShiftNow:
    cal = terminal.config.site.calendar
    day, shift = cal.shift_of(terminal.clock())
    label = f"shift {shift} of {day.isoformat()} (from {cal.start_label(shift)} {cal.zone_name})"
    return ShiftNow(day, shift, cal.shift_start(day, shift), label)


def taken_by(terminal: Terminal, shift_start: datetime) -> str | None:
    """Who took over the shift that started at `shift_start`, None while its handover is due (one
    indexed log read: what the screen's once-a-minute check needs, without building the sheet)."""
    with terminal.db.reading() as session:
        return handover_rows.taken_by(session, shift_start)


def read_sheet(terminal: Terminal) -> HandoverSheet:
    """The handover sheet of the shift running now."""
    now = terminal.clock()
    cal = terminal.config.site.calendar
    current = shift_now(terminal)
    day, shift, start, label = current.day, current.shift, current.start, current.label
    andons = tuple(
        f"{v.andon.kind.value.upper()} {v.andon.station} {v.reason_label} since "
        f"{cal.local(v.andon.raised_at):%Y-%m-%d %H:%M} ({v.andon.state.value.replace('_', ' ')})"
        for v in read_board(terminal).line.active
    )
    status = read_status(terminal)
    overdue = Counter(r.loop_id for r in status.open_requests if r.due_at < now)
    low = {r.loop.id: r.runway.hours for r in status.runways if r.runway.at_risk}
    risks = at_risk(
        LoopRisk(s.loop_id, s.waiting, s.cards, overdue[s.loop_id], _minutes(low, s.loop_id))
        for s in status.loops
    )
    cards = card_reads.circulating_cards(terminal.db, ("suspended", "lost"))
    suspended = tuple(sorted(c.id for c in cards if c.state == "suspended"))
    lost = tuple(sorted(c.id for c in cards if c.state == "lost"))
    drawn = read_page(terminal.db, LogFilter(events=("reserve_drawn",), since=start - timedelta(hours=24)))
    draws = tuple(
        f"{e.card_id} ({e.loop_id}) at {cal.local(e.occurred_at):%Y-%m-%d %H:%M}" for e in drawn.entries
    )
    return HandoverSheet(day, shift, label, start, andons, risks, suspended, lost, draws)


def acknowledged_by(terminal: Terminal, sheet: HandoverSheet) -> str | None:
    """Who took over `sheet`'s shift, None while the handover is still due."""
    return taken_by(terminal, sheet.shift_start)


def acknowledge_handover(terminal: Terminal, *, auth: AuthSession | None, source: str) -> HandoverOutcome:
    """The incoming team lead takes the shift over: one log row with the sheet's summary."""
    sheet = read_sheet(terminal)
    badge, authorised = authority(terminal, auth, source)
    now = terminal.clock()
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        # Checked in the write transaction: two take-overs at once cannot both find the shift open.
        taken = handover_rows.taken_by(uow.session, sheet.shift_start)
        refusal = decide_acknowledge(sheet, taken, badge, authorised=authorised)
        if refusal is not None or badge is None:
            message = refusal.message if refusal else "A team lead badge is needed."
            return HandoverOutcome(False, message, sheet)
        uow.log.append(
            card_log.LogEntry(occurred_at=now, recorded_at=now, event=EVENT, source=source, actor=badge,
                              detail=sheet.summary())
        )  # fmt: skip
        uow.collect(HandoverTaken(handover_payload(terminal, sheet, badge, now)))
    return HandoverOutcome(True, f"{badge} took over {sheet.summary()}.", sheet)


def _minutes(low: dict[str, float | None], loop_id: str) -> float | None:
    """The runway in minutes of a loop at risk (0 when no use is in sight yet it is at risk)."""
    if loop_id not in low:
        return None
    hours = low[loop_id]
    return hours * 60 if hours is not None else 0.0
