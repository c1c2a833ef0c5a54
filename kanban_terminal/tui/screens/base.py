"""What every screen has: the status bar, the scan field with its banner, and the footer keys.

A scan works from every screen: the operator never has to put the scanner down to navigate back.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import StatusBar
from kanban_terminal.tui.widgets.stop_banner import StopBanner


class TerminalScreen(Screen[None]):
    """Base for the terminal's screens; subclasses compose their body in `compose_body`."""

    AUTO_FOCUS = "#scan-field"

    def compose(self) -> ComposeResult:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        cfg = app.terminal.config
        yield StatusBar(cfg.terminal.id, cfg.line.name or cfg.line.id)
        yield StopBanner()
        yield ScanField()
        yield Banner(app.idle_text)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        from kanban_terminal.tui.app import KanbanApp

        app = self.app
        assert isinstance(app, KanbanApp)
        app.refresh_screen()

    def refresh_body(self) -> None:
        """Reload what the body shows from the App's latest view models."""
