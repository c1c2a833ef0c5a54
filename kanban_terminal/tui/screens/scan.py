"""The operator's screen: scan field, result banner, and the last scans."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message

from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import TerminalView
from kanban_terminal.tui.widgets.recent_scans import RecentScans


class ScanScreen(TerminalScreen):
    BANNER_HOLDS_OUTCOME = True  # its banner's height is auto (app.tcss)
    BINDINGS = [Binding("f8", "delivery_issue", "Short / damaged", id="scan.delivery_issue")]

    @dataclass
    class DeliveryIssue(Message):
        """F8: the last delivery was not in full (the App asks how many short or damaged)."""

    def action_delivery_issue(self) -> None:
        self.post_message(self.DeliveryIssue())

    def compose_body(self) -> ComposeResult:
        yield RecentScans()

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        if old is None or view.recent != old.recent:
            self.query_one(RecentScans).show_rows(view.recent)
