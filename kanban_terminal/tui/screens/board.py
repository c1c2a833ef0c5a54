"""The board: every loop with its cards by state and urgency, and the open requests with their age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from kanban_terminal.domain.cards import FLOOR_WORDS, CardState
from kanban_terminal.domain.supply import trouble_text
from kanban_terminal.tui.palette import ATTENTION
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import TerminalView

if TYPE_CHECKING:  # types only: the services import the storage stack, not needed to paint (issue 15)
    from kanban_terminal.services.queries import OpenRequestView, Status
    from kanban_terminal.services.runway import LoopRunway


def _age(seconds: float) -> str:
    # Never below zero: after the wall clock is set back (NTP, a person) a request raised "later"
    # than now read "-54 min" (issue floor80); the stop banner's duration does the same.
    minutes = int(max(0.0, seconds) // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _bar(fraction: float, width: int = 8) -> Text:
    """How many of the loop's cards wait, as a grey bar: waiting cards are the normal working of a
    kanban loop, not an alarm (ISA-101; issue 15 found orange bars on ordinary waiting cards). What
    is abnormal, an overdue request, is amber in the requests table."""
    filled = round(fraction * width)
    return Text("#" * filled + "." * (width - filled))


def _state(r: OpenRequestView) -> Text | str:
    """The request's state, or upstream's warning about it (delayed with its ETA, at risk) in colour."""
    warning = trouble_text(r.trouble, r.eta.astimezone() if r.eta else None, r.trouble_reason)
    return Text(warning, style=ATTENTION) if warning else FLOOR_WORDS[CardState(r.status)]


def _order(runway: LoopRunway | None, urgency: float, loop_id: str) -> tuple[object, ...]:
    """Sorted by runway (at risk first, shortest first); by urgency before the first runway is read."""
    return (*runway.sort_key, loop_id) if runway is not None else (1, float("inf"), -urgency, loop_id)


def runway_text(runway: LoopRunway | None) -> str:
    """`1.5 h`, `45 min`, `-` when no use is in sight; `RES 1/1` when the loop has a reserve."""
    if runway is None:
        return ""
    hours = runway.runway.hours
    text = "-" if hours is None else f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h"
    if runway.reserve_cards:
        text += f" RES {runway.reserve_full}/{runway.reserve_cards}"
    return text


def _table(table_id: str, columns: tuple[str, ...]) -> DataTable[Text | str]:
    """A read-only table with its columns from the start: the board may refresh before it mounts."""
    table: DataTable[Text | str] = DataTable(id=table_id, cursor_type="none", zebra_stripes=True)
    table.can_focus = False
    table.add_columns(*columns)
    return table


class BoardScreen(TerminalScreen):
    BINDINGS = [
        Binding("f7", "card_action", "Suspend / resume card", id="board.card_action"),
        Binding("f9", "reroute", "Re-route loop", id="board.reroute"),
    ]

    @dataclass
    class SuspendOrResumeCard(Message):
        """F7: a team lead wants to take a card out of circulation or put it back (the App asks
        for the badge and the card)."""

    @dataclass
    class RerouteLoop(Message):
        """F9: a team lead wants to send a loop to its second source, or back (the App asks)."""

    def action_reroute(self) -> None:
        self.post_message(self.RerouteLoop())

    def compose_body(self) -> ComposeResult:
        with Vertical(id="board"):
            yield Label("Loops", classes="section-title")
            # Urgency first: on an 80-column screen the description is what may scroll off, not the need.
            yield _table("loops", ("Loop", "Runway", "Waiting", "Urgency", "Part", "Where", "Description"))
            yield Label("Open requests", classes="section-title", id="requests-title")
            yield _table("requests", ("Card", "Part", "Where", "State", "Age", "Due"))

    def action_card_action(self) -> None:
        self.post_message(self.SuspendOrResumeCard())

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        # A new status (every poll, 2 s) is a new object: ages move with it, as before.
        if view.status is not None and (old is None or view.status is not old.status):
            self.show_status(view.status, view.now, view.mono_s)

    def show_status(self, status: Status, now: datetime, mono_s: float | None = None) -> None:
        loops = self.query_one("#loops", DataTable)
        loops.clear()
        runways = {r.loop.id: r for r in status.runways}
        for s in sorted(status.loops, key=lambda s: _order(runways.get(s.loop_id), s.urgency, s.loop_id)):
            runway = runways.get(s.loop_id)
            # ISA-101: only a loop at risk of running dry is in colour (amber); the rest stays plain.
            risk = ATTENTION if runway is not None and runway.runway.at_risk else ""
            loops.add_row(
                Text(
                    f"{s.loop_id} via {s.source}" if s.rerouted else s.loop_id,
                    style=risk or ("bold" if s.rerouted else ""),
                ),
                Text(runway_text(runway), style=risk),
                f"{s.waiting}/{s.cards}",
                _bar(s.urgency),
                s.part_number,
                s.point_of_use,
                s.description,
            )
        requests = self.query_one("#requests", DataTable)
        requests.clear()
        overdue = 0
        for r in status.open_requests:
            late = r.overdue(now, mono_s)  # elapsed where the runtime anchors it: a step moves none
            overdue += late
            style = ATTENTION if late else ""
            due = f"{r.due_at.astimezone():%H:%M}" + (" OVERDUE" if late else "")
            requests.add_row(
                Text(r.card_id, style=style),
                r.part_number,
                r.point_of_use,
                _state(r),
                Text(_age(r.age(now, mono_s).total_seconds()), style=style),
                Text(due, style=style),
            )
        title = f"Open requests: {len(status.open_requests)}"
        if overdue:
            title += f"  ({overdue} overdue)"
        self.query_one("#requests-title", Label).update(title)
