"""The andon screen: events needing attention with live durations, recent history, and the actions.

The scan field keeps the focus (a card scan still works here), so the list is driven by keys the
field does not use: Up/Down move the selection, F7 acknowledges, F8 resolves, F9 cancels a call,
Ctrl+S shelves the chattering device that raised it (team lead), F12 ends the team-lead session (it
also ends by itself after the configured idle time).
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from kanban_terminal.domain.andon import AndonKind, AndonState, tier_role
from kanban_terminal.services.andon_views import AndonBoard, AndonView
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.widgets.stop_banner import duration

STATE_WORDS = {
    AndonState.RAISED: "WAITING",
    AndonState.ACKNOWLEDGED: "Taken",
    AndonState.RESOLVED_UNACKNOWLEDGED: "Fixed, not acknowledged",
    AndonState.CLOSED: "Closed",
    AndonState.CANCELLED: "Cancelled",
}


class AndonScreen(TerminalScreen):
    BINDINGS = [
        Binding("up", "select(-1)", "Up", show=False, id="andon.up"),
        Binding("down", "select(1)", "Down", show=False, id="andon.down"),
        Binding("f7", "act('acknowledge')", "Acknowledge", id="andon.acknowledge"),
        Binding("f8", "act('resolve')", "Resolve", id="andon.resolve"),
        Binding("f9", "act('cancel')", "Cancel call", id="andon.cancel"),
        Binding("ctrl+s", "act('shelve')", "Shelve device", id="andon.shelve"),
        Binding("f12", "app.andon_logout", "Log out", id="andon.logout"),
    ]

    _tables_ready = False
    """Columns exist (set in on_mount); a board pushed before that waits for the next refresh."""

    def compose_body(self) -> ComposeResult:
        with Vertical(id="andon"):
            yield Label("", classes="section-title", id="andon-title")
            active: DataTable[Text | str] = DataTable(
                id="andon-active", cursor_type="row", zebra_stripes=True
            )
            active.can_focus = False
            yield active
            yield Label("Recent", classes="section-title")
            history: DataTable[Text | str] = DataTable(
                id="andon-history", cursor_type="none", zebra_stripes=True
            )
            history.can_focus = False
            yield history

    def on_mount(self) -> None:
        self.query_one("#andon-active", DataTable).add_columns(
            "Kind", "Station", "Reason", "State", "For", "Responder", "Called"
        )
        self.query_one("#andon-history", DataTable).add_columns(
            "Kind", "Station", "Reason", "Outcome", "At", "Took"
        )
        self._tables_ready = True
        self.set_interval(1.0, self.refresh_body, name="andon-durations")
        self.refresh_body()

    def selected(self) -> AndonView | None:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        rows = app.andon_line.active if app.andon_line else ()
        table = self.query_one("#andon-active", DataTable)
        if not rows:
            return None
        return rows[min(max(table.cursor_row, 0), len(rows) - 1)]

    def action_select(self, step: int) -> None:
        table = self.query_one("#andon-active", DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_act(self, what: str) -> None:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        view = self.selected()
        if view is None:
            app.notify("No andon selected: the list is empty.", severity="warning")
            return
        app.andon_action(what, view)

    def refresh_body(self) -> None:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        # The App may push a new board while this screen is still mounting: show it once it can.
        if app.andon_board is not None and self._tables_ready:
            self.show_board(app.andon_board, app.terminal.clock(), app.auth_text())

    def show_board(self, board: AndonBoard, now: datetime, auth_text: str) -> None:
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
            style = "bold white on red" if a.kind is AndonKind.STOP else ("bold" if waiting else "")
            called = ", ".join(tier_role(t).replace("_", " ") for t in v.tiers_fired)
            table.add_row(
                Text(a.kind.value.upper(), style=style),
                a.station,
                Text(v.reason_label, style=v.colour),
                Text(STATE_WORDS[a.state], style="bold" if waiting else ""),
                duration(((a.resolved_at or now) - a.raised_at).total_seconds()),
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
            end = a.resolved_at or a.cancelled_at or now
            history.add_row(
                a.kind.value.upper(),
                a.station,
                v.reason_label,
                STATE_WORDS[a.state] + (f": {a.note}" if a.note else ""),
                f"{a.raised_at.astimezone():%H:%M}",
                duration((end - a.raised_at).total_seconds()),
            )
