"""The screen shows a CALL's elapsed duration and response, whatever the wall clock did (0012).

The real App on a real SQLite file at 80x24: an operator calls for material (F4, ST20, MAT), `serve`
anchors it (the escalation runner's tick), the wall clock steps +1 h (or -1 h) while 2 minutes pass
on the monotonic clock, a supervisor acknowledges with F7 (badge), 2 minutes later it is resolved
with F8 (note). The andon screen's history showed the closed call at "1 h 04 min" (or "0:00"), the
metrics screen's material response "acknowledged p50 1 h 02 min": both compared stored wall times.
Now the history shows 4:00 and the metrics screen 2 min and 4 min, the figures the acknowledge and
the resolve recorded (and `metrics` prints: tests/integration/test_call_response_steps.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import ResolveScreen
from kanban_terminal.tui.screens.metrics import MetricsScreen
from tests.support.andon import SUPERVISOR, FakeClock, enrolled, open_terminal
from tests.support.screen_text import reads, screen_lines
from tests.tui.test_andon_tui import badge_and_pin, pick, settle
from tests.tui.test_stop_downtime_screen import show_andon_screen


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
async def test_the_history_and_the_metrics_screen_show_the_elapsed_response(
    tmp_path: Path, hours: float
) -> None:
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path / "data", clock))
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4")
            await pilot.pause()
            await pick(app, pilot, "ST20", "MAT")
            [call] = read_board(terminal).line.active
            EscalationRunner(terminal).tick()  # anchors the call, as `serve` would
            clock.advance(minutes=1)
            clock.step_wall(hours=hours)
            clock.advance(minutes=1)
            await show_andon_screen(app, pilot)
            await pilot.press("f7")
            await pilot.pause()
            await badge_and_pin(app, pilot, SUPERVISOR, None)
            clock.advance(minutes=2)
            await show_andon_screen(app, pilot)
            await pilot.press("f8")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ResolveScreen)
            dialog.query_one("#note-field").value = "bins brought"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await settle(app, pilot)
            [ended] = [v for v in read_board(terminal).history if v.id == call.id]
            assert ended.andon.acknowledged_by == SUPERVISOR and ended.andon.resolved_at is not None
            clock.advance(minutes=10)  # the recorded figure stays: it no longer runs
            screen = await show_andon_screen(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "CALL ST20 Material shortage Closed: bins brought", screen), frame
            row = next(line for line in frame.splitlines() if "bins brought" in line)
            assert row.split()[-1] == "4:00", frame  # the "Took" column
            await pilot.press("ctrl+r")  # metrics
            await settle(app, pilot)
            metrics = app.screen
            assert isinstance(metrics, MetricsScreen) and metrics.lines
            text = "\n".join(metrics.lines)
            assert "material andons: 1 (0 open), acknowledged p50 2 min," in text, text
            assert "material at the line p50 4 min, p90 4 min, worst 4 min" in text, text
    finally:
        terminal.close()
