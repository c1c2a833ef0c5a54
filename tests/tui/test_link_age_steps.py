"""The status bar's "Upstream: reconnecting N min" counts elapsed time, whatever the wall clock does.

The real App at 80x24 with a real runtime whose broker is unreachable (a free port nobody listens
on): the link sits in "reconnecting". Three minutes pass on the monotonic clock with a +1 h (or
-1 h) NTP step in them. The bar said "1 h" (or "0 s") from the wall clock; now it says "3 min",
from the runtime's `link_state()` (runtime/link_age.py), which headless readers get too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.runtime import Runtime
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.support.andon import FakeClock, open_terminal
from tests.support.floor import settle
from tests.support.mosquitto import free_port
from tests.support.mqtt_lines import settings_for, wait_for


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
async def test_the_link_age_on_the_status_bar_counts_elapsed_time(tmp_path: Path, hours: float) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path / "data", clock)
    runtime = Runtime(terminal, settings_for(free_port()))
    app = KanbanApp(terminal, runtime=runtime)
    try:
        with runtime:
            wait_for(lambda: runtime.link_state().state == "reconnecting", what="the link gave up once")
            async with app.run_test(size=(80, 24)) as pilot:
                app._tick()  # the App's one-second timer: the bar's link line is read
                await settle(app, pilot)
                clock.advance(minutes=2)
                clock.step_wall(hours=hours)
                clock.advance(minutes=1)
                app._tick()
                await settle(app, pilot)
                text = app.screen.query_one(StatusBar).render().plain
                assert "Upstream: reconnecting 3 min" in text, text
                assert clock.now - runtime.link_state().since == timedelta(minutes=3)  # headless: same age
    finally:
        terminal.close()
