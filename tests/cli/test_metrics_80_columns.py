"""`kanban-terminal metrics` at 80 columns (issue floor80): the report's legends were 86-97 columns,
the loop rows 84-98 and the resilience table 83, so an 80-column shell wrapped them into a mess and
the metrics screen at 80x24 cut them at its right edge (it scrolls sideways, nobody does on the
floor). Twelve days of real history on a real SQLite file; the CLI through its main(); the screen
through Pilot, every line of the CLI's report read whole on the rendered frame while paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.services.delivery_issue import record_delivery_issue
from kanban_terminal.services.metrics_text import WIDTH
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.metrics import MetricsScreen
from tests.support.andon import FakeClock, open_terminal
from tests.support.floor import settle
from tests.support.screen_text import rows_in, words

DAYS = 12


def with_history(data_dir: Path, clock: FakeClock) -> Terminal:
    """Twelve days: two cards of every loop empty each morning and delivered 5 h later, one short."""
    terminal = open_terminal(data_dir, clock)
    for day in range(DAYS):
        for loop in terminal.config.loops:
            for card in loop.card_id_list()[:2]:
                assert record_scan(terminal, card, source="keyboard").accepted
        clock.advance(hours=5)
        for loop in terminal.config.loops:
            for card in loop.card_id_list()[:2]:
                assert record_scan(terminal, card, source="keyboard", confirmed=True).accepted
        if day == 3:
            assert record_delivery_issue(terminal, "B1001Z", short=2, source="keyboard").ok
        clock.advance(hours=19)
    return terminal


@pytest.fixture
def clock() -> FakeClock:
    # The CLI reads the wall clock: the history ends now, so the report's window holds it.
    return FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=DAYS, hours=1))


def test_every_line_of_metrics_fits_an_80_column_shell(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with_history(tmp_path, clock).close()
    assert main(["metrics", "--config", str(demo_config_path()), "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Sources, resilience") for line in lines)
    assert any(line.split()[:3] == ["source", "p50", "p90"] for line in lines)
    assert any(line.startswith("ST10-BOLT") for line in lines)  # a loop row, with its trend
    wide = [line for line in lines if len(line) > WIDTH]
    assert not wide, "\n".join(wide)


async def test_the_metrics_screen_at_80x24_shows_every_line_of_the_report_whole(
    tmp_path: Path, clock: FakeClock
) -> None:
    terminal = with_history(tmp_path, clock)
    try:
        app = KanbanApp(terminal)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("ctrl+r")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, MetricsScreen) and screen.lines
            sizing = next(i for i, line in enumerate(screen.lines) if line.startswith("Sizing"))
            report = screen.lines[:sizing]  # the sizing table is `sizing`'s, not this report's
            seen: list[str] = []
            for _ in range(len(report) // 5 + 2):
                seen += rows_in(app, screen.query_one("#metrics").region)
                await pilot.press("pagedown")
                await pilot.pause()
            missing = [line for line in report if line.strip() and words(line) not in seen]
            assert not missing, "\n".join(missing)
    finally:
        terminal.close()


def test_sizing_advice_never_says_add_a_negative_or_zero_count(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """On this history the replay overrules the formula for loops that already have the cards it
    needs, or more: `sizing` said "add -1 card(s)" and "add 0 card(s)" there."""
    with_history(tmp_path, clock).close()
    assert main(["sizing", "--config", str(demo_config_path()), "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "still runs out in the replay" in out  # the overruling advice is there to be read
    assert not re.search(r"add (-\d+|0) card", out), out
    assert re.search(r"(remove \d+ card\(s\), to \d+|keep \d+): the formula's \d+ still runs out", out), out
