"""Issue 15, finding 5: the card log (F5) and metrics (F11) follow the bus while they are open.

Before, both were read once when they opened: F11 showed 2 andons and 10 cycles while the CLI showed
3 and 13. Here an andon and a scan go in through the runtime's and the services' own doors while
the screen is open, and the screen must show them without being reopened. The waits are bounded
polls of what the screen holds, not timing asserts.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.log import LogScreen
from kanban_terminal.tui.screens.metrics import MetricsScreen
from tests.support.floor import floor_terminal, settle


async def until(pilot: Pilot[None], app: KanbanApp, done: object, what: str, polls: int = 100) -> None:
    """Let the app run until `done()` holds, at most `polls` pauses of 0.1 s."""
    for _ in range(polls):
        if done():  # type: ignore[operator]
            return
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
    raise AssertionError(f"the open screen never showed {what}")


def log_column(screen: LogScreen, label: str) -> list[str]:
    table = screen.query_one("#log-table", DataTable)
    index = [str(c.label) for c in table.columns.values()].index(label)
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def test_the_open_card_log_shows_an_andon_and_a_scan_as_they_happen(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f5")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogScreen) and screen.page is not None
        assert "andon_raised" not in log_column(screen, "Event")
        assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
        await until(pilot, app, lambda: "andon_raised" in log_column(screen, "Event"), "the raised andon")
        assert app.runtime.scan("B1002X", source="serial").accepted  # a serial scanner's read
        await until(pilot, app, lambda: "B1002X" in log_column(screen, "Card"), "the scan")
        assert app.screen is screen  # never reopened
    terminal.close()


async def test_the_open_metrics_screen_counts_a_new_andon(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MetricsScreen) and screen.lines
        andons = [line for line in screen.lines if line.startswith("Andons:")]
        assert andons and andons[0].startswith("Andons: 0")
        assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
        await until(
            pilot,
            app,
            lambda: any(line.startswith("Andons: 1") for line in screen.lines),
            "the new andon in the metrics",
        )
        assert app.screen is screen
    terminal.close()
