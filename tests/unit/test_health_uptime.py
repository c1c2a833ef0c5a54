"""The health message's `uptime_s` counts elapsed time, as its queue age does (healthclock).

`started_at` stays the wall stamp of the start; the uptime beside it is the monotonic clock's: a +1 h
step a minute after start read 3,720 s, a -1 h step 0 s.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.adapters.health_publisher import HealthPublisher
from tests.support.andon import T0, FakeClock, open_terminal


class _Link:
    connected = True

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        return 0


@pytest.mark.parametrize("step_h", [1, -1])
def test_uptime_counts_elapsed_time_across_a_wall_step(tmp_path: Path, step_h: int) -> None:
    clock = FakeClock(T0)
    terminal = open_terminal(tmp_path, clock)
    try:
        health = HealthPublisher(terminal, _Link(), "t/health", link_state=lambda: "connected")
        clock.advance(minutes=1)
        clock.step_wall(hours=step_h)
        payload = json.loads(health.payload())
        assert payload["uptime_s"] == 60
        assert payload["started_at"] == "2026-03-02T06:00:00Z"
        assert payload["at"] == (T0 + timedelta(hours=step_h, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        terminal.close()
