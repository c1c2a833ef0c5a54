"""What every screen has: the status bar, the scan field with its banner, and the footer keys.

A scan works from every screen: the operator never has to put the scanner down to navigate back.
Screens never import the App (issue 14): the App gives each screen a `ScreenChrome` when it builds
it and calls `show(view)` with a new `TerminalView` whenever something changed; a screen reports
what the operator did by posting messages, which bubble up to the App.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen

from kanban_terminal.tui.views import ScreenChrome, TerminalView
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.call_banner import CallBanner
from kanban_terminal.tui.widgets.key_bar import KeyBar
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import StatusBar
from kanban_terminal.tui.widgets.stop_banner import StopBanner


class TerminalScreen(Screen[None]):
    """Base for the terminal's screens; subclasses compose their body in `compose_body` and show
    their part of the view in `show_body`."""

    AUTO_FOCUS = "#scan-field"
    # "-short" below 32 rows (80x24): app.tcss trims the chrome there so the body keeps its rows.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BANNER_HOLDS_OUTCOME = False
    """Whether this screen's banner shows a scan's whole outcome (tui/outcome_note.py)."""

    @dataclass
    class Shown(Message):
        """The screen came to the front (first time, mode switch, or a dialog closed over it): it
        wants the latest view, which may have changed while it was hidden."""

        screen: TerminalScreen

    def __init__(self, chrome: ScreenChrome) -> None:
        super().__init__()
        self.chrome = chrome
        self.view: TerminalView | None = None
        """The last view the App gave this screen (kept while it is hidden or not yet mounted)."""
        self._drawn: TerminalView | None = None
        self._mounted = False

    def compose(self) -> ComposeResult:
        yield StatusBar(self.chrome.terminal_id, self.chrome.line_name)
        yield StopBanner()
        yield CallBanner(andon_key=self.chrome.andon_key)
        yield ScanField()
        yield Banner(self.chrome.idle_text)
        yield from self.compose_body()
        # Two rows, the App's keys in their own (issue 15: F10 Quit and F11 never showed at 80x24).
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # Subclasses' on_mount ran first (Textual calls each class's handler, subclass first), and
        # the widgets exist: a view given before mounting is drawn now.
        self._mounted = True
        if self.view is not None:
            self._draw(self.view)

    def on_screen_resume(self) -> None:
        self.post_message(self.Shown(self))

    def show(self, view: TerminalView) -> None:
        """Show `view`: the chrome (status bar, stop banner, banner) and then the body. Before the
        screen has mounted it is only kept (`is_mounted` is still False inside on_mount itself)."""
        self.view = view
        if self._mounted:
            self._draw(view)

    def _draw(self, view: TerminalView) -> None:
        bars = self.query(StatusBar)
        if not bars:
            return  # being torn down (the App exits): a late view has nothing left to draw on
        old, self._drawn = self._drawn, view
        bar = bars.first()
        bar.link, bar.now, bar.scanners, bar.devices = view.link, view.now, view.scanners, view.devices
        bar.line_condition = view.line.condition.value if view.line else ""
        if old is None or view.andon_board is not old.andon_board or view.now != old.now:
            self.query_one(StopBanner).show(view.line, view.now, view.mono_s)
            self.query_one(CallBanner).show(view.line, view.now, view.mono_s)
        if old is None or view.last_outcome is not old.last_outcome:
            self.query_one(Banner).show(view.last_outcome)
        self.show_body(old, view)

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        """Redraw what the body shows of `view`; `old` is what was drawn before (None: nothing)."""
