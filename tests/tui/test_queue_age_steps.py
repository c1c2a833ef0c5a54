"""The status bar's "Queued N (oldest X)" counts elapsed time, whatever the wall clock does.

The real App at 80x24 with a real runtime whose broker is unreachable (a free port nobody listens
on): a scanned card's request stays queued. Three minutes pass on the monotonic clock with a +1 h
(or -1 h) NTP step in them. The bar said "oldest 1 h 03 min" (or "0 s") from the wall clock; now it
says "3 min", from the runtime's `link_state()` (runtime/link_age.py), which headless readers get too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.runtime import Runtime
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.support.andon import FakeClock, open_terminal
from tests.support.floor import settle
from tests.support.mosquitto import free_port
from tests.support.mqtt_lines import settings_for, wait_for


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
async def test_the_oldest_queued_age_on_the_status_bar_counts_elapsed_time(
    tmp_path: Path, hours: float
) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path / "data", clock)
    runtime = Runtime(terminal, settings_for(free_port()))
    app = KanbanApp(terminal, runtime=runtime)
    try:
        with runtime:
            wait_for(lambda: runtime.link_state().state == "reconnecting", what="the link gave up once")
            assert record_scan(
                terminal, terminal.config.loops[0].card_id_list()[0], source="keyboard"
            ).accepted
            wait_for(lambda: runtime.link_state().queued == 1, what="the request queued")
            async with app.run_test(size=(80, 24)) as pilot:
                app._tick()  # the App's one-second timer: the bar's link line is read
                await settle(app, pilot)
                clock.advance(minutes=2)
                clock.step_wall(hours=hours)
                clock.advance(minutes=1)
                app._tick()
                await settle(app, pilot)
                text = app.screen.query_one(StatusBar).render().plain
                assert "Queued 1 (oldest 3 min)" in text, text
                oldest = runtime.link_state().oldest_at
                assert oldest is not None and clock.now - oldest == timedelta(minutes=3)  # headless: same age
    finally:
        terminal.close()
