"""The card log screen through Pilot: filter, page, timeline, export, and a scan from this screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets import DataTable, Input, Label

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.runtime import Runtime, RuntimeOptions
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.palette import ATTENTION
from kanban_terminal.tui.screens.log import PAGE, LogScreen
from kanban_terminal.tui.screens.metrics import MetricsScreen

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)


def terminal_with_history(tmp_path: Path) -> Terminal:
    now = [T0]
    terminal = Terminal.open(load_config(demo_config_path()), tmp_path, clock=lambda: now[0])
    head = terminal.config.loop("ST10-HEAD").card_id_list()[0]
    plate = terminal.config.loop("ST20-PLATE").card_id_list()[0]
    for _ in range(40):  # 160 rows of these two cards: more than a page
        for card in (head, plate):
            now[0] += timedelta(minutes=30)
            record_scan(terminal, card, source="keyboard")
    return terminal


def column(table: DataTable, index: int) -> list[str]:  # type: ignore[type-arg]
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def test_log_screen_filters_pages_and_keeps_scanning(tmp_path: Path) -> None:
    terminal = terminal_with_history(tmp_path)
    plate = terminal.config.loop("ST20-PLATE").card_id_list()[0]
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, LogScreen)
            table = screen.query_one("#log-table", DataTable)
            assert table.row_count == PAGE  # a page, never the whole log
            assert app.focused is not None and app.focused.id == "scan-field"

            await pilot.press("ctrl+f")
            field = screen.query_one("#log-filter", Input)
            assert app.focused is field
            field.value = "loop:ST20-PLATE event:delivered"
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.focused is not None and app.focused.id == "scan-field"  # back for the scanner
            assert table.row_count == 20
            assert set(column(table, 2)) == {"delivered"} and set(column(table, 4)) == {"ST20-PLATE"}

            await pilot.press("ctrl+t")  # the selected row's card: its cycles with lead times
            await app.workers.wait_for_complete()
            await pilot.pause()
            cycles = screen.query_one("#timeline", DataTable)
            assert cycles.display and cycles.row_count == 20
            assert set(column(cycles, 2)) == {"1 h 00 min"}
            # 20 cycles x (bin empty, request raised, delivered) + its registration.
            assert set(column(table, 3)) == {plate} and table.row_count == 61
            assert screen.page is not None and not screen.page.has_older

            await pilot.press("ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.last_export is not None
            path, rows = screen.last_export
            assert rows == 61 and path.read_text().count("\n") == 62

            # A scan works from the log screen and lands at the top of the list.
            scan = screen.query_one("#scan-field", Input)
            scan.value = plate
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.last_outcome is not None and app.last_outcome.card_id == plate

            await pilot.press("ctrl+r")  # metrics (F11 is the terminal's full screen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            metrics = app.screen
            assert isinstance(metrics, MetricsScreen)
            assert any(line.startswith("ST20-PLATE") for line in metrics.lines)
    finally:
        terminal.close()


async def test_bad_filter_is_explained_not_applied(tmp_path: Path) -> None:
    terminal = terminal_with_history(tmp_path)
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, LogScreen)
            before = screen.filter
            await pilot.press("ctrl+f")
            screen.query_one("#log-filter", Input).value = "since:yesterday"
            await pilot.press("enter")
            await pilot.pause()
            assert screen.filter == before
            info = screen.query_one("#log-info", Label).render()
            assert "not a time" in str(info)
            styles = {str(span.style) for span in getattr(info, "spans", ())}
            assert styles == {ATTENTION}  # amber: red is for a line stop only (ISA-101)
            assert app.focused is screen.query_one("#log-filter", Input)  # left there to correct
            await pilot.press("escape")  # given up: the line shows the filter in force again
            await pilot.pause()
            assert screen.query_one("#log-filter", Input).value == ""
            assert app.focused is not None and app.focused.id == "scan-field"
    finally:
        terminal.close()


async def test_the_runtime_flags_silent_cards_of_moving_loops_and_the_screen_shows_them(
    tmp_path: Path,
) -> None:
    terminal = terminal_with_history(tmp_path)
    head_cards = terminal.config.loop("ST10-HEAD").card_id_list()
    plate_cards = terminal.config.loop("ST20-PLATE").card_id_list()
    # The screen's runtime runs the lost-card job (every few ms here instead of every 5 minutes).
    runtime = Runtime(terminal, None, RuntimeOptions(lost_card_check_s=0.01))
    app = KanbanApp(terminal, runtime=runtime)
    flagged: list[CardsChanged] = []
    terminal.bus.subscribe(lambda e: flagged.append(e) if isinstance(e, CardsChanged) else None)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            with runtime:
                for _ in range(400):
                    if flagged:
                        break
                    await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await pilot.pause()
            with terminal.db.reading() as session:
                lost = {
                    r[0]
                    for r in session.connection().exec_driver_sql("SELECT id FROM card WHERE state = 'lost'")
                }
            # The two cards that kept cycling are seen; their silent loop mates are lost; cards of
            # loops that never moved are not.
            assert lost == set(head_cards[1:]) | set(plate_cards[1:])
            # The App heard of it through the bus and re-read the board.
            assert app.status is not None
            shown = sum(s.by_state.get("lost", 0) for s in app.status.loops)
            assert shown == len(lost)
    finally:
        terminal.close()
