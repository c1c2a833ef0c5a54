"""The operator's screen: scan field, result banner, and the last scans."""

from __future__ import annotations

from textual.app import ComposeResult

from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.widgets.recent_scans import RecentScans


class ScanScreen(TerminalScreen):
    def compose_body(self) -> ComposeResult:
        yield RecentScans()

    def refresh_body(self) -> None:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        self.query_one(RecentScans).show_rows(app.recent_rows())
