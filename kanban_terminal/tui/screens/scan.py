"""The operator's screen: scan field, result banner, and the last scans."""

from __future__ import annotations

from textual.app import ComposeResult

from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import TerminalView
from kanban_terminal.tui.widgets.recent_scans import RecentScans


class ScanScreen(TerminalScreen):
    def compose_body(self) -> ComposeResult:
        yield RecentScans()

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        if old is None or view.recent != old.recent:
            self.query_one(RecentScans).show_rows(view.recent)
