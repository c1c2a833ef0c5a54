"""The andon screen: events needing attention with live durations, recent history, and the actions.

The scan field keeps the focus (a card scan still works here), so the list is driven by keys the
field does not use: Up/Down move the selection, F7 acknowledges, F8 resolves, F9 cancels a call,
Ctrl+S shelves the chattering device that raised it (team lead), Ctrl+O ends the team-lead session
(it also ends by itself after the configured idle time). `[keys]` in the config may remap them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from kanban_terminal.domain.andon import AndonKind, AndonState, tier_role
from kanban_terminal.tui.palette import ATTENTION, STOPPED
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import TerminalView
from kanban_terminal.tui.widgets.stop_banner import duration

if TYPE_CHECKING:  # types only: the services import the storage stack, not needed to paint (issue 15)
    from kanban_terminal.services.andon_views import AndonBoard, AndonView

STATE_WORDS = {
    AndonState.RAISED: "WAITING",
    AndonState.ACKNOWLEDGED: "Taken",
    AndonState.RESOLVED_UNACKNOWLEDGED: "Fixed, not acknowledged",
    AndonState.CLOSED: "Closed",
    AndonState.CANCELLED: "Cancelled",
}


def _table(table_id: str, cursor: Literal["row", "none"], columns: tuple[str, ...]) -> DataTable[Text | str]:
    table: DataTable[Text | str] = DataTable(id=table_id, cursor_type=cursor, zebra_stripes=True)
    table.can_focus = False  # the scan field keeps the keys
    table.add_columns(*columns)
    return table


AndonAction = Literal["acknowledge", "resolve", "cancel", "shelve"]


class AndonScreen(TerminalScreen):
    BINDINGS = [
        Binding("up", "select(-1)", "Up", show=False, id="andon.up"),
        Binding("down", "select(1)", "Down", show=False, id="andon.down"),
        Binding("f7", "act('acknowledge')", "Acknowledge", id="andon.acknowledge"),
        Binding("f8", "act('resolve')", "Resolve", id="andon.resolve"),
        Binding("f9", "act('cancel')", "Cancel call", id="andon.cancel"),
        Binding("ctrl+s", "act('shelve')", "Shelve device", id="andon.shelve"),
        Binding("ctrl+o", "end_session", "Log out", id="andon.logout"),
    ]

    @dataclass
    class Act(Message):
        """F7-F9, Ctrl+S: do `action` to the selected andon (the App asks for badge, PIN, note)."""

        action: AndonAction
        view: AndonView

    @dataclass
    class EndSession(Message):
        """Ctrl+O: log the team lead out at this terminal."""

    def compose_body(self) -> ComposeResult:
        with Vertical(id="andon"):
            yield Label("", classes="section-title", id="andon-title")
            # Columns from the start: a board may be shown before the tables have mounted.
            yield _table(
                "andon-active", "row", ("Kind", "Station", "Reason", "State", "For", "Responder", "Called")
            )
            yield Label("Recent", classes="section-title")
            yield _table("andon-history", "none", ("Kind", "Station", "Reason", "Outcome", "At", "Took"))

    def selected(self) -> AndonView | None:
        line = self.view.line if self.view else None
        rows = line.active if line else ()
        table = self.query_one("#andon-active", DataTable)
        if not rows:
            return None
        return rows[min(max(table.cursor_row, 0), len(rows) - 1)]

    def action_select(self, step: int) -> None:
        table = self.query_one("#andon-active", DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_act(self, action: AndonAction) -> None:
        view = self.selected()
        if view is None:
            self.notify("No andon selected: the list is empty.", severity="warning")
            return
        self.post_message(self.Act(action, view))

    def action_end_session(self) -> None:
        self.post_message(self.EndSession())

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        # Redrawn every second too (the App's clock tick): the durations run.
        if view.andon_board is not None:
            self.show_board(view.andon_board, view.now, view.auth_text, view.mono_s)

    def show_board(
        self, board: AndonBoard, now: datetime, auth_text: str, mono_s: float | None = None
    ) -> None:
        line = board.line
        title = (
            f"Line {line.condition.value.upper()}  -  {len(line.active)} needing attention  -  {auth_text}"
        )
        self.query_one("#andon-title", Label).update(title)
        table = self.query_one("#andon-active", DataTable)
        cursor = table.cursor_row
        table.clear()
        for v in line.active:
            a = v.andon
            waiting = a.state is AndonState.RAISED
            # Red for a stop only; a call waiting for someone is amber; the reason is plain text
            # (one colour per reason made a rainbow in which the stop no longer stood out).
            style = STOPPED if a.kind is AndonKind.STOP else (ATTENTION if waiting else "")
            called = ", ".join(tier_role(t).replace("_", " ") for t in v.tiers_fired)
            table.add_row(
                Text(a.kind.value.upper(), style=style),
                a.station,
                Text(v.reason_label),
                Text(STATE_WORDS[a.state], style="bold" if waiting else ""),
                duration(v.running(now, mono_s).total_seconds()),  # elapsed, or a stop's recorded downtime
                a.acknowledged_by or "",
                called,
                key=a.id,
            )
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1), scroll=False)
        history = self.query_one("#andon-history", DataTable)
        history.clear()
        for v in board.history:
            a = v.andon
            history.add_row(
                a.kind.value.upper(),
                a.station,
                v.reason_label,
                STATE_WORDS[a.state] + (f": {a.note}" if a.note else ""),
                f"{a.raised_at.astimezone():%H:%M}",
                duration(v.running(now).total_seconds()),
            )
