"""The health message's `oldest_age_s` and the status bar's "Queued N (oldest X)" read one elapsed age.

A real runtime whose broker is unreachable (a free port nobody listens on) keeps a scanned card's
request queued; the health message is built by the runtime's own `HealthPublisher.payload()` (what
it publishes retained once connected). Three minutes pass on the monotonic clock with a +1 h (or
-1 h) wall-clock step in them. Before, health said `oldest_age_s` 3,780 and "oldest queued request
3780 s" (a degraded terminal for a 3-minute wait), or 0 after -1 h, while the bar said "3 min".
`oldest_raised_at` stays the stored wall stamp of the raise.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.runtime import Runtime
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.support.andon import T0, FakeClock, open_terminal
from tests.support.floor import settle
from tests.support.mosquitto import free_port
from tests.support.mqtt_lines import settings_for, wait_for

STEPS = pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])


def _queue_one(runtime: Runtime, terminal: Terminal) -> None:
    wait_for(lambda: runtime.link_state().state == "reconnecting", what="the link gave up once")
    assert record_scan(terminal, terminal.config.loops[0].card_id_list()[0], source="keyboard").accepted
    wait_for(lambda: runtime.link_state().queued == 1, what="the request queued")


def _health(runtime: Runtime) -> dict[str, Any]:
    assert runtime.health is not None, "a runtime with a broker publishes health"
    health: dict[str, Any] = json.loads(runtime.health.payload())
    return health


def _queue_problems(health: dict[str, Any]) -> list[str]:
    return [p for p in health["problems"] if p.startswith("oldest queued request")]


@STEPS
async def test_the_bar_and_the_health_message_agree_across_a_step(tmp_path: Path, hours: float) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path / "data", clock)
    runtime = Runtime(terminal, settings_for(free_port()))
    app = KanbanApp(terminal, runtime=runtime)
    try:
        with runtime:
            _queue_one(runtime, terminal)
            async with app.run_test(size=(80, 24)) as pilot:
                app._tick()  # the App's one-second timer: the bar reads the link line first
                await settle(app, pilot)
                clock.advance(minutes=2)
                clock.step_wall(hours=hours)
                clock.advance(minutes=1)
                health = _health(runtime)
                app._tick()
                await settle(app, pilot)
                bar = app.screen.query_one(StatusBar).render().plain
                assert "Queued 1 (oldest 3 min)" in bar, bar
                assert health["queue"]["oldest_age_s"] == 180, health
                assert health["queue"]["oldest_raised_at"] == T0.isoformat().replace("+00:00", "Z")
                assert not _queue_problems(health), health
    finally:
        terminal.close()


@STEPS
def test_serve_s_health_counts_elapsed_time_from_its_own_first_read(tmp_path: Path, hours: float) -> None:
    """No screen (`serve`): the health read is the first sighting, and the age goes on from it."""
    clock = FakeClock()
    terminal = open_terminal(tmp_path / "data", clock)
    try:
        with Runtime(terminal, settings_for(free_port())) as runtime:
            _queue_one(runtime, terminal)
            clock.advance(seconds=10)
            assert _health(runtime)["queue"]["oldest_age_s"] == 10
            clock.step_wall(hours=hours)
            clock.advance(minutes=11)
            health = _health(runtime)
            assert health["queue"]["oldest_age_s"] == 670, health
            assert _queue_problems(health) == ["oldest queued request 670 s"]  # the limit is 10 min
            oldest = runtime.link_state().oldest_at
            assert oldest is not None and clock.now - oldest == timedelta(seconds=670)  # the bar's too
    finally:
        terminal.close()
