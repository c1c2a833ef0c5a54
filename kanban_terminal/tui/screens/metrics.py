"""The metrics screen: loops, the supplier scorecard, andon Pareto, sizing advice and lost cards.

It shows the same lines as `kanban-terminal metrics`, `sizing` and `lost-cards` (one rendering in
services/metrics_text.py), read in a worker thread: a year of history takes a moment to fold, and
the scan field must stay live meanwhile. It reads again when new events arrive (tui/live.py);
Ctrl+R reads everything again at once.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.widgets import Static

from kanban_terminal.domain.metrics import fmt_duration
from kanban_terminal.services.lost_cards import find_silent
from kanban_terminal.services.metrics_text import report_lines, sizing_lines, sizing_rows
from kanban_terminal.services.reports import build_report, loop_histories
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.live import Throttle
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import ScreenChrome, TerminalView

METRICS_DAYS, SIZING_DAYS = 28, 90


class MetricsReader:
    """The metrics screen's only way to the terminal: it reads history and folds it into the
    report's lines; it writes nothing. Given by the App; called in the screen's worker thread."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def lines(self) -> list[str]:
        terminal = self._terminal
        lines = report_lines(build_report(terminal, METRICS_DAYS))
        rows = sizing_rows(
            terminal.config, loop_histories(terminal, SIZING_DAYS), scan_delay_s=300, service=0.95
        )
        lines += ["", f"Sizing from the last {SIZING_DAYS} days"] + sizing_lines(rows)
        silent = find_silent(terminal)
        lines += ["", f"Cards not seen for too long: {len(silent)}"]
        lines += [
            f"  {c.card_id:<8} {c.loop_id:<14} {c.state:<10} silent {fmt_duration(c.silent_s)}"
            f" (limit {fmt_duration(c.limit_s)})"
            for c in silent
        ]
        return lines


class MetricsScreen(TerminalScreen):
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="metrics.reload", priority=True),
        Binding("pagedown", "scroll(1)", "Scroll down", id="metrics.down"),
        Binding("pageup", "scroll(-1)", "Scroll up", id="metrics.up"),
    ]

    def __init__(self, chrome: ScreenChrome, read_lines: Callable[[], list[str]]) -> None:
        super().__init__(chrome)
        self._read_lines = read_lines
        self.lines: list[str] = []
        # Metrics fold weeks of history: they follow the bus at a fifth of the log's pace.
        self._live = Throttle(self, 5 * chrome.live_refresh_seconds, self.action_reload)

    def compose_body(self) -> ComposeResult:
        with ScrollableContainer(id="metrics"):
            yield Static("Reading history ...", id="metrics-body")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        # Issue 15: F11 was a snapshot (2 andons and 10 cycles while the CLI showed 3 and 13).
        if old is not None and view.events_seen != old.events_seen:
            self._live.poke()

    def action_scroll(self, direction: int) -> None:
        box = self.query_one("#metrics", ScrollableContainer)
        if direction > 0:
            box.scroll_page_down()
        else:
            box.scroll_page_up()

    @work(thread=True, group="metrics", exclusive=True, description="compute metrics and sizing")
    def load(self) -> None:
        lines = self._read_lines()
        self.app.call_from_thread(self.show_lines, lines)

    def show_lines(self, lines: list[str]) -> None:
        self.lines = lines
        self.query_one("#metrics-body", Static).update(Text("\n".join(lines)))
