"""The screen after a reboot with an acknowledged stop open: the banner and F8 count elapsed time.

A stop raised, acknowledged and ticked by `serve` for 4 minutes with a +1 h NTP step in them, then
the power goes for a minute (new boot, monotonic clock near zero). The real App at 80x24 on the new
boot shows the stop at 5:00 (4 min counted on the old boot's monotonic clock up to its last save,
plus the minute of wall time across the reboot), `serve` back on the new boot agrees, and the
resolve through F8 a minute later records 360 s, the figure the CLI and the service record
(tests/integration/test_andon_timer_to_the_end.py). With a runner that drops the anchor at the
acknowledge (as before branch `onemono`) the set-up's own check fails: no anchor is left to count.
"""

from __future__ import annotations

from pathlib import Path

from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon_dialogs import ResolveScreen
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.integration.test_andon_timer_to_the_end import serve_for_four_minutes_then_reboot
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.screen_text import reads, screen_lines
from tests.tui.test_andon_tui import badge_and_pin, settle
from tests.tui.test_stop_downtime_screen import downtime_logged, show_andon_screen


async def test_after_a_reboot_the_banner_and_f8_count_from_the_last_save(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = enrolled(open_terminal(tmp_path / "data", clock))
    serve_for_four_minutes_then_reboot(terminal, clock)
    app = KanbanApp(terminal)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)  # the screen's first read on the new boot, before `serve` ticks
            frame = "\n".join(screen_lines(app))
            assert reads(app, "LINE STOPPED ST30 Safety 5:00", app.screen.query_one(StopBanner)), frame
            EscalationRunner(terminal).tick()  # `serve` back: re-anchors the stop on this boot
            clock.advance(minutes=1)
            app._tick()
            await settle(app, pilot)
            frame = "\n".join(screen_lines(app))
            assert reads(app, "LINE STOPPED ST30 Safety 6:00", app.screen.query_one(StopBanner)), frame
            await show_andon_screen(app, pilot)
            await pilot.press("f8")
            await pilot.pause()
            await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
            dialog = app.screen
            assert isinstance(dialog, ResolveScreen)
            dialog.query_one("#note-field").value = "guard refitted"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await settle(app, pilot)
            assert downtime_logged(terminal) == [360.0]
    finally:
        terminal.close()
